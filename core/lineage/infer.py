"""What a repository without relman.toml says about itself, as a relman config to read with.

Adoption starts with seeing one's own project before changing anything: `status`, `history`
and `diff` (and the TUI, read-only) work on a git + DVC repository nobody configured, from
what it already declares (docs/adopting.md):

- **services**: one per ``artifacts:`` entry of ``type: model`` in any dvc.yaml (an artifact
  of a nested ``sub/dvc.yaml`` is GTO's ``sub:name``); where none is declared, one per output
  that a stage produces and no stage reads (metrics and plots files left out);
- **data**: what the stages up to the model read that a ``.dvc`` file or an import brings
  in, and the ``type: dataset`` artifacts among those stages' outputs;
- **environments**: the GTO stages the repository's tags assign, under GTO's own names
  (``dev``, ``staging``, ``prod`` first, then the others as they first appear); relman
  serves none of them (no port), it reads them.

Nothing is written; the same reading seeds the relman.toml that `relman init` writes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config.common import NAME_PATTERN
from core.config.model import (
    CONFIG_NAME,
    EnvironmentConfig,
    Project,
    ProjectConfig,
    RelmanConfig,
    ServiceConfig,
)
from core.errors import ProjectError

if TYPE_CHECKING:  # DVC's side is loaded by the full reading only, not by the quick one
    from core.lineage.dvcinfo import DvcSession

__all__ = ["InferredService", "Reading", "infer_project", "read_repository", "relman_name"]

# Stages in the order a promotion goes through them, when the tags use these names.
_KNOWN_ORDER = ("dev", "development", "test", "qa", "staging", "stage", "prod", "production")


@dataclass(frozen=True)
class InferredService:
    """One service as the repository declares it."""

    name: str  # a relman name (NAME_PATTERN)
    model: list[str]  # artifact names, or output paths where nothing is declared
    data: list[str]
    source: str  # how it was found, in words: "artifact clf (type: model) in dvc.yaml"
    # The same, as paths from the repository's root.
    model_paths: list[str] = field(default_factory=list)
    data_paths: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reading:
    """What :func:`read_repository` found."""

    name: str
    services: list[InferredService]
    stages: list[str]  # GTO stages, promotion order first
    notes: list[str] = field(default_factory=list)


def relman_name(text: str) -> str:
    """``text`` as a relman name: lower case, runs of other characters as one ``-``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-_")
    if not slug or not slug[0].isalpha():
        slug = "p-" + slug if slug else "project"
    return slug if re.fullmatch(NAME_PATTERN, slug) else "project"


def read_repository(root: Path) -> Reading:
    """The services, data and stages a git + DVC repository declares (ProjectError when it
    is not one: no git, no DVC pipeline)."""
    root = Path(root).resolve()
    from core.lineage.dvcinfo import open_dvc
    from core.lineage.gitinfo import git

    git(root, "rev-parse", "--git-dir")  # "not a git repository" first: the clearest error
    with open_dvc(root) as session:
        services, notes = _services(session)
        if not services and session.load_errors:
            # Nothing to read because DVC could not parse a file: that file is the news.
            raise ProjectError(f"{session.load_errors[0]}; fix it and run again")
    from core.lineage.gitinfo import tags
    from core.lineage.gto import gto_events

    events, _warnings = gto_events(tags(root))
    stages = _ordered(event.stage for event in events if event.stage)
    name = relman_name(root.name)
    if len(services) == 1:  # one model: the service is the project, as the demo's is
        services = [dataclasses.replace(services[0], name=name)]
    return Reading(name, services, stages, notes)


def quick_reading(root: Path) -> Reading | None:
    """What a first screen needs, without DVC (about 50 ms, where DVC's index of a large
    pipeline takes a second): the model artifacts of the dvc.yaml files git tracks, read as
    plain YAML, and the GTO stages; no data. None when that is not enough: no model artifact
    declared, or a file that plain YAML cannot read (:func:`read_repository` then)."""
    from core.lineage.artifacts_block import artifacts_section
    from core.lineage.gitinfo import git, tags
    from core.lineage.gto import gto_events

    root = Path(root).resolve()
    listed = git(root, "ls-files", "-z", "--", "dvc.yaml", "*/dvc.yaml").split("\0")
    models: list[tuple[str, str]] = []  # (GTO name, path)
    for dvcfile in sorted(path for path in listed if path):
        try:
            text = (root / dvcfile).read_text()
        except (OSError, UnicodeDecodeError):
            return None
        # As text where it is plain block style (no YAML library to import, no stage to
        # build); as YAML otherwise.
        artifacts: Any = artifacts_section(text)
        if artifacts is None:
            artifacts = _yaml_artifacts(text)
            if artifacts is False:
                return None
        folder = Path(dvcfile).parent.as_posix()
        for name, spec in (artifacts or {}).items():
            if isinstance(spec, dict) and spec.get("type") == "model" and "path" in spec:
                full = name if folder == "." else f"{folder}:{name}"
                path = str(spec["path"]) if folder == "." else f"{folder}/{spec['path']}"
                models.append((full, Path(os.path.normpath(path)).as_posix()))
    if not models:
        return None
    project = relman_name(root.name)
    services = [
        InferredService(
            project if len(models) == 1 else relman_name(name.replace(":", "-")),
            [name],
            [],
            f"artifact {name} (type: model) in {_dvcfile_of(name)}",
            [path],
            [],
        )
        for name, path in models
    ]
    events, _warnings = gto_events(tags(root))
    stages = _ordered(event.stage for event in events if event.stage)
    return Reading(project, services, stages)


def _yaml_artifacts(text: str) -> Any:
    """The ``artifacts:`` of a dvc.yaml loaded as YAML (None where there is none), or
    False where YAML cannot read the file."""
    import yaml

    try:
        doc = yaml.load(text, Loader=_loader()) or {}
    except yaml.YAMLError:
        return False
    return doc.get("artifacts") if isinstance(doc, dict) else None


def _loader() -> Any:
    """libyaml's loader where PyYAML was built with it: a dvc.yaml of 200 stages in ms."""
    try:
        from yaml import CSafeLoader

        return CSafeLoader
    except ImportError:  # pragma: no cover - depends on how PyYAML was built
        from yaml import SafeLoader

        return SafeLoader


def infer_project(root: Path, *, quick: bool = False) -> Project:
    """A read-only :class:`Project` for ``root`` from :func:`read_repository` (``quick``:
    from :func:`quick_reading` where it can, its services without data)."""
    reading = (quick_reading(root) if quick else None) or read_repository(root)
    if not reading.services:
        raise ProjectError(
            f"{root}: no relman.toml, and no model to read: declare one under 'artifacts:' "
            "in dvc.yaml (type: model), or run 'relman init' and name it in relman.toml"
        )
    config = RelmanConfig(
        project=ProjectConfig(name=reading.name),
        services={
            service.name: ServiceConfig(model=service.model, data=service.data)
            for service in reading.services
        },
        environments={
            relman_name(stage): EnvironmentConfig(
                stage=None if relman_name(stage) == stage else stage
            )
            for stage in reading.stages
        },
    )
    root = Path(root).resolve()
    return Project(root=root, config_path=root / CONFIG_NAME, config=config, inferred=True)


# ------------------------------------------------------------------------------ services


def _services(session: DvcSession) -> tuple[list[InferredService], list[str]]:
    from core.lineage.dvcinfo import declared_artifacts

    declared = declared_artifacts(session)
    outputs = session.outputs()
    models = [decl for decl in declared.values() if decl.type == "model"]
    notes: list[str] = []
    found: list[tuple[str, str, str]] = []  # (name, model as listed, source)
    if models:
        for decl in models:
            where = _dvcfile_of(decl.name)
            found.append((decl.name, decl.name, f"artifact {decl.name} (type: model) in {where}"))
    else:
        for path in _final_outputs(session):
            found.append((Path(path).stem, path, f"{path}: produced by a stage, read by none"))
        if found:
            notes.append(
                "no artifact of type: model in dvc.yaml: services are the outputs no stage reads"
            )
    services: list[InferredService] = []
    taken: set[str] = set()
    for raw, model, source in found:
        name = relman_name(raw.replace(":", "-"))
        while name in taken:
            name += "-2"
        taken.add(name)
        path = declared[model].path if model in declared else model
        data = _data_of(session, path, declared) if path in outputs else []
        data_paths = [declared[d].path if d in declared else d for d in data]
        services.append(InferredService(name, [model], data, source, [path], data_paths))
    return services, notes


def _dvcfile_of(artifact: str) -> str:
    folder, _, _name = artifact.rpartition(":")
    return f"{folder}/dvc.yaml" if folder else "dvc.yaml"


def _final_outputs(session: DvcSession) -> list[str]:
    """Outputs of pipeline stages that no stage reads, metrics and plots left out."""
    from core.lineage.candidate import _overlaps

    stages = list(session.repo.index.stages)
    read = [session.rel(dep.fs_path) for stage in stages for dep in stage.deps]
    final = []
    for stage in stages:
        if not getattr(stage, "cmd", None):
            continue  # a .dvc file or an import: data, not a product
        for out in stage.outs:
            if getattr(out, "metric", False) or getattr(out, "plot", False):
                continue
            path = session.rel(out.fs_path)
            if not any(_overlaps(path, dep) for dep in read):
                final.append(path)
    return final


def _data_of(session: DvcSession, model_path: str, declared: dict[str, Any]) -> list[str]:
    """What the stages up to the model read that DVC brings in (a .dvc file, an import),
    and the dataset artifacts among their outputs, by artifact name where declared."""
    from core.lineage.candidate import upstream_stages

    upstream = upstream_stages(session, [model_path])
    by_path = {decl.path: name for name, decl in declared.items() if decl.type == "dataset"}
    data: list[str] = []
    produced = {session.rel(o.fs_path) for stage in upstream for o in stage.outs}
    for stage in session.repo.index.stages:
        if getattr(stage, "cmd", None) and not stage.is_import:
            continue
        for out in stage.outs:
            path = session.rel(out.fs_path)
            read_by_upstream = any(
                session.rel(dep.fs_path) == path or path.startswith(session.rel(dep.fs_path) + "/")
                for up in upstream
                for dep in up.deps
            )
            if read_by_upstream or path in produced:
                data.append(by_path.get(path, path))
    read = {session.rel(dep.fs_path) for up in upstream for dep in up.deps}
    data += [name for path, name in by_path.items() if path in produced or path in read]
    return list(dict.fromkeys(data))


def _ordered(stages: Iterable[str]) -> list[str]:
    found = list(dict.fromkeys(stages))
    known = [stage for stage in _KNOWN_ORDER if stage in found]
    return known + sorted(stage for stage in found if stage not in known)

"""The DVC stages behind a service's model, and the files they read and record.

The rule: the stages producing the service's model artifacts, every stage downstream of a
model artifact (an ``evaluate`` writing the metrics the gates read), and every stage those
need. A stage that reads the service's data but leads to neither (a data report) is out.
``repro`` reproduces them, ``commit`` commits their records, the watcher compares their
DVC-tracked inputs with the workspace (core/pipelines/retrain.py, data_changes.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, ProjectError, UsageError
from core.lineage import dvcinfo

if TYPE_CHECKING:
    from core.config.model import Project
    from core.lineage.dvcinfo import ArtifactDecl, DvcSession

__all__ = ["StageScope", "stage_scope"]


@dataclass(frozen=True)
class StageScope:
    """The DVC stages behind one service's model and the files they involve (paths relative
    to the project root)."""

    targets: list[str]  # stage addresses asked of reproduce: model stages and downstream
    stages: list[str]  # the targets and every stage they need, in DVC's index order
    records: list[str]  # the dvc.lock and .dvc files recording their hashes
    git_outputs: list[str]  # outputs git keeps (cache: false): metrics, plots
    params: list[str]  # params files the stages read
    sources: list[str]  # other dependencies no stage produces: code, which git tracks
    pipelines: list[str]  # the dvc.yaml files of the stages
    # DVC-tracked inputs of the stages up to the model (not downstream of it): outputs of
    # .dvc files, and dependencies that nothing produces and DVC records (git decides which
    # of those are code): what the watcher compares with the workspace.
    inputs: list[str]


def stage_scope(project: Project, service: str) -> StageScope:
    """The stages to reproduce for ``service``'s model and what they read and record."""
    declared = project.config.services.get(service)
    if declared is None:
        known = ", ".join(project.config.services) or "none"
        raise UsageError(f"no service '{service}' in relman.toml (services: {known})")
    with dvcinfo.open_dvc(project.root) as session:
        stages = list(session.repo.index.stages)
        if session.load_errors:
            raise ProjectError(f"{session.load_errors[0]}; fix it, then run the pipeline again")
        artifacts = dvcinfo.declared_artifacts(session)
        models = [_resolve(session, artifacts, ref, service, "model") for ref in declared.model]
        data = [_resolve(session, artifacts, ref, service, "data") for ref in declared.data]
        return _Graph(session, stages).scope(models, data)


def _resolve(
    session: DvcSession, declared: dict[str, ArtifactDecl], ref: str, service: str, kind: str
) -> str:
    """The DVC-tracked path a service's model or data names (artifact name or path)."""
    by_path = {decl.path: decl for decl in declared.values()}
    decl = declared.get(ref) or by_path.get(Path(ref).as_posix().rstrip("/"))
    path = Path(os.path.normpath(decl.path if decl else ref)).as_posix()
    if path not in session.outputs():
        raise ConfigError(
            f"service {service} lists {kind} '{ref}', which no DVC stage or .dvc file tracks "
            "(fix relman.toml or dvc.yaml)"
        )
    return path


class _Graph:
    """Stages as lists of paths: DVC's own graph rule (a dependency on, inside or around an
    output), without networkx."""

    def __init__(self, session: DvcSession, stages: list[Any]) -> None:
        from dvc.dependency.param import ParamsDependency

        self.session = session
        self.stages = stages
        self.outs = [[session.rel(out.fs_path) for out in stage.outs] for stage in stages]
        self.deps: list[list[str]] = []
        self.params: set[str] = set()
        for stage in stages:
            paths = [p for dep in stage.deps if (p := _local_path(session, dep)) is not None]
            self.params.update(
                p
                for dep in stage.deps
                if isinstance(dep, ParamsDependency) and (p := _local_path(session, dep))
            )
            self.deps.append(paths)

    def producers(self, path: str) -> list[int]:
        return [i for i, outs in enumerate(self.outs) if any(_overlaps(path, o) for o in outs)]

    def upstream(self, start: set[int]) -> set[int]:
        found: set[int] = set()
        queue = list(start)
        while queue:
            index = queue.pop()
            if index in found:
                continue
            found.add(index)
            for dep in self.deps[index]:
                queue.extend(j for j in self.producers(dep) if j != index)
        return found

    def downstream(self, paths: list[str]) -> set[int]:
        reached, found = list(paths), set()
        grew = True
        while grew:
            grew = False
            for i, deps in enumerate(self.deps):
                if i not in found and any(_overlaps(d, p) for d in deps for p in reached):
                    found.add(i)
                    reached.extend(self.outs[i])
                    grew = True
        return found

    def scope(self, models: list[str], data: list[str]) -> StageScope:
        session, stages = self.session, self.stages
        made_by = {i for path in models for i in self.producers(path) if path in self.outs[i]}
        targets = made_by | self.downstream(models)
        chosen = sorted(self.upstream(targets))
        records, git_outputs, params, sources, pipelines = [], [], [], [], []
        for i in chosen:
            stage = stages[i]
            dvcfile = session.rel(stage.path)
            if getattr(stage, "name", None):
                pipelines.append(dvcfile)
                records.append((Path(dvcfile).parent / "dvc.lock").as_posix())
            else:
                records.append(dvcfile)
            git_outputs += [session.rel(o.fs_path) for o in stage.outs if not o.use_cache]
            for dep in self.deps[i]:
                if dep in self.params:
                    params.append(dep)
                elif not self.producers(dep):
                    sources.append(dep)
        inputs = list(data)
        for i in sorted(self.upstream(made_by)):
            for dep in self.deps[i]:
                made = [j for j in self.producers(dep) if not getattr(stages[j], "name", None)]
                inputs += [o for j in made for o in self.outs[j] if _overlaps(dep, o)]
                if not self.producers(dep) and dep not in self.params:
                    inputs.append(dep)  # recorded in dvc.lock only; git may track it (code)
        return StageScope(
            targets=[dvcinfo.stage_address(session, stages[i]) for i in sorted(targets)],
            stages=[dvcinfo.stage_address(session, stages[i]) for i in chosen],
            records=_unique(records),
            git_outputs=_unique(git_outputs),
            params=_unique(params),
            sources=_unique(sources),
            pipelines=_unique(pipelines),
            inputs=_unique(inputs),
        )


def _local_path(session: DvcSession, entry: Any) -> str | None:
    """The path of a dependency in the repository; None for another repo's, a URL, a DB."""
    fs_path = getattr(entry, "fs_path", None)
    if not isinstance(fs_path, str):
        return None
    try:
        inside = bool(entry.is_in_repo)
    except Exception:  # a dependency kind without a local filesystem
        return None
    return session.rel(fs_path) if inside else None


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

"""`relman init`: write relman.toml for an existing DVC repository.

Reads what the repository already says (core/lineage/infer.py): the models (`artifacts:` of
type model in any dvc.yaml, else the outputs no stage reads), their data, the stages of its
GTO tags; the BentoML build config (bentofile.yaml or [tool.bentoml.build] in
pyproject.toml) and the test folders. Without a BentoML service the services track lineage,
versions and stages, and the file says what to add to deploy (docs/adopting.md). Writes
nothing it cannot validate.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.config.model import CONFIG_NAME, parse_config
from core.errors import ConfigError, ProjectError, UsageError
from core.host.ports import free_ports
from core.lineage.infer import InferredService

SUITE_KINDS = {"unit": "unit", "data": "data", "model": "model"}
SAMPLE_FILE = "sample_request.json"


@dataclass
class Findings:
    """What `relman init` learned from the repository."""

    name: str
    bento: str | None  # None: no BentoML service yet (lineage, versions and stages only)
    build: str | None
    services: list[InferredService]
    stages: list[str]  # GTO stages its tags use; environments are named after them
    suites: dict[str, list[str]] = field(default_factory=dict)
    # The service the BentoML service serves: the one model, or the one --service names.
    serves: str | None = None
    sample_request: str | None = None
    endpoint: str | None = None  # the API the sample request is for, when not "predict"
    # What --scaffold-service wrote (from the root), and what a person should check there.
    scaffolded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Written:
    """What `relman init` wrote, and the one line a person needs next."""

    path: Path
    services: list[str]
    deployable: bool
    next: str
    serves: str | None = None  # the service given the BentoML service, if any
    scaffolded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def init_project(
    root: Path, *, force: bool = False, scaffold: bool = False, service: str | None = None
) -> Written:
    """Write relman.toml; with ``scaffold``, first a minimal BentoML service for the model
    when the repository has none (core/scaffold/service.py). ``service`` names the one of
    several models the BentoML service (found or scaffolded) serves."""
    root = root.resolve()
    target = root / CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(f"{target}: already exists; edit it, or pass --force to write a new one")
    findings = _served(inspect_repository(root), service, scaffold=scaffold)
    if scaffold and findings.bento is None:
        findings = _scaffolded(root, findings)
    elif findings.bento is not None and findings.serves and findings.sample_request is None:
        findings = _sampled(root, findings)
    envs = _environments(findings.stages)
    text = render_config(findings, ports=free_ports(len(envs)))
    parse_config(text, target)  # never write a file relman itself would refuse
    tmp = target.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    names = [service.name for service in findings.services]
    if findings.bento is None:
        nxt = (
            "no BentoML service here yet: relman tracks lineage, versions and stages; to "
            'deploy, add bento = "module:Class" and a bentofile.yaml to the service in '
            f"relman.toml (or {_scaffold_hint(names)})"
        )
    elif findings.serves is None:
        nxt = (
            f"{findings.build} builds {findings.bento}, but this repository has "
            f"{len(names)} models ({', '.join(names)}): say which it serves with "
            "'relman init --force --service NAME'"
        )
    else:
        nxt = "review it, then run 'relman status'"
    if findings.scaffolded:
        nxt = "commit the service it wrote, then run 'relman release --to " + (
            _environments(findings.stages)[0][0] + "'"
        )
    return Written(
        target,
        names,
        findings.bento is not None and findings.serves is not None,
        nxt,
        findings.serves,
        findings.scaffolded,
        findings.notes,
    )


def _scaffold_hint(names: list[str]) -> str:
    """How to write a minimal BentoML service once relman.toml exists (hence --force)."""
    if len(names) == 1:
        return "run 'relman init --force --scaffold-service'"
    return "run 'relman init --force --scaffold-service --service NAME' for one of " + ", ".join(
        names
    )


def _served(findings: Findings, service: str | None, *, scaffold: bool) -> Findings:
    """The findings with the service the BentoML service serves: the one model, or the one
    ``service`` names (UsageError for a name that is not one; with ``scaffold`` and several
    models, a name is needed)."""
    names = [found.name for found in findings.services]
    if service is not None and service not in names:
        raise UsageError(
            f"--service {service}: no such model in this repository (its services: "
            f"{', '.join(names)}); name one of them"
        )
    if service is None and len(names) == 1:
        service = names[0]
    if service is None and scaffold and findings.bento is None:
        raise UsageError(
            f"--scaffold-service writes a service for one model; this repository has "
            f"{len(names)} ({', '.join(names)}): name one with --service NAME"
        )
    return dataclasses.replace(findings, serves=service)


def _sampled(root: Path, findings: Findings) -> Findings:
    """The findings once sample_request.json is written for the BentoML service found: a
    body its API takes, from the training data (core/scaffold/request_sample.py)."""
    from core.lineage.build_context import context_folder
    from core.scaffold.request_sample import service_sample

    target = root / SAMPLE_FILE
    if target.exists():  # there, but not JSON: left as it is
        note = f"{SAMPLE_FILE} is not JSON: no sample request named in relman.toml; fix it"
        return dataclasses.replace(findings, notes=[*findings.notes, note])
    served = next(found for found in findings.services if found.name == findings.serves)
    context = root / context_folder(root, findings.build or "bentofile.yaml")
    sample = service_sample(root, context, findings.bento or "", served.data_paths)
    notes = [*findings.notes, *sample.notes]
    if sample.body is None:
        return dataclasses.replace(findings, notes=notes)
    with target.open("x", encoding="utf-8") as handle:
        handle.write(json.dumps(sample.body, indent=2) + "\n")
    return dataclasses.replace(
        findings,
        sample_request=SAMPLE_FILE,
        endpoint=sample.endpoint if sample.endpoint != "predict" else None,
        scaffolded=[*findings.scaffolded, SAMPLE_FILE],
        notes=notes,
    )


def _scaffolded(root: Path, findings: Findings) -> Findings:
    """The findings once a minimal BentoML service is written for the model it serves."""
    from core.scaffold.service import write_service

    service = next(found for found in findings.services if found.name == findings.serves)
    written = write_service(root, service.name, service.model_paths[0], service.data_paths)
    suites = {**findings.suites, written.suite: [written.suite_path]}
    return dataclasses.replace(
        findings,
        bento=written.bento,
        build=written.build,
        sample_request=written.sample_request,
        suites=suites,
        scaffolded=list(written.files),
        notes=list(written.notes),
    )


def inspect_repository(root: Path) -> Findings:
    if not (root / ".git").exists():
        raise ProjectError(f"{root}: not a git repository; run 'git init' first")
    from core.lineage.infer import read_repository

    reading = read_repository(root)
    if not reading.services:
        raise ProjectError(
            f"{root}: no model to release: declare one under 'artifacts:' in dvc.yaml "
            "(type: model), or give a stage an output no other stage reads"
        )
    found = _find_bento(root)
    bento, build, notes = found if found is not None else (None, None, [])
    sample = root / SAMPLE_FILE
    sample_request = None
    if sample.is_file():
        try:
            json.loads(sample.read_text(encoding="utf-8"))
            sample_request = sample.name
        except ValueError:
            sample_request = None
    return Findings(
        name=_slug(root.name),
        bento=bento,
        build=build,
        services=reading.services,
        stages=reading.stages,
        suites=_find_suites(root),
        sample_request=sample_request,
        notes=notes,
    )


def _environments(stages: list[str]) -> list[tuple[str, str | None, int]]:
    """(name, GTO stage when it differs, approvals): the usual three, unless the tags use
    stages of other names: then those. A stage named like production needs one approval."""
    from core.lineage.infer import relman_name

    usual: list[tuple[str, str | None, int]] = [
        ("dev", None, 0),
        ("staging", None, 0),
        ("prod", None, 1),
    ]
    if set(stages) <= {"dev", "staging", "prod"}:
        return usual
    envs: list[tuple[str, str | None, int]] = []
    for stage in stages:
        name = relman_name(stage)
        approvals = 1 if name in ("prod", "production") else 0
        envs.append((name, None if name == stage else stage, approvals))
    return envs


BUILD_CONFIGS = ("bentofile.yaml", "pyproject.toml")


def _find_bento(root: Path) -> tuple[str, str, list[str]] | None:
    """(service, build config, notes): the BentoML build config of the repository, a
    bentofile.yaml or a pyproject.toml with [tool.bentoml.build], at the root or in a
    subfolder (the shallowest first; notes name the others)."""
    found: list[tuple[str, str]] = []
    for relative in _build_config_paths(root):
        service = _service_of(root / relative)
        if service is not None:
            found.append((service, relative))
    if not found:
        return None
    (service, build), others = found[0], found[1:]
    notes = []
    if others:
        shown = ", ".join(f"{path} ({named})" for named, path in others)
        notes.append(
            f"{build} is the build config written to relman.toml; also found {shown}: point "
            "'build' and 'bento' at another one if that is the service to release"
        )
    return service, build, notes


def _build_config_paths(root: Path) -> list[str]:
    """bentofile.yaml and pyproject.toml files git tracks or would track (not ignored), by
    depth, then path; the root's bentofile first, as BentoML looks for it first."""
    from core.lineage.gitinfo import git

    listed = git(
        root, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
        *BUILD_CONFIGS, *(f"*/{name}" for name in BUILD_CONFIGS),
    ).split("\0")  # fmt: skip
    paths = {path for path in listed if path and Path(path).name in BUILD_CONFIGS}
    paths |= {name for name in BUILD_CONFIGS if (root / name).is_file()}
    return sorted(
        (path for path in paths if (root / path).is_file()),
        key=lambda path: (path.count("/"), BUILD_CONFIGS.index(Path(path).name), path),
    )


def _service_of(path: Path) -> str | None:
    """The service a build config names; None for a pyproject.toml without a BentoML build
    table; ProjectError for a file that cannot be read or a bentofile naming no service."""
    shown = str(path)
    if path.name == "pyproject.toml":
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProjectError(f"{shown}: invalid TOML ({exc})") from exc
        build = doc.get("tool", {}).get("bentoml", {}).get("build", {})
        service = build.get("service") if isinstance(build, dict) else None
        return str(service) if service else None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ProjectError(f"{shown}: not valid YAML; fix it and rerun") from exc
    service = doc.get("service") if isinstance(doc, dict) else None
    if not service:
        raise ProjectError(f"{shown}: no 'service:' key; name the BentoML service")
    return str(service)


def _has_tests(folder: Path) -> bool:
    return any(folder.rglob("test_*.py")) or any(folder.rglob("*_test.py"))


def _find_suites(root: Path) -> dict[str, list[str]]:
    tests = root / "tests"
    if not tests.is_dir():
        return {}
    suites = {
        _slug(sub.name): [f"tests/{sub.name}"]
        for sub in sorted(tests.iterdir())
        if sub.is_dir() and not sub.name.startswith((".", "_")) and _has_tests(sub)
    }
    top_level = [p for p in tests.glob("test_*.py")]
    if top_level or (not suites and _has_tests(tests)):
        suites = {"tests": ["tests"]} if not suites else {**suites, "tests": ["tests"]}
    return suites


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    if not slug or not slug[0].isalpha():
        slug = "p-" + slug if slug else "project"
    return slug


def _q(value: str) -> str:
    return json.dumps(value)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def render_config(found: Findings, *, ports: list[int]) -> str:
    suites = list(found.suites)
    lines = [
        "# relman.toml, written by 'relman init' from what this repository holds.",
        "# Environments are promoted in the order of their tables below.",
        "",
        "[project]",
        f"name = {_q(found.name)}",
    ]
    several = len(found.services) > 1
    for service in found.services:
        lines += ["", f"# {service.source}", f"[services.{service.name}]"]
        served = found.bento is not None and service.name == found.serves
        if served:
            lines += [f"bento = {_q(found.bento or '')}", f"build = {_q(found.build or '')}"]
        else:
            scaffold = "relman init --force --scaffold-service" + (
                f" --service {service.name}" if several else ""
            )
            lines += [
                "# No BentoML service yet: relman tracks this model's lineage, versions and",
                "# stages. To build and deploy it, name the service and its build config:",
                '# bento = "service:MyService"',
                '# build = "bentofile.yaml"',
                f"# (or run '{scaffold}' to write a minimal one)",
            ]
        lines += [f"model = {_list(service.model)}", f"data = {_list(service.data)}"]
        if found.sample_request and served:
            lines.append(f"sample_request = {_q(found.sample_request)}")
        if found.endpoint and served:
            lines.append(f"endpoint = {_q(found.endpoint)}")
    for (env, stage, approvals), port in zip(_environments(found.stages), ports, strict=True):
        lines += ["", f"[environments.{env}]", f"port = {port}", f"suites = {_list(suites)}"]
        if stage is not None:
            lines.append(f"stage = {_q(stage)}  # its name in the GTO tags")
        if approvals:
            lines.append(f"approvals = {approvals}  # from someone other than the promoter")
    for name, paths in found.suites.items():
        lines += ["", f"[suites.{name}]", f"paths = {_list(paths)}"]
        kind = SUITE_KINDS.get(name)
        if kind:
            lines.append(f"kind = {_q(kind)}")
    lines += [
        "",
        "# Gates on the DVC metrics of a release, e.g.:",
        "# [gates.accuracy-floor]",
        '# metric = "accuracy"',
        "# min = 0.90",
        '# and list them per environment: gates = ["accuracy-floor"]',
        "",
    ]
    return "\n".join(lines)

"""`relman init`: write relman.toml for an existing DVC + BentoML repository.

Reads what the repository already says: the `artifacts:` of dvc.yaml (type model / dataset),
the BentoML build config (bentofile.yaml or [tool.bentoml.build] in pyproject.toml) and the
test folders. Writes nothing it cannot validate.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config.model import CONFIG_NAME, parse_config
from core.errors import ConfigError, ProjectError
from core.host.ports import free_ports

SUITE_KINDS = {"unit": "unit", "data": "data", "model": "model"}


@dataclass
class Findings:
    """What `relman init` learned from the repository."""

    name: str
    bento: str
    build: str
    models: list[str]
    datasets: list[str]
    suites: dict[str, list[str]] = field(default_factory=dict)
    sample_request: str | None = None


def init_project(root: Path, *, force: bool = False) -> Path:
    root = root.resolve()
    target = root / CONFIG_NAME
    if target.exists() and not force:
        raise ConfigError(f"{target}: already exists; edit it, or pass --force to write a new one")
    findings = inspect_repository(root)
    text = render_config(findings, ports=free_ports(3))
    parse_config(text, target)  # never write a file relman itself would refuse
    tmp = target.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


def inspect_repository(root: Path) -> Findings:
    if not (root / ".git").exists():
        raise ProjectError(f"{root}: not a git repository; run 'git init' first")
    dvc_yaml = root / "dvc.yaml"
    if not dvc_yaml.is_file():
        raise ProjectError(
            f"{root}: no dvc.yaml; relman releases DVC pipelines: declare your stages and "
            "artifacts there first (or try 'relman demo DIR' for an example)"
        )
    try:
        dvc_doc = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ProjectError(f"{dvc_yaml}{line}: not valid YAML; fix it and rerun") from exc
    artifacts: dict[str, Any] = dvc_doc.get("artifacts") or {}
    models = [name for name, spec in artifacts.items() if (spec or {}).get("type") == "model"]
    datasets = [name for name, spec in artifacts.items() if (spec or {}).get("type") == "dataset"]
    if not models:
        raise ProjectError(
            f"{dvc_yaml}: no artifact of 'type: model' under 'artifacts:'; declare the model "
            "there so relman knows what a release ships"
        )
    bento, build = _find_bento(root)
    sample = root / "sample_request.json"
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
        models=models,
        datasets=datasets,
        suites=_find_suites(root),
        sample_request=sample_request,
    )


def _find_bento(root: Path) -> tuple[str, str]:
    bentofile = root / "bentofile.yaml"
    if bentofile.is_file():
        try:
            doc = yaml.safe_load(bentofile.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ProjectError(f"{bentofile}: not valid YAML; fix it and rerun") from exc
        service = doc.get("service") if isinstance(doc, dict) else None
        if not service:
            raise ProjectError(f"{bentofile}: no 'service:' key; name the BentoML service")
        return str(service), "bentofile.yaml"
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{pyproject}: invalid TOML ({exc})") from exc
        build = doc.get("tool", {}).get("bentoml", {}).get("build", {})
        if build.get("service"):
            return str(build["service"]), "pyproject.toml"
    raise ProjectError(
        f"{root}: no BentoML build config (bentofile.yaml, or [tool.bentoml.build] with "
        "'service' in pyproject.toml); add one so relman can build the service"
    )


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
        "",
        f"[services.{found.name}]",
        f"bento = {_q(found.bento)}",
        f"build = {_q(found.build)}",
        f"model = {_list(found.models)}",
        f"data = {_list(found.datasets)}",
    ]
    if found.sample_request:
        lines.append(f"sample_request = {_q(found.sample_request)}")
    for env, port, approvals in zip(("dev", "staging", "prod"), ports, (0, 0, 1), strict=True):
        lines += ["", f"[environments.{env}]", f"port = {port}", f"suites = {_list(suites)}"]
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

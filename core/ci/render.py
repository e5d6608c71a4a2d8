"""The pieces both CI definitions share: the shell lines of a job (installing the project and
relman, keeping the job's own files out of `git status`, pulling DVC data) and the YAML writer
that makes the same text of the same document (core/ci/workflows.py).
"""

from __future__ import annotations

import re
import shlex
import textwrap
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import yaml

# Where the jobs write relman's reports (JUnit, Markdown), relative to the checkout.
REPORTS = "reports/relman"

_DVC_PULL_FAILED = (
    "dvc pull failed: no DVC remote, or no credentials for it in the environment of this job "
    "(see secrets for a DVC remote in docs/ci.md of relman); going on with the DVC cache"
)


def dvc_pull(warning: str) -> str:
    """``dvc pull``, or a ``warning``-prefixed line when it fails: the run goes on with what
    the restored cache holds (DVC checks that out even when the remote is out of reach), and
    relman names what is missing."""
    return f'dvc pull || echo "{warning}{_DVC_PULL_FAILED}"'


def venv_of(python: str | None) -> str | None:
    """The virtual environment a relative ``[project] python`` lives in (``.venv`` for
    ``.venv/bin/python``); None for the interpreter relman runs in, or an absolute path."""
    if not python:
        return None
    path = PurePosixPath(python.replace("\\", "/"))
    if path.is_absolute() or path.parent.name not in ("bin", "Scripts") or len(path.parts) < 3:
        return None
    return str(path.parent.parent)


def install_lines(has_requirements: bool, project_python: str | None) -> list[str]:
    """Install the project's requirements (into its own venv when relman.toml names one)
    and relman (``$RELMAN_INSTALL``)."""
    lines = ["python -m pip install --upgrade pip"]
    venv = venv_of(project_python)
    if venv is not None:
        # relman.toml runs the suites and stages in this interpreter: make it.
        lines.append(f"python -m venv {shlex.quote(venv)}")
        if has_requirements:
            lines.append(f"{shlex.quote(project_python or '')} -m pip install -r requirements.txt")
    elif has_requirements:
        lines.append("pip install -r requirements.txt")
    # The variable holds a whole command (a pinned git URL needs its quotes): eval runs it.
    lines.append('eval "$RELMAN_INSTALL"')
    return lines


def prepare(project_python: str | None, extra: Sequence[str] = ()) -> list[str]:
    """The folder relman writes its reports in, and the line that adds what the job writes to
    this clone's ``.git/info/exclude``."""
    # relman refuses to release from a tree with files git does not know: keep what the job
    # itself writes (relman's state, its reports, a venv) out of `git status`, in this clone.
    venv = venv_of(project_python)
    paths = ["/.relman/", f"/{REPORTS}/", *extra, *([f"/{venv}/"] if venv else [])]
    quoted = " ".join(shlex.quote(path) for path in paths)
    return [f"mkdir -p {REPORTS}", f"printf '%s\\n' {quoted} >> .git/info/exclude"]


def dump(document: dict[str, Any], header: Sequence[str], spaced: Sequence[str]) -> str:
    """``document`` as YAML under ``header`` (paragraphs, as comments), a blank line before
    each top-level key and each key under the top-level keys in ``spaced``."""
    body = yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, width=4096, default_flow_style=False
    )
    lines: list[str] = []
    for paragraph in header:
        lines += ["#"] if lines else []
        lines += [f"# {line}" for line in textwrap.wrap(paragraph, 92)]
    top: str | None = None
    for line in body.splitlines():
        if line and not line.startswith(" "):
            top = line.split(":", 1)[0].strip("'\"")
            lines.append("")
        elif top in spaced and re.match(r"^  [^ #-].*:$", line) and lines[-1] != f"{top}:":
            lines.append("")
        lines.append(line)
    return "\n".join(lines) + "\n"


class _Dumper(yaml.SafeDumper):
    """Block style, lists indented under their key, multi-line strings as ``|`` blocks, and
    shared steps written out in each job (no anchors)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _null(dumper: yaml.SafeDumper, _data: None) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:null", "")


_Dumper.add_representer(str, _str)
_Dumper.add_representer(type(None), _null)


def block(lines: Sequence[str]) -> str:
    """Shell lines as one ``run:`` value: one line as is, more as a ``|`` block."""
    return lines[0] if len(lines) == 1 else "\n".join(lines) + "\n"

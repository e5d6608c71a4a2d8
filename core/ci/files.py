"""`relman ci` as a whole (:func:`write_ci`): the default branch read from git, how this relman
is installed, the workflow generated (core/ci/workflows.py) and written with a first-line
marker holding a digest of what relman wrote, so that a file relman did not write, or one edited
since, is overwritten only with --force (docs/ci.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from core.ci.workflows import (
    Kind,
    PipelineUse,
    github_workflow,
    gitlab_pipeline,
    select_jobs,
)
from core.errors import UsageError

DEFAULT_PATHS: dict[str, Path] = {
    "github": Path(".github/workflows/relman.yml"),
    "gitlab": Path(".gitlab-ci.yml"),
}
_MARKER = re.compile(r"^# Written by relman ci (?:github|gitlab) \(digest ([0-9a-f]{16})\)")


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:16]


def marked(kind: Kind, body: str) -> str:
    """``body`` under the first line that says relman wrote it, with a digest of ``body``."""
    return (
        f"# Written by relman ci {kind} (digest {_digest(body)}); edit freely: relman "
        f"replaces it only with --force\n{body}"
    )


def workflow_path(root: Path, kind: Kind, out: Path | None) -> Path:
    """Where the workflow goes: ``out`` (a relative path from the current folder, as every path
    on the command line), else the platform's own place in the project."""
    if out is not None:
        return Path(out).expanduser().absolute()
    return root / DEFAULT_PATHS[kind]


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def write_workflow(
    root: Path, kind: Literal["github", "gitlab"], text: str, out: Path | None, *, force: bool
) -> Path:
    """Write ``text`` (under the marker line) to :func:`workflow_path`, creating its folders,
    atomically. An existing file is replaced when relman wrote it and nobody edited it since,
    or with ``force``; otherwise a UsageError (exit 2) says so and nothing is written."""
    path = workflow_path(root, kind, out)
    shown = _shown(path, root)
    if path.is_dir():
        raise UsageError(f"relman ci: {shown} is a folder; name a file with --out")
    if path.exists() and not force:
        try:
            first, _, rest = path.read_text(encoding="utf-8", errors="replace").partition("\n")
        except OSError as exc:
            raise UsageError(
                f"relman ci: cannot read {shown}: {exc.strerror or exc}; check its permissions"
            ) from exc
        found = _MARKER.match(first)
        if found is None:
            raise UsageError(
                f"relman ci: {shown} exists and relman did not write it; merge by hand, write "
                "elsewhere with --out PATH, or replace it with --force"
            )
        if found.group(1) != _digest(rest):
            raise UsageError(
                f"relman ci: {shown} was edited since relman wrote it; keep the edits (nothing "
                "was written), or replace it with --force"
            )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(marked(kind, text), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise UsageError(
            f"relman ci: cannot write {shown}: {exc.strerror or exc}; name a writable file "
            "with --out"
        ) from exc
    return path


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def default_branch(root: Path) -> str:
    """The branch CI runs on: the remote's default (``origin/HEAD``), else the branch checked
    out, else git's ``init.defaultBranch``, else ``main``."""
    remote = _git(root, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if remote.startswith("origin/"):
        return remote.removeprefix("origin/")
    return (
        _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
        or _git(root, "config", "--get", "init.defaultBranch")
        or "main"
    )


def relman_install() -> str:
    """The command that installs this relman in CI: from the git URL and commit it was
    installed from (PEP 610 ``direct_url.json``), else pinned to its version."""
    try:
        dist = metadata.distribution("relman")
    except metadata.PackageNotFoundError:
        return "pip install relman"
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "null")
    except ValueError:
        direct = None
    if isinstance(direct, dict) and isinstance(direct.get("url"), str):
        # Never a token that came with the URL into a file that is committed.
        url = re.sub(r"//[^/@]*@", "//", direct["url"])
        vcs = direct.get("vcs_info")
        if isinstance(vcs, dict) and vcs.get("vcs") and vcs.get("commit_id"):
            return f'pip install "relman @ {vcs["vcs"]}+{url}@{vcs["commit_id"]}"'
        if "archive_info" in direct and url.startswith("https://"):
            return f'pip install "relman @ {url}"'
    return f'pip install "relman=={dist.version}"'


def write_ci(
    root: Path,
    project_name: str,
    kind: str,
    uses: Sequence[PipelineUse],
    *,
    chosen: Sequence[str] = (),
    out: Path | None = None,
    force: bool = False,
    branch: str | None = None,
    python: str = "3.11",
    project_python: str | None = None,
) -> dict[str, Any]:
    """`relman ci KIND`: generate the workflow for the project at ``root`` and write it.
    ``uses`` holds each assigned (pipeline, service, on, step names); ``chosen`` the
    pipelines named with --pipeline. Returns ``{"ok", "kind", "path", "shown", "branch",
    "replaced", "jobs": [{"pipeline", "service", "command", "commits"}]}``."""
    if kind not in DEFAULT_PATHS:
        raise UsageError(f"relman ci: unknown CI {kind!r}; name github or gitlab")
    platform: Kind = "github" if kind == "github" else "gitlab"
    jobs = select_jobs(uses, chosen)
    branch = branch or default_branch(root)
    generate = github_workflow if platform == "github" else gitlab_pipeline
    text = generate(
        project_name,
        jobs,
        branch=branch,
        python=python,
        has_requirements=(root / "requirements.txt").is_file(),
        relman_install=relman_install(),
        project_python=project_python,
    )
    replaced = workflow_path(root, platform, out).exists()
    path = write_workflow(root, platform, text, out, force=force)
    return {
        "ok": True,
        "kind": platform,
        "path": str(path),
        "shown": _shown(path, root),
        "branch": branch,
        "replaced": replaced,
        "jobs": [
            {
                "pipeline": job.pipeline,
                "service": job.service,
                "command": shlex.join(job.command),
                "commits": job.commits,
            }
            for job in jobs
        ],
    }

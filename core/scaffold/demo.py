"""`relman demo DIR`: a complete, offline example ML repository to try relman on.

The demo is a real project, not a mock: a git repository whose iris dataset is tracked by DVC
(pushed to a local remote beside it), a `prepare -> train -> evaluate` pipeline reproduced
once, pytest suites of three kinds, a BentoML service that logs its predictions, and a
relman.toml wiring it all into dev -> staging -> prod. The files come from
``core/scaffold/demo_template/``; this module renders them and drives git and DVC.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from string import Template

from core.config.model import CONFIG_NAME, load_config
from core.errors import InfraError, ReleaseError, UsageError
from core.host.ports import free_ports

TEMPLATE_DIR = Path(__file__).with_name("demo_template")
PROJECT_NAME = "iris-demo"
# Ports of dev, staging and prod, moved up past any that are taken.
PREFERRED_PORT = 3100
DEMO_USER_NAME = "relman demo"
DEMO_USER_EMAIL = "demo@relman.invalid"
DVC_REMOTE_NAME = "local"
DATASET = Path("data") / "iris.csv"

# Files of the template that are rendered with string.Template, then lose their suffix.
_RENDERED_SUFFIX = ".tmpl"
# Package data keeps no dotfiles reliably, so these are stored under a plain name.
_RENAMED = {"gitignore": ".gitignore"}
_SKIPPED = {"__pycache__", ".pytest_cache"}
# Variables that would point git at another repository than the demo's.
_GIT_REDIRECTS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY")

Log = Callable[[str], None]


def create_demo(target: Path, *, force: bool = False, log: Log | None = None) -> Path:
    """Create the demo project in ``target`` and return its root.

    ``target`` must be absent or empty; with ``force`` a previous demo there is replaced.
    On failure the half-made project is removed and an InfraError says which step failed.
    """
    say: Log = log or (lambda _message: None)
    root = Path(target).expanduser().resolve()
    remote = root.parent / f"{root.name}-dvc-remote"
    if remote.exists() and not remote.is_dir():
        raise UsageError(
            f"relman-demo: {remote} (the demo's DVC remote) is a file; move it away, "
            "or choose another folder"
        )
    existed = _claim_target(root, force=force)
    remote_existed = remote.exists()
    try:
        _build(root, remote, say)
    except BaseException:
        # Only a folder that was absent, empty or a previous demo gets here: safe to remove.
        shutil.rmtree(root, ignore_errors=True)
        if existed:
            root.mkdir(parents=True, exist_ok=True)
        if not remote_existed:
            shutil.rmtree(remote, ignore_errors=True)
        raise
    return root


def _build(root: Path, remote: Path, say: Log) -> None:
    ports = free_ports(3, start=PREFERRED_PORT)
    say(f"writing the project files (ports {', '.join(map(str, ports))})")
    _copy_template(
        root,
        {
            "dev_port": str(ports[0]),
            "staging_port": str(ports[1]),
            "prod_port": str(ports[2]),
            "remote_dir": f"../{remote.name}",
        },
    )
    with _step("loading the iris dataset", root):
        count = write_iris(root / DATASET)
    say(f"{DATASET}: {count} flowers from scikit-learn")

    say("git init")
    _git(root, "init", "--quiet", "--initial-branch=main")
    if _ensure_identity(root):
        say(f"git identity: none configured; using {DEMO_USER_NAME} <{DEMO_USER_EMAIL}> here")

    with _python_on_path(), contextlib.chdir(root), _quiet_dvc():
        # DVC's Python API resolves paths and stage folders from the cwd, like its CLI.
        _run_dvc(root, remote, say)

    say("git commit")
    _git(root, "add", "--all")
    _git(
        root,
        # The user's global signing or hooks have no business in a generated repository.
        "-c",
        "commit.gpgsign=false",
        "commit",
        "--quiet",
        "--no-verify",
        "--message",
        "Create the iris demo: data, pipeline, model, tests and service",
    )
    left = _git(root, "status", "--porcelain").strip()
    if left:
        raise InfraError(
            f"relman-demo: {root} is not clean after the first commit ({left.splitlines()[0]}); "
            "report this as a relman bug"
        )
    load_config(root / CONFIG_NAME)
    say(f"{CONFIG_NAME}: valid")


def _run_dvc(root: Path, remote: Path, say: Log) -> None:
    # Imported here: DVC takes a second to import and only this command needs it.
    from dvc.config_schema import RelPath
    from dvc.repo import Repo

    say(f"dvc init (remote '{DVC_REMOTE_NAME}': {remote})")
    with _step("dvc init", root):
        remote.mkdir(parents=True, exist_ok=True)
        repo = Repo.init(str(root))
    try:
        with _step("dvc config", root), repo.config.edit() as conf:
            core = conf.setdefault("core", {})
            core["analytics"] = False
            # relman decides what gets staged and committed, never DVC behind its back.
            core["autostage"] = False
            core["remote"] = DVC_REMOTE_NAME
            # Stored relative to .dvc/, so the repository and its remote can move together.
            conf.setdefault("remote", {})[DVC_REMOTE_NAME] = {"url": RelPath(str(remote))}
        say(f"dvc add {DATASET}")
        with _step(f"dvc add {DATASET}", root):
            repo.add(str(DATASET))
        say("dvc repro: preparing the split, training and evaluating the model")
        with _step("dvc repro", root):
            repo.reproduce()
        metrics = json.loads((root / "metrics.json").read_text(encoding="utf-8"))
        say(f"model: accuracy {metrics['accuracy']}, f1_macro {metrics['f1_macro']}")
        say("dvc push")
        with _step("dvc push", root):
            repo.push()
        with _step("dvc status", root):
            changed = repo.status()
        if changed:
            raise InfraError(
                f"relman-demo: DVC reports changes right after 'dvc repro' in {root} "
                f"({', '.join(sorted(changed))}); report this as a relman bug"
            )
    finally:
        repo.close()


# ------------------------------------------------------------------------------- the folder


def _claim_target(root: Path, *, force: bool) -> bool:
    """Make ``root`` ready to receive the demo; return whether it existed before."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"relman-demo: {root} is a file; choose a folder for the demo")
    if not root.exists():
        return False
    if not any(root.iterdir()):
        return True
    if not force:
        raise UsageError(
            f"relman-demo: folder exists and is not empty ({root}); pass --force to "
            "overwrite, or choose another folder"
        )
    if not is_previous_demo(root):
        # --force replaces a demo, never someone's work: a real project can hold a
        # relman.toml too, so only the demo's own project name counts.
        raise UsageError(
            f"relman-demo: {root} is not empty and holds no earlier relman demo "
            f"({CONFIG_NAME} with project name '{PROJECT_NAME}'); --force only replaces a "
            "demo, so choose another folder"
        )
    shutil.rmtree(root)
    root.mkdir()
    return True


def is_previous_demo(root: Path) -> bool:
    """Whether ``root`` holds a project made by :func:`create_demo`."""
    try:
        data = tomllib.loads((root / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    project = data.get("project")
    return isinstance(project, dict) and project.get("name") == PROJECT_NAME


def _copy_template(root: Path, variables: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for source in sorted(TEMPLATE_DIR.rglob("*")):
        relative = source.relative_to(TEMPLATE_DIR)
        if _SKIPPED.intersection(relative.parts) or source.suffix == ".pyc":
            continue
        name = _RENAMED.get(relative.name, relative.name)
        destination = root / relative.parent / name
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif name.endswith(_RENDERED_SUFFIX):
            text = Template(source.read_text(encoding="utf-8")).substitute(variables)
            destination.with_name(name.removesuffix(_RENDERED_SUFFIX)).write_text(
                text, encoding="utf-8"
            )
        else:
            shutil.copyfile(source, destination)


def write_iris(path: Path) -> int:
    """Write scikit-learn's bundled iris dataset (no download) as CSV; return the row count."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
        for values, target in zip(iris.data, iris.target, strict=True):
            writer.writerow([repr(float(v)) for v in values] + [str(iris.target_names[target])])
    return len(iris.target)


# ----------------------------------------------------------------------------- git and DVC


def _git(root: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_REDIRECTS}
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as exc:
        raise InfraError("relman-demo: git is not installed or not on PATH; install git") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InfraError(f"relman-demo: 'git {args[0]}' failed in {root}: {reason}")
    return done.stdout


def _ensure_identity(root: Path) -> bool:
    """Give the repository a local git identity if none is configured; True if it did."""
    changed = False
    for key, value in (("user.name", DEMO_USER_NAME), ("user.email", DEMO_USER_EMAIL)):
        try:
            _git(root, "config", key)
        except InfraError:
            # `git config KEY` exits 1 when the key is unset anywhere (system, global, local).
            _git(root, "config", "--local", key, value)
            changed = True
    return changed


@contextlib.contextmanager
def _python_on_path() -> Iterator[None]:
    """Let DVC stage commands' ``python`` be this interpreter, which has scikit-learn.

    relman may run from a virtualenv whose bin/ is not on PATH. Where that folder's
    ``python`` is another interpreter (or missing), a tiny shell shim stands in; a symlink
    would not do, as a venv's interpreter finds its site-packages through its own path.
    """
    executable = Path(sys.executable)
    folder = executable.parent
    shim: Path | None = None
    candidate = folder / "python"
    if not candidate.is_file() or os.path.realpath(candidate) != os.path.realpath(executable):
        shim = Path(tempfile.mkdtemp(prefix="relman-python-"))
        script = shim / "python"
        script.write_text(f'#!/bin/sh\nexec "{executable}" "$@"\n', encoding="utf-8")
        script.chmod(0o755)
        folder = shim
    previous = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join(filter(None, [str(folder), previous]))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = previous
        if shim is not None:
            shutil.rmtree(shim, ignore_errors=True)


@contextlib.contextmanager
def _quiet_dvc() -> Iterator[None]:
    """Silence DVC's logger for a while.

    DVC installs stdout/stderr handlers when imported; its chatter would break a TUI or a
    --json document, and its errors reach us as exceptions anyway.
    """
    import dvc.repo  # noqa: F401 - importing DVC resets its logger, so import it first

    logger = logging.getLogger("dvc")
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


@contextlib.contextmanager
def _step(what: str, root: Path) -> Iterator[None]:
    """Turn a tool's exception into one InfraError line naming the step and the folder."""
    try:
        yield
    except ReleaseError:
        raise
    except Exception as exc:
        # DVC wraps the real reason ("failed to run: python src/train.py, exited with 1")
        # in a vaguer error ("failed to reproduce 'train'"): show both.
        reasons = [" ".join(str(exc).split()) or type(exc).__name__]
        cause = exc.__cause__
        while cause is not None:
            reasons.append(" ".join(str(cause).split()))
            cause = cause.__cause__
        reason = reasons[0] if len(reasons) == 1 else f"{reasons[0]} ({reasons[-1]})"
        raise InfraError(
            f"relman-demo: {what} failed in {root}: {reason}; fix the cause and run "
            "'relman demo' again"
        ) from exc

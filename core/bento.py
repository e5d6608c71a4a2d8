"""`relman build`: the Bento of a release, built once, then what every environment serves.

The build runs BentoML's Python API (``bentoml.bentos.build_bentofile``) in a child process
of the project's interpreter, which holds BentoML and the service's dependencies:
:mod:`core.bento_build_script`, run by path with the project root as working directory. Its
output is streamed line by line to a ``log`` callback as it arrives; its last line
(``RELMAN_BENTO {...}``) says what happened. relman itself never imports bentoml (slow).

The Bento's version is the release id and its labels carry the lineage (``relman.release``,
``relman.service``, ``relman.git_commit``, ``relman.model_md5``, ``relman.data_md5``,
``relman.version``, ``relman.relman_version``). A release is never built twice: before
building, the BentoML store (``$BENTOML_HOME/bentos/*/<release id>/bento.yaml``) is searched
for a Bento carrying the same release and service labels, and a hit is reused as it is.

Only a clean candidate without lineage problems is built; a Bento must match a release.

A build can be cancelled: ``cancel`` (a :class:`threading.Event`) set from another thread ends
the build script's process group within half a second and raises
:class:`~core.testrun.Cancelled`; :func:`build` records the run ``interrupted`` (reason
``cancelled: ...``) with its ``build`` step failed. BentoML makes the Bento in a temporary
folder and copies it into the store only at the very end; a build stopped before it reported
its result (a cancel or a timeout landing in that last copy) has the Bento folders it added
to the store removed, so a half-copied Bento is never reused.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import Project, key_lines, shown_path
from core.errors import BlockedError, ConfigError, InfraError, ProjectError, ReadOnlyError
from core.lineage import Candidate, project_candidates
from core.processes import end_child
from core.release_id import is_dirty_id
from core.steps import step
from core.testrun import Cancelled, CancelSignal

__all__ = [
    "BUILD_SCRIPT",
    "LABEL_PREFIX",
    "BentoRef",
    "BuildResult",
    "bento_labels",
    "bentofile_path",
    "bentoml_home",
    "build",
    "build_document",
    "build_release",
    "check_buildable",
    "check_labels",
    "find_bento",
    "read_bento",
    "relman_version",
]

BUILD_SCRIPT = Path(__file__).with_name("bento_build_script.py")
MARKER = "RELMAN_BENTO"
LABEL_PREFIX = "relman."
# A build locks the service's packages (uv pip compile), which may wait on the network.
DEFAULT_TIMEOUT = 900.0
# Output lines an InfraError quotes, and the longest part of one it keeps.
TAIL_LINES = 10
TAIL_WIDTH = 200
CHUNK = 64 * 1024
# BentoML's tag rule (name and version): what a store folder and a label key may be named.
_TAG = re.compile(r"^[a-z0-9]([-._a-z0-9]*[a-z0-9])?$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")

Log = Callable[[str], None]


def _ignore(_line: str) -> None:
    pass


@dataclass(frozen=True)
class BentoRef:
    """A Bento in the local BentoML store, as its bento.yaml describes it."""

    tag: str
    path: Path
    release: str
    service: str
    labels: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "path": str(self.path),
            "release": self.release,
            "service": self.service,
            "labels": dict(self.labels),
        }


@dataclass(frozen=True)
class BuildResult:
    """The Bento of one service's release: built now, or found and reused."""

    bento: BentoRef
    reused: bool
    seconds: float

    @property
    def detail(self) -> str:
        if self.reused:
            return f"reused {self.bento.tag}"
        return f"built {self.bento.tag} in {self.seconds:.1f} s"

    def to_step(self) -> dict[str, Any]:
        """The DESIGN.md step (``build``, always passed: a failed build raises)."""
        return step(
            "build",
            "passed",
            self.seconds,
            self.detail,
            service=self.bento.service,
            release=self.bento.release,
            bento=self.bento.tag,
            reused=self.reused,
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``bentos`` entry of ``relman build --json``."""
        return {
            "service": self.bento.service,
            "release": self.bento.release,
            "tag": self.bento.tag,
            "reused": self.reused,
            "path": str(self.bento.path),
        }


# ------------------------------------------------------------------------- the Bento store


def bentoml_home() -> Path:
    """BentoML's home as BentoML resolves it: ``$BENTOML_HOME``, else ``~/bentoml``."""
    raw = os.environ.get("BENTOML_HOME") or os.path.join(os.path.expanduser("~"), "bentoml")
    # BentoML expands variables and ~ until nothing changes (nested variables).
    for _ in range(10):
        expanded = os.path.expanduser(os.path.expandvars(raw))
        if expanded == raw:
            break
        raw = expanded
    return Path(raw).absolute()


def read_bento(path: Path) -> BentoRef | None:
    """The Bento stored in folder ``path``; None when its bento.yaml is missing or unreadable."""
    try:
        text = (path / "bento.yaml").read_text(encoding="utf-8")
        info = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(info, dict) or not info.get("name") or not info.get("version"):
        return None
    raw_labels = info.get("labels") or {}
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, dict) else {}
    return BentoRef(
        tag=f"{info['name']}:{info['version']}",
        path=path,
        release=labels.get(f"{LABEL_PREFIX}release", ""),
        service=labels.get(f"{LABEL_PREFIX}service", ""),
        labels=labels,
    )


def find_bento(service: str, release_id: str) -> BentoRef | None:
    """The Bento relman built for ``service`` at ``release_id``, if the store holds one.

    Its version is the release id, so only ``bentos/*/<release_id>/`` is read: a few files
    whatever the size of the store.
    """
    if not _TAG.match(release_id):
        return None  # a dirty id, or not an id at all: never a Bento version relman made
    store = bentoml_home() / "bentos"
    for folder in sorted(store.glob(f"*/{release_id}")):
        found = read_bento(folder)
        if found is not None and found.release == release_id and found.service == service:
            return found
    return None


# ----------------------------------------------------------------------------------- labels


def relman_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("relman")
    except PackageNotFoundError:  # run from a checkout that was never installed
        from core import __version__

        return __version__


def bento_labels(
    service: str, candidate: Candidate, *, version: str | None = None
) -> dict[str, str]:
    """The lineage of a release as Bento labels; empty ones (no data, no version) left out.

    Several models or datasets give their md5s comma-joined, in relman.toml's order.
    """
    raw = {
        "release": candidate.release,
        "service": service,
        "git_commit": candidate.git.commit,
        "model_md5": ",".join(a.md5 for a in candidate.model if a.md5),
        "data_md5": ",".join(a.md5 for a in candidate.data if a.md5),
        "version": version or "",
        "relman_version": relman_version(),
    }
    labels = {f"{LABEL_PREFIX}{key}": _label_value(value) for key, value in raw.items()}
    labels = {key: value for key, value in labels.items() if value}
    check_labels(labels)
    return labels


def _label_value(value: str) -> str:
    # One line without control characters: labels land in YAML, image labels and UIs.
    return " ".join(_UNPRINTABLE.sub(" ", str(value)).split())


def check_labels(labels: dict[str, str]) -> None:
    """ValueError unless every label is one BentoML takes and relman can read back.

    BentoML 1.4 asks only for ``str`` keys and values (it converts other values with a
    warning). relman also keeps keys to BentoML's tag alphabet (lowercase letters, digits,
    ``.``, ``-``, ``_``; at most 63 characters) and values to one printable line.
    """
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"label {key!r}: keys and values must be strings")
        if len(key) > 63 or not _TAG.match(key):
            raise ValueError(
                f"label key {key!r}: use lowercase letters, digits, '.', '-' and '_' "
                "(at most 63 characters)"
            )
        if _UNPRINTABLE.search(value):
            raise ValueError(f"label {key!r}: the value must be one printable line")


# ------------------------------------------------------------------------------ preconditions


def bentofile_path(project: Project, service: str) -> Path:
    """The BentoML build config of ``service``; ConfigError naming relman.toml when absent."""
    configured = project.config.services[service].build
    path = Path(configured)
    path = path if path.is_absolute() else project.root / path
    if not path.is_file():
        try:
            lines = key_lines(project.config_path.read_text(encoding="utf-8"))
        except OSError:
            lines = {}
        line = lines.get(("services", service, "build")) or lines.get(("services", service))
        where = f"{shown_path(project.config_path)}:{line}" if line else "relman.toml"
        missing = "is a folder" if path.is_dir() else "file not found"
        raise ConfigError(
            f"{where}: [services.{service}] build = {configured!r}: {missing} "
            f"(looked for {shown_path(path)}); write the BentoML build config there "
            "(bentofile.yaml, or pyproject.toml with [tool.bentoml.build]) or point 'build' "
            "at it"
        )
    return path


def check_buildable(project: Project, service: str, candidate: Candidate) -> Path:
    """Refuse what must not be built (BlockedError: a dirty tree, a lineage problem;
    ConfigError: no build config); return the build config's path."""
    if is_dirty_id(candidate.release) or candidate.git.dirty:
        files = candidate.git.dirty_files
        shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        raise BlockedError(
            f"{service}: working tree has uncommitted changes ({shown or 'see git status'}); "
            "commit them so the Bento matches a release"
        )
    if candidate.problems:
        more = len(candidate.problems) - 1
        others = f" (and {more} more; see relman status)" if more else ""
        raise BlockedError(
            f"{service}: release {candidate.release} cannot be built: "
            f"{candidate.problems[0]}{others}"
        )
    return bentofile_path(project, service)


# ----------------------------------------------------------------------------------- building


def build_release(
    project: Project,
    service: str,
    candidate: Candidate,
    *,
    version: str | None = None,
    log: Log = _ignore,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: CancelSignal | None = None,
) -> BuildResult:
    """The Bento of ``candidate``: the stored one when relman built it already, else built
    now (BentoML's output streamed to ``log``). Records nothing; see :func:`build`.
    ``cancel`` set stops the build (Cancelled); a stored Bento is reused all the same."""
    project.config.check_names(service=service)
    bentofile = check_buildable(project, service, candidate)
    started = time.monotonic()
    found = find_bento(service, candidate.release)
    if found is not None:
        return BuildResult(found, reused=True, seconds=time.monotonic() - started)
    what = f"the Bento of {service} (release {candidate.release})"
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"build cancelled before it started: {what} was not built")
    labels = bento_labels(service, candidate, version=version)
    before = _release_folders(candidate.release)
    outcome, tail = _run_build_script(
        project,
        {
            "bentofile": str(bentofile),
            "root": str(project.root),
            "version": candidate.release,
            "labels": labels,
            "service": project.config.services[service].bento,
        },
        log,
        timeout,
        cancel,
    )
    if "kind" not in outcome:
        # Stopped (cancel, timeout) or killed before it said how it ended: BentoML may have
        # been copying the Bento into the store, and a half-copied one must not be reused.
        _discard_new_folders(candidate.release, before, log)
    if outcome.get("cancelled"):
        seconds = time.monotonic() - started
        raise Cancelled(
            f"build cancelled after {seconds:.1f} s: {what} was not built (its build process "
            "was stopped)"
        )
    bento = _built(project, service, candidate.release, bentofile, outcome, tail, what)
    reused = outcome.get("kind") != "built"
    return BuildResult(bento, reused=reused, seconds=time.monotonic() - started)


def _release_folders(release_id: str) -> set[Path]:
    """The store's folders of Bentos whose version is ``release_id``."""
    return set((bentoml_home() / "bentos").glob(f"*/{release_id}"))


def _discard_new_folders(release_id: str, before: set[Path], log: Log) -> None:
    for folder in sorted(_release_folders(release_id) - before):
        shutil.rmtree(folder, ignore_errors=True)
        log(f"removed {folder}: the stopped build may have left it half copied")


def _built(
    project: Project,
    service: str,
    release: str,
    bentofile: Path,
    outcome: dict[str, Any],
    tail: list[str],
    what: str,
) -> BentoRef:
    """The Bento the script reports, or the ReleaseError of its failure."""
    kind = outcome.get("kind")
    message = " ".join(str(outcome.get("message", "")).split())
    if kind == "built":
        bento = read_bento(Path(str(outcome.get("path", ""))))
        if bento is None:
            raise InfraError(
                f"{what}: BentoML reported {outcome.get('tag')} at {outcome.get('path')}, "
                "but its bento.yaml cannot be read there; build again"
            )
        if bento.release != release or bento.service != service:
            raise ConfigError(
                f"{what}: {bento.tag} came out labelled relman.release="
                f"{bento.release!r}, relman.service={bento.service!r}: the service's own "
                "labels override relman's; remove relman.* labels from the service"
            )
        return bento
    if kind == "missing":
        raise ConfigError(
            f"bentoml is not installed in {project.python()}; pip install bentoml in the "
            "project's environment (or set [project] python in relman.toml to its interpreter)"
        )
    if kind == "config":
        raise ConfigError(
            f"{shown_path(bentofile)}: {message}; fix the BentoML build config of "
            f"[services.{service}]"
        )
    if kind == "import":
        named = project.config.services[service].bento
        raise ConfigError(
            f"{shown_path(bentofile)}: cannot import the service {named!r}: {message}; fix "
            f"the service, or install what it imports in the project's environment "
            f"({project.python()})"
        )
    if kind == "exists":
        # Another relman may have built it meanwhile; else someone else's Bento has the tag.
        again = find_bento(service, release)
        if again is not None:
            return again
        said = re.search(r"'([^']+)' already exists", message)
        tag = said.group(1) if said else f"NAME:{release}"
        raise BlockedError(
            f"{what}: the BentoML store already holds {tag}, which is not relman's Bento "
            f"of {service} at this release (built by hand, or by another service); remove "
            f"it with 'bentoml delete {tag}', or give this service's Bento its own name in "
            "its build config"
        )
    if kind == "error":
        raise InfraError(f"{what} failed: {message}{_quoted(tail)}")
    code = outcome.get("returncode")
    ending = "timed out" if outcome.get("timed_out") else f"the build exited with code {code}"
    raise InfraError(f"{what}: {ending} without a result{_quoted(tail)}")


def _quoted(tail: list[str]) -> str:
    if not tail:
        return ""
    shown = [line if len(line) <= TAIL_WIDTH else line[: TAIL_WIDTH - 3] + "..." for line in tail]
    return "; last output: " + " | ".join(shown)


def _child_env(python: str) -> dict[str, str]:
    env = dict(os.environ)
    # The build and find_bento must agree on the store, whatever the child's cwd.
    env["BENTOML_HOME"] = str(bentoml_home())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("BENTOML_DO_NOT_TRACK", "True")
    # Tools of the project's environment (uv, which locks the packages) come first on PATH.
    bin_dir = os.path.dirname(python)
    if bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    return env


def _run_build_script(
    project: Project,
    spec: dict[str, Any],
    log: Log,
    timeout: float,
    cancel: CancelSignal | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Run the build script; stream its output lines to ``log``; return its outcome (the
    marker's JSON, else ``returncode``/``timed_out``; ``cancelled`` when ``cancel`` stopped
    it) and its last output lines."""
    python = project.python()
    command = [python, "-u", str(BUILD_SCRIPT), json.dumps(spec)]
    try:
        child = subprocess.Popen(
            command,
            cwd=project.root,
            env=_child_env(python),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise ProjectError(
            f"cannot run the project's python {python}: {exc.strerror}; set [project] "
            "python in relman.toml to the interpreter of the project's environment"
        ) from exc
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    outcome: dict[str, Any] = {}

    def line_out(raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line.startswith(MARKER + " "):
            try:
                parsed = json.loads(line[len(MARKER) + 1 :])
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                outcome.update(parsed)
                return
        # uv and pip redraw progress with carriage returns: keep what a line ends as.
        line = line.rsplit("\r", 1)[-1]
        if line.strip():
            tail.append(line.strip())
            log(line)

    try:
        ending = _pump(child, line_out, time.monotonic() + timeout, cancel)
    finally:
        # Also on Ctrl-C, a cancel or a failing log callback: no process of the build
        # outlives it.
        end_child(child)
    if ending == "cancelled" and not outcome:  # a result already reported still counts
        return {"cancelled": True}, list(tail)
    if not outcome:
        outcome = {"returncode": child.returncode, "timed_out": ending == "timeout"}
    return outcome, list(tail)


def _pump(
    child: subprocess.Popen[bytes],
    line_out: Callable[[bytes], None],
    deadline: float,
    cancel: CancelSignal | None = None,
) -> str:
    """Feed each complete output line of ``child`` to ``line_out`` until its output ends:
    ``"exited"``; ``"timeout"`` when ``deadline`` passed first, ``"cancelled"`` when
    ``cancel`` was set first (checked at least twice a second)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    os.set_blocking(fd, False)
    partial = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        try:
            while True:
                left = deadline - time.monotonic()
                stop = _stop_reason(left, cancel)
                if stop is not None:
                    return stop
                if not selector.select(min(left, 0.5)):
                    continue
                try:
                    data = os.read(fd, CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    break
                partial += data
                *lines, rest = partial.split(b"\n")
                partial = bytearray(rest)
                for line in lines:
                    line_out(bytes(line))
        finally:
            child.stdout.close()
    if partial:
        line_out(bytes(partial))
    while True:
        # The output ended (the script closed it, or exited): wait for the exit itself.
        left = deadline - time.monotonic()
        stop = _stop_reason(left, cancel)
        if stop is not None:
            return stop
        try:
            child.wait(timeout=min(left, 0.5))
        except subprocess.TimeoutExpired:
            continue
        return "exited"


# ------------------------------------------------------------------------- build and record


def build(
    project: Project,
    service: str | None = None,
    *,
    log: Log = _ignore,
    read_only: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: CancelSignal | None = None,
) -> list[BuildResult]:
    """Build (or reuse) the Bento of the candidate of ``service``, or of every service.

    Every candidate is checked before anything builds. Each is recorded as a release, and
    each build as a ``build`` run with one ``build`` step naming the Bento; a build that
    fails leaves its run ``error`` (``interrupted`` on Ctrl-C) with the reason. A cancelled
    one (``cancel`` set) leaves it ``interrupted`` with the reason ``cancelled: ...`` and
    raises Cancelled; the services after it are not built.
    """
    from core.releases import open_ledger, record_candidate
    from core.runs import finishing_runs

    if read_only:
        raise ReadOnlyError(
            "relman build: refused in read-only mode; run it from a session without --read-only"
        )
    if service is not None:
        project.config.check_names(service=service)
    names = [service] if service is not None else list(project.config.services)
    lineage = project_candidates(project, names)
    for name, cand in lineage.items():
        check_buildable(project, name, cand)
    results: list[BuildResult] = []
    with open_ledger(project, read_only=False) as ledger:
        for name, cand in lineage.items():
            release = record_candidate(ledger, project, name, cand)
            run = ledger.start_run(
                "build",
                service=name,
                release_id=release.id,
                details={"build": project.config.services[name].build},
            )
            cancelled: Cancelled | None = None
            with finishing_runs(
                ledger,
                [run.id],
                interrupted="interrupted while building the Bento",
                failed="the Bento could not be built",
            ):
                started = time.monotonic()
                try:
                    result = build_release(
                        project,
                        name,
                        cand,
                        version=release.version,
                        log=log,
                        timeout=timeout,
                        cancel=cancel,
                    )
                except Cancelled as exc:
                    cancelled = exc  # recorded below, outside finishing_runs (not an error)
                except Exception as exc:
                    ledger.record_step(
                        run.id,
                        "build",
                        "failed",
                        seconds=time.monotonic() - started,
                        detail=str(exc),
                    )
                    raise
            if cancelled is not None:
                seconds = time.monotonic() - started
                ledger.record_step(
                    run.id, "build", "failed", seconds=seconds, detail=str(cancelled)
                )
                ledger.finish_run(
                    run.id,
                    "interrupted",
                    reason=f"cancelled: {cancelled}",
                    details={"cancelled": True},
                )
                done = [r.to_step() for r in results]
                stopped = step("build", "failed", seconds, str(cancelled), service=name)
                raise Cancelled(
                    f"{cancelled}; recorded as interrupted (run #{run.id})",
                    steps=[*done, {**stopped, "cancelled": True}],
                )
            ledger.record_step(
                run.id, "build", "passed", seconds=result.seconds, detail=result.detail
            )
            ledger.finish_run(
                run.id,
                "passed",
                reason=result.detail,
                details={
                    "bento": result.bento.tag,
                    "reused": result.reused,
                    "path": str(result.bento.path),
                },
            )
            results.append(result)
    return results


def build_document(results: list[BuildResult]) -> dict[str, Any]:
    """``relman build --json``: ``{"ok", "steps", "bentos": [{"service", "release", "tag",
    "reused"}]}``."""
    return {
        "ok": True,
        "steps": [result.to_step() for result in results],
        "bentos": [result.to_dict() for result in results],
    }


def _stop_reason(left: float, cancel: CancelSignal | None) -> str | None:
    """``"timeout"`` once no time is ``left``, ``"cancelled"`` once ``cancel`` is set."""
    if left <= 0:
        return "timeout"
    if cancel is not None and cancel.is_set():
        return "cancelled"
    return None

"""`relman build`: the Bento of a release, built once, then what every environment serves.

The build runs BentoML's Python API (``bentoml.bentos.build_bentofile``) in a child process
of the project's interpreter, which holds BentoML and the service's dependencies:
:mod:`core.build.bento_build_script`, run by :mod:`core.build.bento_runner` with the project root as
working directory. Its output is streamed line by line to a ``log`` callback as it arrives;
its last line (``RELMAN_BENTO {...}``) says what happened. relman itself never imports
bentoml (slow).

The Bento's version is the release id and its labels carry the lineage (``relman.release``,
``relman.service``, ``relman.git_commit``, ``relman.model_md5``, ``relman.data_md5``,
``relman.version``, ``relman.relman_version``). A release is never built twice: before
building, the BentoML store (``$BENTOML_HOME/bentos/*/<release id>/bento.yaml``) is searched
for a Bento carrying the same release and service labels, and a hit is reused as it is
(:mod:`core.build.bento_store`).

Only a clean candidate without lineage problems is built; a Bento must match a release.

A build can be cancelled: ``cancel`` (a :class:`threading.Event`) set from another thread ends
the build script's process group within half a second and raises
:class:`~core.cancel.Cancelled`; :func:`build` records the run ``interrupted`` (reason
``cancelled: ...``) with its ``build`` step failed. BentoML makes the Bento in a temporary
folder and copies it into the store only at the very end; a build stopped before it reported
its result (a cancel or a timeout landing in that last copy) has the Bento folders it added
to the store removed, so a half-copied Bento is never reused.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.build.bento_runner import Log, run_build_script
from core.build.bento_store import (
    BentoRef,
    bento_labels,
    find_bento,
    read_bento,
    release_folders,
)
from core.cancel import Cancelled, CancelSignal
from core.config.lines import key_lines
from core.config.model import Project, shown_path
from core.errors import BlockedError, ConfigError, InfraError, ReadOnlyError
from core.ledger.steps import step
from core.lineage.build_context import context_folder
from core.lineage.candidate import Candidate, project_candidates

if TYPE_CHECKING:
    from core.build.image import ImageResult
    from core.documents import BentoEntry, BuildDocument, Step

__all__ = [
    "BuildResult",
    "bentofile_path",
    "build",
    "build_document",
    "build_release",
    "check_buildable",
]

# A build locks the service's packages (uv pip compile), which may wait on the network.
DEFAULT_TIMEOUT = 900.0
# The longest part of an output line an InfraError quotes.
TAIL_WIDTH = 200


def _ignore(_line: str) -> None:
    pass


@dataclass(frozen=True)
class BuildResult:
    """The Bento of one service's release: built now, or found and reused."""

    bento: BentoRef
    reused: bool
    seconds: float
    # The release's OCI image, when `relman build --image` asked for it.
    image: ImageResult | None = None

    @property
    def detail(self) -> str:
        if self.reused:
            return f"reused {self.bento.tag}"
        return f"built {self.bento.tag} in {self.seconds:.1f} s"

    def to_step(self) -> Step:
        """The step of docs/json.md (``build``, always passed: a failed build raises)."""
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

    def steps(self) -> list[Step]:
        """The ``build`` step, and the ``image`` step when the image was asked for."""
        return [self.to_step()] + ([self.image.to_step()] if self.image is not None else [])

    def to_dict(self) -> BentoEntry:
        """The ``bentos`` entry of ``relman build --json``."""
        return {
            "service": self.bento.service,
            "release": self.bento.release,
            "tag": self.bento.tag,
            "reused": self.reused,
            "path": str(self.bento.path),
        }


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
    project.config.require_service(service)
    if candidate.dirty:  # uncommitted changes elsewhere (relman.toml, a README) are not built
        files = candidate.dirty_files or candidate.git.dirty_files
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
    before = release_folders(candidate.release)
    try:
        outcome, tail = run_build_script(
            project,
            {
                "bentofile": str(bentofile),
                # BentoML's build context: the build config's folder, or the root
                # (core/lineage/build_context.py, as the release id counts it).
                "root": str(project.root / context_folder(project.root, str(bentofile))),
                "version": candidate.release,
                "labels": labels,
                "service": project.config.services[service].bento,
            },
            log,
            timeout,
            cancel,
        )
    except BaseException:  # Ctrl-C, or a log callback that failed: the script was stopped
        _discard_new_folders(candidate.release, before, _ignore)
        raise
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


def _discard_new_folders(release_id: str, before: set[Path], log: Log) -> None:
    for folder in sorted(release_folders(release_id) - before):
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


# ------------------------------------------------------------------------- build and record


def build(
    project: Project,
    service: str | None = None,
    *,
    log: Log = _ignore,
    read_only: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    cancel: CancelSignal | None = None,
    image: bool = False,
) -> list[BuildResult]:
    """Build (or reuse) the Bento of the candidate of ``service``, or of every service; with
    ``image``, its OCI image too (core/build/image.py).

    Every candidate is checked before anything builds (and, with ``image``, that a container
    engine is installed: ProjectError, exit 2). Each is recorded as a release, and each build
    as a ``build`` run with a ``build`` step naming the Bento (and an ``image`` step naming
    the image); a build that fails leaves its run ``error`` (``interrupted`` on Ctrl-C) with
    the reason. A cancelled one (``cancel`` set) leaves it ``interrupted`` with the reason
    ``cancelled: ...`` and raises Cancelled; the services after it are not built.
    """
    from core.ledger.releases import open_ledger, record_candidate
    from core.ledger.runs import finishing_runs

    if read_only:
        raise ReadOnlyError(
            "relman build: refused in read-only mode; run it from a session without --read-only"
        )
    if service is not None:
        project.config.check_names(service=service)
    names = [service] if service is not None else list(project.config.services)
    engine = None
    if image:
        from core.host.containers import require_engine

        engine = require_engine("relman build --image")
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
                details={"build": project.config.services[name].build, "image": image},
            )
            cancelled: Cancelled | None = None
            stage = "build"
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
                    if engine is not None:
                        from core.build.image import build_image

                        ledger.record_step(
                            run.id, "build", "passed", seconds=result.seconds, detail=result.detail
                        )
                        stage, started = "image", time.monotonic()
                        made = build_image(project, engine, result.bento, log=log, cancel=cancel)
                        result = dataclasses.replace(result, image=made)
                except Cancelled as exc:
                    cancelled = exc  # recorded below, outside finishing_runs (not an error)
                except Exception as exc:
                    ledger.record_step(
                        run.id,
                        stage,
                        "failed",
                        seconds=time.monotonic() - started,
                        detail=str(exc),
                    )
                    raise
            if cancelled is not None:
                seconds = time.monotonic() - started
                ledger.record_step(run.id, stage, "failed", seconds=seconds, detail=str(cancelled))
                ledger.finish_run(
                    run.id,
                    "interrupted",
                    reason=f"cancelled: {cancelled}",
                    details={"cancelled": True},
                )
                done = [s for r in results for s in r.steps()]
                stopped = step(stage, "failed", seconds, str(cancelled), service=name)
                raise Cancelled(
                    f"{cancelled}; recorded as interrupted (run #{run.id})",
                    steps=[*done, {**stopped, "cancelled": True}],
                )
            details: dict[str, Any] = {
                "bento": result.bento.tag,
                "reused": result.reused,
                "path": str(result.bento.path),
            }
            if result.image is None:
                ledger.record_step(
                    run.id, "build", "passed", seconds=result.seconds, detail=result.detail
                )
            else:
                made = result.image
                ledger.record_step(
                    run.id, "image", "passed", seconds=made.seconds, detail=made.detail
                )
                details["image"] = made.to_dict()
            reason = "; ".join(s["detail"] for s in result.steps())
            ledger.finish_run(run.id, "passed", reason=reason, details=details)
            results.append(result)
    return results


def build_document(results: list[BuildResult]) -> BuildDocument:
    """``relman build --json``: ``{"ok", "steps", "bentos": [{"service", "release", "tag",
    "reused"}]}``, and ``images`` for ``--image``."""
    document: BuildDocument = {
        "ok": True,
        "steps": [s for result in results for s in result.steps()],
        "bentos": [result.to_dict() for result in results],
    }
    images = [result.image.to_dict() for result in results if result.image is not None]
    if images:
        document["images"] = images
    return document

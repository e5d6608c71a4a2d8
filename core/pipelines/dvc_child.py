"""DVC's reproduce and push, run in a child process by :mod:`core.pipelines.retrain`.

DVC's Python API resolves targets and its run cache from the current directory, and the
stage commands it starts write to the terminal they inherit: in relman's own process that
would mean changing the directory of every thread and stage output over the TUI or a
``--json`` document. So this script runs by path (``python -P dvc_child.py SPEC``) with the
project root as working directory. It imports the standard library and DVC only, never
relman's packages, so that a project folder named like one of them cannot shadow them.

Events go out as JSON lines on the stdout it was started with; everything else written to
stdout (DVC's log, the stage commands' output) is sent to stderr, which the parent drains.
It ends, with the stage command it runs, when the parent goes away.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any, TextIO

# Config that holds whatever the project's .dvc/config says: no update check on our behalf,
# and relman decides what gets staged in git, never DVC behind its back.
_CONFIG = {"core": {"check_update": False, "autostage": False}}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    _end_with_parent()
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # from here on, fd 1 (ours and every stage command's) is stderr
    try:
        if spec["action"] == "repro":
            return _repro(spec["targets"], events)
        if spec["action"] == "push":
            return _push(spec["targets"], events)
        raise ValueError(f"unknown action {spec['action']!r}")
    except Exception as exc:
        _emit(events, "error", kind=_kind(exc), error=_reason(exc))
        return 1


def _end_with_parent() -> None:
    """Stop this process group (the stage command included) once the parent is gone.

    The group is its own session, so a relman killed with -9 would otherwise leave DVC
    running (and holding the repository's lock) under the run that resumes it.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


def _emit(events: TextIO, event: str, **fields: Any) -> None:
    events.write(json.dumps({"event": event, **fields}) + "\n")
    events.flush()


def _repro(targets: list[str], events: TextIO) -> int:
    from dvc.repo import Repo

    try:  # the per-stage step of DVC's own reproduce, wrapped to say which stage runs
        from dvc.repo.reproduce import _reproduce_stage
    except ImportError:  # a DVC without it: the stages are only named at the end
        _reproduce_stage = None

    def each(stage: Any, **kwargs: Any) -> Any:
        assert _reproduce_stage is not None
        _emit(events, "start", stage=stage.addressing)
        started = time.monotonic()
        try:
            ran = _reproduce_stage(stage, **kwargs)
        except Exception as exc:
            command = _command_failed(exc)
            _emit(events, "failed", stage=stage.addressing, error=_reason(exc), command=command)
            raise
        seconds = round(time.monotonic() - started, 3)
        _emit(events, "end", stage=stage.addressing, ran=ran is not None, seconds=seconds)
        return ran

    extra = {"repro_fn": each} if _reproduce_stage is not None else {}
    with Repo(".", config=_CONFIG) as repo:
        done = repo.reproduce(targets, **extra)
    _emit(events, "done", stages=[stage.addressing for stage in done])
    return 0


def _push(targets: list[str], events: TextIO) -> int:
    from dvc.repo import Repo

    with Repo(".", config=_CONFIG) as repo:
        remote = repo.config["core"].get("remote")
        if not remote:
            _emit(events, "pushed", count=0, remote=None)
            return 0
        count = repo.push(targets=targets or None)
    _emit(events, "pushed", count=int(count or 0), remote=remote)
    return 0


def _kind(exc: BaseException) -> str:
    """What the parent makes of a failure: ``locked`` (another DVC process holds the
    repository), ``dvc`` (DVC refused or failed), ``crash`` (anything else)."""
    from dvc.exceptions import DvcException
    from dvc.lock import LockError

    if isinstance(exc, LockError):
        return "locked"
    return "dvc" if isinstance(exc, DvcException) else "crash"


def _command_failed(exc: BaseException) -> bool:
    """Whether the stage's own command failed (else DVC did, e.g. on a missing output)."""
    from dvc.stage.exceptions import StageCmdFailedError

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, StageCmdFailedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _reason(exc: BaseException) -> str:
    """DVC wraps the real reason (``failed to run: python src/train.py, exited with 1``) in a
    vaguer one (``failed to reproduce 'train'``): name both, on one line."""
    reasons = [" ".join(str(exc).split()) or type(exc).__name__]
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        reasons.append(" ".join(str(cause).split()) or type(cause).__name__)
        cause = cause.__cause__ or cause.__context__
    return reasons[0] if len(reasons) == 1 else f"{reasons[0]} ({reasons[-1]})"


if __name__ == "__main__":
    sys.exit(main(sys.argv))

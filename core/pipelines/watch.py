"""`relman watch`: start the assigned pipelines when a new commit lands on the watched branch
or DVC-tracked data changes, and carry on the runs that wait or were interrupted.

One watcher per project: it holds an exclusive lock on ``.relman/watch.lock`` for its life
(a killed watcher releases it with its process). What it knows between polls is in
``.relman/watch.json`` (the branch head it last saw, the data change each pipeline last
started on, the run it last started), written atomically, so a restarted watcher neither
misses a commit nor starts a second run for the same change. Each poll, in order:

1. runs of this project left ``interrupted`` (their driver died) or ``waiting`` for an
   approval that has now been given are taken over and driven on;
2. a new head on the watched branch starts the pipelines with ``on = ["commit"]`` (a commit a
   pipeline run made does not start that same pipeline again);
3. a data change (the workspace differs from what DVC recorded) that has stayed the same for
   ``[watch] debounce`` starts the pipelines with ``on = ["data"]`` of the services whose
   data it is, once per change.

At most one run per pipeline and service is open at a time (the ledger refuses a second); a
change seen meanwhile starts its run once that one has ended. Runs are driven in this
process, one at a time; SIGTERM stops the watcher after leaving the run in progress
``interrupted``, to be resumed by the next watcher or `relman pipeline resume`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from core.config.durations import parse_duration
from core.config.model import Project
from core.errors import BlockedError, UsageError
from core.host.processes import pid_alive, this_host
from core.ledger.steps import Log
from core.pipelines.definition import assigned, declared

STATE_NAME = "watch.json"
# An idle watcher looks at the ledger only when it changed, and at least this often (a run
# whose relman died changes nothing in it); it writes its last poll time this often.
RECHECK_SECONDS = 30.0
LOCK_NAME = "watch.lock"
LOG_NAME = "watch.log"


@dataclass
class WatchState:
    """What the watcher remembers between polls (and restarts)."""

    head: str | None = None
    branch: str | None = None
    triggered: dict[str, str] = field(default_factory=dict)  # "pipeline/service" -> change
    # Commit runs refused while one of the pipeline was open: "pipeline/service" -> reason.
    pending: dict[str, str] = field(default_factory=dict)
    last_started: dict[str, Any] | None = None
    pid: int | None = None
    host: str | None = None
    started: str | None = None
    last_poll: str | None = None
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def state_path(project: Project) -> Path:
    return project.state_dir / STATE_NAME


def read_state(project: Project) -> WatchState:
    """The watcher's state file, or an empty state (none yet, or unreadable)."""
    try:
        data = json.loads(state_path(project).read_text())
    except (OSError, ValueError):
        return WatchState()
    known = set(WatchState.__dataclass_fields__)
    return (
        WatchState(**{k: v for k, v in data.items() if k in known})
        if isinstance(data, dict)
        else WatchState()
    )


def write_state(project: Project, state: WatchState) -> None:
    """Replace the state file atomically (a reader never sees half of it)."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=project.state_dir, prefix=".watch-", suffix=".json", delete=False
    ) as handle:
        json.dump(state.to_dict(), handle, indent=1, sort_keys=True)
        temporary = Path(handle.name)
    os.replace(temporary, state_path(project))


@contextlib.contextmanager
def watcher_lock(project: Project) -> Iterator[IO[str]]:
    """Hold the project's watcher lock (its pid written in it); BlockedError (exit 1) when
    another watcher has it. A status probe holds it for an instant: that is waited out."""
    project.state_dir.mkdir(parents=True, exist_ok=True)
    handle = (project.state_dir / LOCK_NAME).open("a+")
    try:
        deadline = time.monotonic() + 2.0
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                pid = lock_holder(project)
                who = f" (pid {pid})" if pid else ""
                raise BlockedError(
                    f"a watcher already runs for this project{who}; `relman down` stops it"
                ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield handle
    finally:
        handle.close()


def lock_holder(project: Project) -> int | None:
    """The pid the watcher wrote in its lock file (None when there is none to read)."""
    try:
        text = (project.state_dir / LOCK_NAME).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def watcher_running(project: Project) -> bool:
    """True while some process holds the watcher lock (probed with a shared lock, which
    never keeps a watcher from taking it for longer than an instant)."""
    path = project.state_dir / LOCK_NAME
    if not path.exists():
        return False
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, timeout=60
    )
    return done.stdout.strip() if done.returncode == 0 else ""


class Watcher:
    """One project's watcher; :meth:`poll` does one round, :meth:`run` loops until stopped."""

    def __init__(self, project: Project, *, log: Log, stop: threading.Event) -> None:
        self.log = log
        self.stop = stop
        self._notify = False  # set by run(): a watch of one round needs no notifications
        root = project.root
        git_dir = _git(root, "rev-parse", "--absolute-git-dir")
        common = _git(root, "rev-parse", "--path-format=absolute", "--git-common-dir")
        self._head_file = Path(git_dir) / "HEAD" if git_dir else None
        self._common = Path(common) if common else None
        self._configure(project)
        problem = self._branch_problem()
        if problem:
            raise UsageError(f"relman watch: {problem}")
        self.state = read_state(project)
        if self.state.branch != self.branch:
            self.state.head = None
        self.state.branch = self.branch
        self._first_seen: dict[str, tuple[str, float]] = {}
        self._seen_ledger: tuple[Any, ...] | None = None
        self._drivers: set[int] = set()
        self._checked_ledger = 0.0
        self._seen_ref: tuple[Any, ...] | None = None
        self._checked_ref = 0.0
        self._written = 0.0
        self._last_problem: str | None = None

    def _configure(self, project: Project) -> None:
        """Take what relman.toml says: the branch, the poll, the debounce, the triggers."""
        self.project = project
        self._config_stat = _stats([project.config_path])
        config = project.config
        self.poll_seconds = parse_duration(config.watch.poll)
        self.debounce = parse_duration(config.watch.debounce)
        # Unless relman.toml names it, the branch checked out when the watcher started (kept
        # across reloads: a checkout of another branch stops the rounds, it is not followed).
        self.branch = (
            config.watch.branch or getattr(self, "branch", None) or self._checked_out() or ""
        )
        self.triggers: dict[str, list[tuple[str, str]]] = {"commit": [], "data": []}
        pipelines = declared(config)
        for service in config.services:
            for name in assigned(config, service):
                for trigger in pipelines[name].on:
                    self.triggers[trigger].append((name, service))
        self._close_watches()  # a reloaded relman.toml: the watches of the last one end
        self._data: dict[str, Any] = {}
        # Each watched path's stat at the last poll, the changes it reported, and the stale
        # ones (record moved, file did not) already said.
        self._keys: dict[str, Any] = {}
        self._changes: dict[str, tuple[str | None, str | None]] = {}
        self._stale: dict[str, tuple[str | None, str | None]] = {}
        # Where the branch's ref lives (loose or packed): looked at before any git process.
        self._refs = (
            [self._common / "refs" / "heads" / self.branch, self._common / "packed-refs"]
            if self._common is not None and self.branch
            else []
        )

    def _checked_out(self) -> str | None:
        """The branch checked out (from the HEAD file: no git process), None when detached."""
        if self._head_file is None:
            return _git(self.project.root, "symbolic-ref", "--short", "-q", "HEAD") or None
        try:
            text = self._head_file.read_text().strip()
        except OSError:
            return None
        return text.removeprefix("ref: refs/heads/") if text.startswith("ref: ") else None

    def _branch_problem(self) -> str | None:
        """Why no pipeline may run now: the watched branch is not the one checked out
        (pipelines commit to it, and test what the tree holds)."""
        current = self._checked_out()
        if not self.branch:
            return (
                "HEAD is detached; check out the branch to watch, or set [watch] branch in "
                "relman.toml"
            )
        if current != self.branch:
            return (
                f"branch {self.branch} is not checked out (HEAD is {current or 'detached'}); "
                "check it out first: pipelines commit to it"
            )
        return None

    # ------------------------------------------------------------------------------ loop

    def run(self, *, once: bool = False) -> dict[str, Any]:
        """Poll until stopped (or once); the watcher's final state as a document."""
        with watcher_lock(self.project):
            self.state.pid, self.state.host, self.state.started = os.getpid(), this_host(), _now()
            self._save()
            self.log(self._describe())
            started: list[dict[str, Any]] = []
            # Polling on and on: folders are walked when the kernel says they changed.
            self._notify = not once
            try:
                while not self.stop.is_set():
                    started += self.poll()
                    if once:
                        break
                    self.stop.wait(self.poll_seconds)
            finally:
                self._close_watches()
            self.state.pid = None
            self._save()
        return {"ok": True, "branch": self.branch, "runs": started, "state": self.state.to_dict()}

    def _describe(self) -> str:
        pairs = [
            f"{name} for {service} on {trigger}"
            for trigger, found in self.triggers.items()
            for name, service in found
        ]
        if not pairs:
            return f"watching {self.branch}: no pipeline has on = [...]; only carrying runs on"
        return f"watching {self.branch} every {self.poll_seconds:g} s: " + ", ".join(pairs)

    def poll(self) -> list[dict[str, Any]]:
        """One round: take a changed relman.toml, carry runs on, then start what new commits
        and data call for. A round that cannot run says why in the log and the state."""
        documents: list[dict[str, Any]] = []
        error_before = self.state.last_error
        try:
            problem = self._reload() or self._branch_problem()
            if problem:
                if problem != self._last_problem:
                    self.log(f"not running pipelines: {problem}")
                self._last_problem = self.state.last_error = problem
            else:
                self._last_problem = None
                documents += self._carry_on()
                documents += self._commits()
                documents += self._data_changes()
                self.state.last_error = None
        except Exception as exc:  # one bad round is logged, the watcher goes on
            from core.errors import release_error

            line = str(release_error(exc)) if _reported(exc) else f"{type(exc).__name__}: {exc}"
            self.state.last_error = line
            self.log(f"error: {line}")
        self.state.last_poll = _now()
        changed = documents or self.state.last_error != error_before
        if changed or time.monotonic() - self._written >= RECHECK_SECONDS:
            self._save()
        return documents

    def _reload(self) -> str | None:
        """relman.toml changed: take it (its triggers, branch, poll); a broken one is
        reported and the round skipped, the pipelines of the last good one kept."""
        seen = _stats([self.project.config_path])
        if seen == self._config_stat:
            return None
        from core.config.model import load_project
        from core.errors import ConfigError

        try:
            project = load_project(self.project.root)
        except ConfigError as exc:
            return f"{exc} (fix it: the watcher goes on with it once it loads)"
        self._configure(project)
        if self.state.branch != self.branch:
            self.state.head, self.state.branch = None, self.branch
        self.log(f"relman.toml changed: {self._describe()}")
        return None

    def _save(self) -> None:
        write_state(self.project, self.state)
        self._written = time.monotonic()

    # -------------------------------------------------------------------------- the rounds

    def _carry_on(self) -> list[dict[str, Any]]:
        from core.ledger.pipeline_runs import seen_status
        from core.ledger.releases import open_ledger
        from core.pipelines.runner import claim, drive, ready_to_resume

        ledger_files = [self.project.ledger_path, Path(f"{self.project.ledger_path}-wal")]
        seen = _stats(ledger_files)
        quiet = seen == self._seen_ledger and all(pid_alive(pid) for pid in self._drivers)
        if quiet and time.monotonic() - self._checked_ledger < RECHECK_SECONDS:
            return []  # nothing written, no driver gone since the last look: nothing to do
        self._seen_ledger, self._checked_ledger = seen, time.monotonic()
        if not self.project.ledger_path.exists():
            return []
        with open_ledger(self.project, read_only=True) as ledger:
            candidates = ledger.pipeline_runs(open_only=True, limit=10_000)
        # The relmans driving runs here: one that ends is noticed at the next round.
        self._drivers = {
            run.pid
            for run in candidates
            if run.status == "running" and run.pid and run.host == this_host()
        }
        documents = []
        for run in reversed(candidates):  # oldest first
            if self.stop.is_set():
                break
            status = seen_status(run)
            if status == "running" or (
                status == "waiting" and not ready_to_resume(self.project, run)
            ):
                continue
            if status == "interrupted" and run.status == "interrupted" and run.pid == os.getpid():
                continue  # this watcher stopped it itself
            self.log(f"resuming run #{run.id} of {run.pipeline} for {run.service} ({status})")
            try:
                claim(self.project, run.id)
            except BlockedError as exc:
                self.log(str(exc))
                continue
            documents.append(self._drive(run.id, drive))
        return documents

    def _commits(self) -> list[dict[str, Any]]:
        documents = self._pending()
        seen = _stats(self._refs)
        fresh = time.monotonic() - self._checked_ref < RECHECK_SECONDS
        if self._refs and seen == self._seen_ref and self.state.head is not None and fresh:
            return documents  # the branch's ref did not move: no git process spawned
        head = _git(self.project.root, "rev-parse", "-q", "--verify", f"refs/heads/{self.branch}")
        if not head:
            return documents  # git failed: looked at again next round
        self._seen_ref, self._checked_ref = seen, time.monotonic()
        if head == self.state.head:
            return documents
        first_sight = self.state.head is None
        self.state.head = head
        self._save()
        if first_sight or not self.triggers["commit"]:
            return documents
        subject = _git(self.project.root, "log", "-1", "--format=%s", head)
        made_by = _git(
            self.project.root,
            "log",
            "-1",
            "--format=%(trailers:key=Relman-Pipeline,valueonly)",
            head,
        ).strip()
        reason = f"new commit {head[:8]} on {self.branch}: {subject}"
        for name, service in self.triggers["commit"]:
            if self.stop.is_set():
                break
            key = f"{name}/{service}"
            if made_by == name:
                self.log(f"{head[:8]} was made by pipeline {name}: not starting it again")
                self.state.pending.pop(key, None)
                continue
            # A newer commit stands for the older one still waiting for its turn.
            self.state.pending[key] = reason
            self._save()
            documents += self._start_pending(key)
        return documents

    def _pending(self) -> list[dict[str, Any]]:
        """Commit runs refused while another run of the pipeline was open: tried again."""
        documents: list[dict[str, Any]] = []
        for key in list(self.state.pending):
            if self.stop.is_set():
                break
            documents += self._start_pending(key)
        return documents

    def _start_pending(self, key: str) -> list[dict[str, Any]]:
        name, _, service = key.partition("/")
        if (name, service) not in self.triggers["commit"]:
            self.state.pending.pop(key, None)  # no longer assigned in relman.toml
            return []
        run_id = self._begin(name, service, "commit", self.state.pending[key])
        if run_id is None:
            return []
        self.state.pending.pop(key, None)
        self._save()
        from core.pipelines.runner import drive

        return [self._drive(run_id, drive)]

    def _data_changes(self) -> list[dict[str, Any]]:
        from core.pipelines.runner import drive

        documents = []
        by_service: dict[str, list[str]] = {}
        for name, service in self.triggers["data"]:
            by_service.setdefault(service, []).append(name)
        for service, names in by_service.items():
            watch = self._watch_of(service)
            changes = self._moved(watch, watch.poll())
            now = time.monotonic()  # per service: a run driven above took its time
            if not changes:
                for name in names:
                    self._first_seen.pop(f"{name}/{service}", None)
                continue
            fingerprint = ";".join(sorted(f"{c.path}={c.current_md5}" for c in changes))
            reason = "; ".join(change.reason() for change in changes)
            for name in names:
                if self.stop.is_set():
                    break
                key = f"{name}/{service}"
                if self.state.triggered.get(key) == fingerprint:
                    continue
                seen = self._first_seen.get(key)
                if seen is None or seen[0] != fingerprint:
                    self._first_seen[key] = (fingerprint, now)
                    if self.debounce > 0:
                        self.log(f"{reason}: waiting {self.debounce:g} s for it to settle")
                        continue
                elif now - seen[1] < self.debounce:
                    continue
                run_id = self._begin(name, service, "data", reason)
                if run_id is None:
                    continue
                # Taken as soon as its run is recorded: a restart never starts it twice.
                self.state.triggered[key] = fingerprint
                self._save()
                documents.append(self._drive(run_id, drive))
        return documents

    def _moved(self, watch: Any, changes: list[Any]) -> list[Any]:
        """The changes of files that moved. A change that appears while its file stayed as it
        was is DVC's record moving (a `git pull` without `dvc checkout`): retraining on the
        old file would undo the pulled update, so it is said once and left out."""
        keys = {path: watch.stat_key(path) for path in watch.paths}
        moved = []
        for change in changes:
            before_key = self._keys.get(change.path)
            before = self._changes.get(change.path)
            same_file = before_key is not None and before_key == keys.get(change.path)
            new_record = before is None or before[0] != change.recorded_md5
            pair = (change.recorded_md5, change.current_md5)
            if same_file and new_record:
                self.log(
                    f"{change.path}: DVC's record changed but the file did not (a git pull "
                    "without dvc checkout?); run dvc checkout: nothing started for it"
                )
                self._stale[change.path] = pair
                continue
            if self._stale.get(change.path) == pair:
                continue
            self._stale.pop(change.path, None)
            moved.append(change)
        self._keys.update(keys)
        self._changes = {c.path: (c.recorded_md5, c.current_md5) for c in changes}
        return moved

    def _watch_of(self, service: str) -> Any:
        if service not in self._data:
            from core.pipelines.data_changes import DataWatch, watched_data

            paths = watched_data(self.project, service)
            watch = DataWatch(self.project.root, paths, notify=self._notify)
            self._data[service] = watch
            self.log(f"watching the data of {service}: {watch.notifications}")
        return self._data[service]

    def _close_watches(self) -> None:
        for watch in getattr(self, "_data", {}).values():
            watch.close()

    def _begin(self, name: str, service: str, trigger: str, reason: str) -> int | None:
        """Record a run beginning (None when one of the pipeline is still open for the
        service: its turn comes once that one has ended)."""
        from core.pipelines.runner import start_run
        from store.errors import LedgerConflict

        try:
            run_id = start_run(self.project, name, service, trigger=trigger, reason=reason)
        except LedgerConflict as exc:
            self.log(f"not starting {name} for {service} yet: {exc}")
            return None
        self.log(f"started run #{run_id} of {name} for {service}: {reason}")
        self.state.last_started = {
            "run": run_id,
            "pipeline": name,
            "service": service,
            "trigger": trigger,
            "reason": reason,
            "at": _now(),
        }
        self._save()
        return run_id

    def _drive(self, run_id: int, drive: Any) -> dict[str, Any]:
        document: dict[str, Any] = drive(self.project, run_id, log=self.log, cancel=self.stop)
        self.log(
            f"run #{run_id}: {document['status']}"
            + (f": {document['detail']}" if document.get("detail") else "")
        )
        return document


def _stats(paths: list[Path]) -> tuple[Any, ...]:
    """What changes when any of ``paths`` is written: size, mtime and inode of each."""
    found: list[Any] = []
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            found.append(None)
            continue
        found.append((info.st_size, info.st_mtime_ns, info.st_ino))
    return tuple(found)


def _reported(exc: Exception) -> bool:
    from core.errors import REPORTED

    return isinstance(exc, REPORTED)


def watch(
    project: Project, *, once: bool = False, log: Log, stop: threading.Event
) -> dict[str, Any]:
    """Run the project's watcher in this process until ``stop`` is set (or one round)."""
    return Watcher(project, log=log, stop=stop).run(once=once)


def watcher_status(project: Project) -> dict[str, Any]:
    """Whether a watcher runs, its pid and branch, what it last started and when it last
    polled (the overview's line, ``relman pipeline runs``)."""
    state = read_state(project)
    running = watcher_running(project)
    return {
        "running": running,
        "pid": state.pid if running else None,
        "branch": state.branch,
        "since": state.started if running else None,
        "last_poll": state.last_poll,
        "last_started": state.last_started,
        "last_error": state.last_error,
    }

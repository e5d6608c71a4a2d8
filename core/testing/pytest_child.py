"""One suite as one pytest child process, and the event pipe that reports it live.

The child is ``python -m pytest PATHS ARGS -p relman_pytest_plugin -p no:cacheprovider -q``,
started in its own session (process group) with the project root as its working directory.
:mod:`core.testing.pytest_plugin` writes one JSON line per event into a pipe whose write end only
the
child holds; they become :class:`~core.testing.results.TestEvent` calls of ``on_event`` as each
test finishes.

The child's stdout and stderr (merged) and the event pipe are drained by one ``selectors``
loop in the calling thread rather than by reader threads: every pipe is read as soon as it
holds data, so the child never blocks on a full pipe, ``on_event`` runs in the caller's
thread (a TUI worker) without locks, and nothing is left blocked on a pipe that an escaped
grandchild keeps open. Output is kept only as a bounded tail (64 KiB, 200 lines).

Whatever happens, the suite ends as one :class:`~core.testing.results.SuiteResult` whose
``detail`` is the line a person reads: a timeout or a cancel kills the whole process group;
a child that dies names the test it died in; a collection error is shown as such, never as
"0 passed".
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config.model import SuiteConfig
from core.errors import ConfigError, ProjectError
from core.host.processes import end_child
from core.testing.results import (
    OUTCOMES,
    OnEvent,
    SuiteResult,
    TestCaseResult,
    TestEvent,
    case_from_dict,
    count_summary,
    junit_names,
)

if TYPE_CHECKING:
    from core.cancel import CancelSignal

__all__ = ["check_paths", "run_suite"]

PLUGIN_FILE = Path(__file__).with_name("pytest_plugin.py")
# Unique, so that relman's modules never shadow the project's (its own `core`, `config`).
PLUGIN_MODULE = "relman_pytest_plugin"
FD_VARIABLE = "RELMAN_EVENTS_FD"
TAIL_BYTES = 64 * 1024
TAIL_LINES = 200
CHUNK = 64 * 1024
# After the child exits, how long a pipe kept open by an escaped grandchild is still read.
EXIT_GRACE = 0.5
# SIGTERM first so fixtures may clean up; the group gets SIGKILL after this many seconds.
KILL_GRACE = 1.0
# An event line longer than this is not one of the plugin's (they are bounded): dropped.
MAX_EVENT_LINE = 1024 * 1024


def check_paths(root: Path, name: str, suite: SuiteConfig) -> None:
    for raw in suite.paths:
        path = raw.split("::", 1)[0]
        if not (Path(root) / path).exists():
            raise ConfigError(
                f"suite {name!r}: path {path!r} does not exist in {root}; "
                f"fix 'paths' of [suites.{name}] in relman.toml"
            )


def run_suite(
    root: Path,
    name: str,
    suite: SuiteConfig,
    *,
    python: str,
    on_event: OnEvent | None = None,
    extra_env: dict[str, str] | None = None,
    cancel: CancelSignal | None = None,
) -> SuiteResult:
    """Run one suite to its end and return what happened; raise only for bad input.
    ``cancel`` set by another thread ends the suite's process group and the result is
    ``cancelled``; set before the suite starts, nothing is started."""
    check_paths(root, name, suite)
    if cancel is not None and cancel.is_set():
        return _not_started(name)
    with tempfile.TemporaryDirectory(prefix="relman-pytest-") as plugin_dir:
        os.symlink(PLUGIN_FILE, Path(plugin_dir) / f"{PLUGIN_MODULE}.py")
        command = [python, "-m", "pytest", *suite.paths, *suite.args]
        command += ["-p", PLUGIN_MODULE, "-p", "no:cacheprovider", "-q"]
        read_fd, write_fd = os.pipe()
        env = _child_env(python, suite.env, extra_env or {}, plugin_dir)
        env[FD_VARIABLE] = str(write_fd)
        started = time.monotonic()
        try:
            child = subprocess.Popen(
                command,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_fd)
            raise ProjectError(
                f"cannot run the project's python {python}: {exc.strerror}; set [project] "
                "python in relman.toml to the interpreter of the project's environment"
            ) from exc
        finally:
            os.close(write_fd)
        run = _Run(name, on_event, child, read_fd, cancel)
        try:
            ending = run.pump(child, started + suite.timeout)
        finally:
            # Also on an exception in on_event or Ctrl-C: no process of the suite outlives it.
            end_child(child, KILL_GRACE)
            run.close()
        seconds = time.monotonic() - started
    if run.missing_pytest(child.returncode):
        raise ProjectError(
            f"pytest is not installed in the project's environment ({python}); install it "
            f"there ('{python} -m pip install pytest') or set [project] python in relman.toml"
        )
    result = run.result(child.returncode, seconds, ending, suite)
    status = "cancelled" if result.cancelled else result.status
    run.emit("finished", detail=result.detail, status=status)
    return result


def _not_started(name: str) -> SuiteResult:
    counts = dict.fromkeys(OUTCOMES, 0)
    detail = "cancelled before it started"
    return SuiteResult(name, "skipped", 0.0, 0, counts, [], detail, "", 0, cancelled=True)


def _child_env(
    python: str, suite_env: dict[str, str], extra: dict[str, str], plugin_dir: str
) -> dict[str, str]:
    env = {**os.environ, **suite_env, **extra}
    # The plugin's folder last: it holds one uniquely named module and must shadow nothing.
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([*parts, plugin_dir])
    # Console scripts of the project's environment (tools tests call) come first on PATH.
    bin_dir = os.path.dirname(python)
    if bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")]).rstrip(os.pathsep)
    return env


class _Run:
    """The state of one running suite, fed by its pipes."""

    def __init__(
        self,
        suite: str,
        on_event: OnEvent | None,
        child: subprocess.Popen[bytes],
        events_fd: int,
        cancel: CancelSignal | None = None,
    ) -> None:
        self.suite = suite
        self.on_event = on_event
        self._cancel = cancel
        self.total: int | None = None
        self.done = 0
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.cases: list[TestCaseResult] = []
        self.current: str | None = None  # the test started and not yet reported
        self.exitstatus: int | None = None  # set by the plugin's "finished" event
        self.events_seen = False
        self._finished_tests: set[str] = set()
        self._tail = bytearray()
        self._partial = bytearray()
        self._selector = selectors.DefaultSelector()
        assert child.stdout is not None
        # Each fd is closed once, by its owner: the stdout file object closes its own.
        self._closers: list[Callable[[], None]] = [child.stdout.close, lambda: os.close(events_fd)]
        for fd, kind in ((child.stdout.fileno(), "out"), (events_fd, "events")):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ, kind)

    # -- pipes

    def pump(self, child: subprocess.Popen[bytes], deadline: float) -> str:
        """Read both pipes until the child is done: ``"exited"``; or ``"timeout"`` when the
        deadline passed first, ``"cancelled"`` when the cancel signal was set first (the
        caller then ends the child's group)."""
        exited_at: float | None = None
        cancelled_at: float | None = None
        while self._selector.get_map():
            now = time.monotonic()
            if now >= deadline:
                return "timeout"
            if exited_at is None and child.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_GRACE:
                break
            if cancelled_at is None and self._cancel is not None and self._cancel.is_set():
                cancelled_at = now
            if cancelled_at is not None and exited_at is None:
                if self.exitstatus is None:
                    return "cancelled"
                # Every test is reported and pytest is only shutting down: its results
                # stand; a moment to exit, then the caller ends it all the same.
                if now - cancelled_at > EXIT_GRACE:
                    return "exited"
            self._read_ready(min(deadline - now, 0.5))
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return "timeout"
        return "exited"

    def close(self) -> None:
        """Read what the killed child left in the pipes (its last events), then close them."""
        until = time.monotonic() + EXIT_GRACE
        while self._selector.get_map() and time.monotonic() < until:
            self._read_ready(max(0.0, until - time.monotonic()))
        self._selector.close()
        for close in self._closers:
            close()

    def _read_ready(self, timeout: float) -> None:
        for key, _mask in self._selector.select(timeout):
            try:
                data = os.read(key.fd, CHUNK)
            except BlockingIOError:
                continue
            if not data:
                self._selector.unregister(key.fd)
            elif key.data == "out":
                self._tail += data
                if len(self._tail) > TAIL_BYTES:
                    del self._tail[: len(self._tail) - TAIL_BYTES]
            else:
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        self._partial += data
        *lines, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest if len(rest) <= MAX_EVENT_LINE else b"")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._handle(event)

    # -- events

    def _handle(self, event: dict[str, Any]) -> None:
        self.events_seen = True
        kind = event.get("e")
        if kind == "collected":
            self.total = int(event.get("total", 0))
            self.emit("collected")
        elif kind == "start":
            self.current = str(event.get("nodeid", ""))
        elif kind == "result":
            case = _case(self.suite, event)
            if case.when != "collect" and case.nodeid not in self._finished_tests:
                self._finished_tests.add(case.nodeid)
                self.done += 1
            if case.nodeid == self.current:
                self.current = None
            self._add(case)
        elif kind == "finished":
            self.exitstatus = int(event.get("exitstatus", -1))

    def _add(self, case: TestCaseResult) -> None:
        self.cases.append(case)
        self.counts[case.outcome] = self.counts.get(case.outcome, 0) + 1
        self.emit("result", case=case)

    def emit(
        self,
        kind: str,
        *,
        case: TestCaseResult | None = None,
        detail: str = "",
        status: str = "",
    ) -> None:
        if self.on_event is not None:
            event = TestEvent(kind, self.suite, self.total, self.done, dict(self.counts), case)
            self.on_event(dataclasses.replace(event, detail=detail, status=status))

    # -- the outcome

    def output_tail(self) -> str:
        text = self._tail.decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-TAIL_LINES:])

    def missing_pytest(self, returncode: int) -> bool:
        return (
            not self.events_seen
            and returncode == 1
            and "No module named pytest" in self.output_tail()
        )

    def result(
        self, returncode: int, seconds: float, ending: str, suite: SuiteConfig
    ) -> SuiteResult:
        tail = self.output_tail()
        timed_out, cancelled = ending == "timeout", ending == "cancelled"
        if cancelled:
            # The test that was running did not fail: it was stopped. Not recorded as a case.
            detail = f"cancelled after {seconds:.1f} s ({self._progress()})"
        elif timed_out:
            detail = f"timed out after {suite.timeout:g} s ({self._progress()})"
            self._fail_current(detail)
        elif self.exitstatus is None and returncode > 0 and not self.events_seen:
            # pytest stopped before loading plugins: bad arguments, a broken conftest or ini.
            detail = f"pytest failed (exit {returncode}): {_error_line(tail)}"
        elif self.exitstatus is None:
            died = (
                f"pytest died (signal {-returncode})"
                if returncode < 0
                else f"pytest exited with code {returncode} before finishing"
            )
            detail = f"{died} {self._where()}"
            self._fail_current(detail)
        else:
            detail = self._finished_detail(seconds, tail, suite)
        failed = timed_out or cancelled or self.exitstatus != 0
        failed = failed or bool(self.counts["failed"] or self.counts["error"])
        return SuiteResult(
            name=self.suite,
            status="failed" if failed else "passed",
            seconds=seconds,
            collected=self.total or 0,
            counts=dict(self.counts),
            cases=list(self.cases),
            detail=detail,
            output_tail=tail,
            exit_code=returncode,
            cancelled=cancelled,
        )

    def _progress(self) -> str:
        return f"{self.done} of {self.total} done" if self.total is not None else "in collection"

    def _finished_detail(self, seconds: float, tail: str, suite: SuiteConfig) -> str:
        summary = f"{count_summary(self.counts) or 'nothing ran'} in {seconds:.1f} s"
        collect_errors = [c for c in self.cases if c.when == "collect" and c.outcome == "error"]
        if collect_errors:
            first = collect_errors[0]
            more = f" (and {len(collect_errors) - 1} more)" if len(collect_errors) > 1 else ""
            ran = [c for c in self.cases if c.when != "collect"]
            after = f"; {summary}" if ran else ""
            return f"collection error: {first.nodeid}: {first.message}{more}{after}"
        if self.exitstatus == 5:  # pytest's "no tests collected"
            return f"no tests collected from {' '.join(suite.paths)}"
        if self.exitstatus not in (0, 1):
            return f"pytest failed (exit {self.exitstatus}): {_error_line(tail)}"
        return summary

    def _where(self) -> str:
        if self.current:
            return f"during {self.current}"
        if self.total is None:
            return "during collection"
        return f"after {self.done} of {self.total} tests"

    def _fail_current(self, detail: str) -> None:
        """Record the test that was running when the suite was cut off, so JUnit names it."""
        if self.current:
            nodeid, self.current = self.current, None
            classname, name = junit_names(nodeid)
            self.done += 1
            self._add(TestCaseResult(self.suite, nodeid, classname, name, "error", 0.0, detail))


def _case(suite: str, event: dict[str, Any]) -> TestCaseResult:
    # The plugin's event carries the fields of a case as a run's steps keep them.
    return case_from_dict(suite, event)


def _error_line(tail: str) -> str:
    """The line of pytest's output that says what went wrong, when pytest itself failed."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    argparse_errors = [line for line in lines if ": error: " in line]
    raised = [line[1:].strip() for line in lines if line.startswith("E ")]
    reported = [line for line in lines if line.startswith(("ERROR:", "INTERNALERROR>"))]
    reported = [line for line in reported if not line.startswith("ERROR: usage:")]
    line = (argparse_errors or raised or reported or lines or ["no output"])[-1]
    # "ImportError while loading conftest '/path/conftest.py'." says where the raise was.
    where = [x.rstrip(".") for x in lines if x.startswith("ImportError while loading conftest")]
    return f"{where[0]}: {line}" if where and raised else line

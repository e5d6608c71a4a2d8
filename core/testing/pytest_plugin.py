"""relman's pytest plugin: one JSON line per test event, written as each test finishes.

It runs inside the PROJECT's interpreter, which may not have relman installed, so it imports
nothing but pytest and the standard library, and keeps to syntax old Pythons read. The runner
(:mod:`core.testing.runner`) loads it through a symlink under the unique module name
``relman_pytest_plugin``, so neither relman's ``core`` package nor its modules can shadow the
project's own ``core``, ``config`` or ``errors``.

Why a pipe file descriptor (``RELMAN_EVENTS_FD``) rather than a file, and rather than pytest's
``--report-log``:

- ``--report-log`` is the separate ``pytest-reportlog`` package, which the project's
  environment usually lacks; it writes whole serialized reports (large) to a file that the
  runner would have to poll, and would leave the xfail/xpass/error classification to redo.
- A pipe is read by the runner as the lines arrive (no polling, nothing written to disk or
  to the project), and each event is one ``os.write`` without buffering, so when a test kills
  its own process every event before it has already reached the runner.
- Outcomes are classified by pytest's own ``pytest_report_teststatus`` hook, so the counts are
  exactly those of pytest's summary line (xfailed, xpassed, setup/teardown errors).

Events (``"e"`` is the kind): ``collected`` {total}; ``start`` {nodeid}; ``result`` {nodeid,
when, outcome, seconds, message, traceback}, sent for each test once its teardown is done;
``finished`` {exitstatus}.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

FD_VARIABLE = "RELMAN_EVENTS_FD"
# Outcomes counted by pytest's summary line; others (e.g. a plugin's "rerun") are not results.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
TRACEBACK_HEAD = 20
TRACEBACK_TAIL = 9
MESSAGE_LIMIT = 2000


class _Reporter:
    def __init__(self, config: pytest.Config, fd: int) -> None:
        self.config = config
        self.fd = fd
        # Results of the running test(s), sent when the test's last phase is reported.
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.seconds: dict[str, float] = {}

    def send(self, event: dict[str, Any]) -> None:
        data = (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8", "replace")
        try:
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        except OSError:
            # The runner went away; the tests themselves must still run to the end.
            self.fd = -1

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.send({"e": "collected", "total": len(session.items)})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed or report.skipped:
            outcome = "error" if report.failed else "skipped"
            self.send(_result(report, outcome, "collect", 0.0))

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.send({"e": "start", "nodeid": nodeid})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = report.nodeid
        self.seconds[nodeid] = self.seconds.get(nodeid, 0.0) + float(report.duration or 0.0)
        status = self.config.hook.pytest_report_teststatus(report=report, config=self.config)
        category = status[0] if isinstance(status, tuple) and status else ""
        if category in OUTCOMES:
            self.pending.setdefault(nodeid, []).append(_result(report, category, report.when))

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        seconds = self.seconds.pop(nodeid, 0.0)
        for index, event in enumerate(self.pending.pop(nodeid, [])):
            # The test's whole time goes to its first result, so sums are not doubled.
            event["seconds"] = round(seconds, 6) if index == 0 else 0.0
            self.send(event)

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.send({"e": "finished", "exitstatus": int(exitstatus)})


def _result(report: Any, outcome: str, when: str | None, seconds: float = 0.0) -> dict[str, Any]:
    return {
        "e": "result",
        "nodeid": report.nodeid,
        "when": when or "call",
        "outcome": outcome,
        "seconds": seconds,
        "message": _message(report, outcome)[:MESSAGE_LIMIT],
        "traceback": _traceback(report, outcome),
    }


def _message(report: Any, outcome: str) -> str:
    if outcome in ("xfailed", "xpassed"):
        reason = str(getattr(report, "wasxfail", "") or "")
        return reason[len("reason: ") :] if reason.startswith("reason: ") else reason
    longrepr = report.longrepr
    if longrepr is None or outcome == "passed":
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    lines = [line for line in str(longrepr).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("E ")]
    if errors:
        return errors[-1][1:].strip()
    return lines[-1].strip() if lines else ""


def _traceback(report: Any, outcome: str) -> str:
    if outcome not in ("failed", "error") or report.longrepr is None:
        return ""
    lines = str(report.longreprtext).splitlines()
    if len(lines) <= TRACEBACK_HEAD + TRACEBACK_TAIL + 1:
        return "\n".join(lines)
    # Head for where it started, tail for the exception itself: the middle is the least read.
    omitted = len(lines) - TRACEBACK_HEAD - TRACEBACK_TAIL
    middle = f"... ({omitted} lines omitted)"
    return "\n".join([*lines[:TRACEBACK_HEAD], middle, *lines[-TRACEBACK_TAIL:]])


def pytest_configure(config: pytest.Config) -> None:
    # Taken out of the environment so that tests, and any pytest they start, never see it.
    value = os.environ.pop(FD_VARIABLE, "")
    if not value.isdigit():
        return
    fd = int(value)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return
    config.pluginmanager.register(_Reporter(config, fd), "relman-events")

"""`relman test`: run the project's suites against the candidate and record what happened.

Suites are project-wide: one pytest run of each serves every service. The results are
recorded once per service, as a ``test`` run against that service's candidate release (each
suite a step, each test case a result), so the gates of any service find them by release id.

Only a clean tree is recorded (a dirty one has no release to attach results to), and nothing
is recorded in read-only mode; in both cases the suites still run and the report says why
nothing was kept. The ledger learns of the runs before the first suite starts, so a crash or
Ctrl-C leaves them ``interrupted``, never silently ``running``.

A cancelled run (``cancel`` set from another thread, e.g. the TUI's cancel key) stops the
suites' process groups and raises :class:`~core.cancel.Cancelled`. The runs are recorded
``interrupted`` with a reason starting ``cancelled``, each suite as a step; the test results
of the suites that ran to their end are kept, those of a cut-off suite are not (a partial
suite is no verdict: the gates go on reading its last complete run).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from core.cancel import Cancelled, CancelSignal
from core.config.model import Project, SuiteConfig
from core.errors import UsageError
from core.host.processes import TAG_VARIABLE
from core.ledger.releases import open_ledger, record_candidate
from core.ledger.runs import finishing_runs, work_tag
from core.lineage.candidate import Candidate, project_candidates
from core.lineage.release_id import is_dirty_id
from core.testing.junit import write_junit
from core.testing.results import OnEvent, SuiteResult, TestEvent, progress_line
from core.testing.runner import run_suites, was_cancelled
from core.testing.runner import (
    select_suites as testrun_select,
)
from store import Ledger, TestResultRecord
from store.ledger.records import RunStatus, TestOutcome

if TYPE_CHECKING:
    from core.documents import SuiteRunDocument

__all__ = [
    "SUITE_NODEID_PREFIX",
    "ProgressThrottle",
    "TestReport",
    "run_tests",
    "select_suites",
]

# The nodeid of the result recorded for a suite that failed without a failing test (a
# timeout in collection, no tests collected, pytest dying): gates must still see it failed.
SUITE_NODEID_PREFIX = "<suite "


@dataclass
class TestReport:
    """What ``relman test`` did: the suites' results and whether the ledger holds them."""

    __test__ = False

    releases: dict[str, str]  # service -> candidate release id
    suites: list[SuiteResult]
    recorded: bool
    reason: str = ""  # why nothing was recorded
    runs: dict[str, int] = field(default_factory=dict)  # service -> ledger run id
    junit: str | None = None

    @property
    def ok(self) -> bool:
        return all(suite.status == "passed" for suite in self.suites)

    def to_dict(self) -> SuiteRunDocument:
        """The document ``relman test`` prints (docs/json.md)."""
        first = next(iter(self.releases.values()), None)
        document: SuiteRunDocument = {
            "ok": self.ok,
            "release": first,
            "releases": dict(self.releases),
            "recorded": self.recorded,
            "steps": [suite.to_step() for suite in self.suites],
            "suites": [_suite_dict(suite) for suite in self.suites],
            "runs": dict(self.runs),
        }
        if not self.recorded:
            document["reason"] = self.reason
        if self.junit is not None:
            document["junit"] = self.junit
        return document


def _suite_dict(suite: SuiteResult) -> dict[str, Any]:
    # The step already carries the cases (docs/json.md); a suite adds what it collected.
    return {**suite.to_step(), "collected": suite.collected}


class ProgressThrottle:
    """Decides which test events deserve a progress line: each collection, each end, and in
    between at most one every ``interval`` seconds (one line per test is too chatty)."""

    def __init__(
        self,
        write: Callable[[str], None],
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._last = -float("inf")

    def __call__(self, event: TestEvent) -> None:
        now = self._clock()
        if event.kind == "collected":
            self._last = now
            self._write(f"{progress_line(event)} (collected)")
        elif event.kind == "finished":
            self._last = now
            self._write(f"{progress_line(event)}: {event.detail}")
        elif now - self._last >= self._interval:
            self._last = now
            self._write(progress_line(event))


def select_suites(project: Project, names: list[str] | None) -> list[str]:
    """The suites to run (all declared when ``names`` is empty), every name and path checked."""
    declared: dict[str, SuiteConfig] = project.config.suites
    if not declared:
        raise UsageError(
            f"{project.config_path.name} declares no test suites; add a [suites.NAME] table "
            "with the pytest paths to run"
        )
    return testrun_select(project.root, declared, names)


def run_tests(
    project: Project,
    names: list[str] | None = None,
    *,
    junit: Path | None = None,
    on_event: OnEvent | None = None,
    log: Callable[[str], None] | None = None,
    read_only: bool = False,
    lineage: dict[str, Candidate] | None = None,
    cancel: CancelSignal | None = None,
) -> TestReport:
    """Run the suites against the candidate, record them (when allowed), write JUnit.
    ``lineage`` is every service's candidate when the caller has it already. Once
    ``cancel`` is set the suites are stopped, the runs recorded cancelled, and
    :class:`~core.cancel.Cancelled` raised (no JUnit is written)."""
    selected = select_suites(project, names)
    config = project.config
    lineage = lineage if lineage is not None else project_candidates(project)
    releases = {service: cand.release for service, cand in lineage.items()}
    reason = _why_not_recorded(lineage, read_only)
    if reason and log is not None:
        log(f"{reason}; running the suites anyway")
    if reason:
        results = run_suites(
            project.root,
            config.suites,
            selected,
            python=project.python(),
            on_event=on_event,
            cancel=cancel,
        )
        if was_cancelled(results):
            raise _cancelled(results, "nothing was recorded")
        report = TestReport(releases, results, recorded=False, reason=reason)
    else:
        with open_ledger(project, read_only=False) as ledger:
            report = _run_recorded(project, ledger, lineage, selected, on_event, cancel)
    if junit is not None:
        write_junit(junit, report.suites)
        report.junit = str(junit)
    return report


def _why_not_recorded(lineage: dict[str, Candidate], read_only: bool) -> str:
    if read_only:
        return "read-only mode: results are not recorded"
    for cand in lineage.values():
        if cand.git.dirty or is_dirty_id(cand.release):
            files = ", ".join(cand.git.dirty_files[:3]) or "the working tree"
            return (
                f"uncommitted changes ({files}): results are not recorded, since a dirty "
                "tree is no release; commit, then run relman test again"
            )
    return ""


def _run_recorded(
    project: Project,
    ledger: Ledger,
    lineage: dict[str, Candidate],
    selected: list[str],
    on_event: OnEvent | None,
    cancel: CancelSignal | None = None,
) -> TestReport:
    releases: dict[str, str] = {}
    runs: dict[str, int] = {}
    for service, cand in lineage.items():
        release = record_candidate(ledger, project, service, cand)
        releases[service] = release.id
        run = ledger.start_run(
            "test", service=service, release_id=release.id, details={"suites": selected}
        )
        runs[service] = run.id
    with finishing_runs(
        ledger,
        runs.values(),
        interrupted="interrupted while running tests",
        failed="tests could not run",
    ):
        results = run_suites(
            project.root,
            project.config.suites,
            selected,
            python=project.python(),
            on_event=on_event,
            cancel=cancel,
            # found again and stopped if this relman is killed (core.ledger.runs)
            extra_env={TAG_VARIABLE: work_tag(project.state_dir)},
        )
    cancelled = was_cancelled(results)
    # A suite cut off by a cancel is no verdict: only complete suites leave test results.
    records = [record for result in results if not result.cancelled for record in _records(result)]
    summary = "; ".join(
        f"{r.name} {r.detail}" if r.cancelled else f"{r.name} {r.status}: {r.detail}"
        for r in results
    )
    for run_id in runs.values():
        for result in results:
            step = result.to_step()
            ledger.record_step(
                run_id,
                result.name,
                "passed" if result.status == "passed" else step["status"],
                seconds=step["seconds"],
                detail=result.detail,
            )
        ledger.record_test_results(run_id, records)
        if cancelled:
            # The ledger's word for work stopped before its end (as Ctrl-C leaves it).
            ledger.finish_run(
                run_id, "interrupted", reason=f"cancelled: {summary}", details={"cancelled": True}
            )
        else:
            status: RunStatus = "passed" if all(r.status == "passed" for r in results) else "failed"
            ledger.finish_run(run_id, status, reason=summary)
    if cancelled:
        shown = ", ".join(f"#{run_id}" for run_id in runs.values())
        raise _cancelled(results, f"recorded as interrupted (run {shown})")
    return TestReport(releases, results, recorded=True, runs=runs)


def _cancelled(results: list[SuiteResult], recorded: str) -> Cancelled:
    """``tests cancelled: unit cancelled after 2.1 s (3 of 9 done), model passed; ...``."""
    parts = [f"{r.name} {r.detail}" if r.cancelled else f"{r.name} {r.status}" for r in results]
    return Cancelled(
        f"tests cancelled: {', '.join(parts)}; {recorded}",
        steps=[result.to_step() for result in results],
    )


def _records(result: SuiteResult) -> list[TestResultRecord]:
    records = [
        TestResultRecord(
            suite=result.name,
            nodeid=case.nodeid,
            outcome=cast(TestOutcome, case.outcome),
            seconds=case.seconds,
            message=case.message,
        )
        for case in result.cases
    ]
    failing = any(r.outcome in ("failed", "error") for r in records)
    if result.status == "failed" and not failing:
        records.append(
            TestResultRecord(
                suite=result.name,
                nodeid=f"{SUITE_NODEID_PREFIX}{result.name}>",
                outcome="error",
                seconds=result.seconds,
                message=result.detail,
            )
        )
    return records

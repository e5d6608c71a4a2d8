"""What a suite run reports: each test's outcome, the suite's result, the live events.

:mod:`core.testing.runner` runs the suites and :mod:`core.testing.pytest_child` fills these in
from the events of relman's pytest plugin; :mod:`core.testing.suites` records them,
:mod:`core.testing.junit` writes them as JUnit XML, and :func:`progress_line` is the live line
of the TUI and of batch stderr.

A suite's step (:meth:`SuiteResult.to_step`) carries its ``cases`` (docs/json.md), so every
report made from a run document (JUnit, the Markdown summary, GitHub annotations, the CLI's
text) can name each test; :func:`case_from_dict` reads such a case back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.ledger.steps import step

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from core.documents import CaseDocument, Step, StepExtras, StepStatus

__all__ = [
    "FAILING",
    "OUTCOMES",
    "OnEvent",
    "SuiteResult",
    "TestCaseResult",
    "TestEvent",
    "case_from_dict",
    "count_summary",
    "junit_names",
    "progress_line",
]

# In the order a person reads them; pytest's own summary categories.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
# The outcomes that make a suite fail, and whose traceback a report shows.
FAILING = ("failed", "error")


@dataclasses.dataclass(frozen=True)
class TestCaseResult:
    """One outcome as pytest's summary counts it (a test may have two: passed + teardown
    error)."""

    __test__ = False  # a class named Test*, not a test: keep pytest from collecting it

    suite: str
    nodeid: str
    classname: str
    name: str
    outcome: str  # one of OUTCOMES
    seconds: float
    message: str = ""
    traceback: str = ""
    when: str = "call"  # "collect" | "setup" | "call" | "teardown"

    def to_dict(self) -> CaseDocument:
        """The case of a step's ``cases`` (docs/json.md); the traceback only when it failed,
        as only then does a report show it."""
        case: CaseDocument = {
            "nodeid": self.nodeid,
            "outcome": self.outcome,
            "when": self.when,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }
        if self.outcome in FAILING and self.traceback:
            case["traceback"] = self.traceback
        return case


@dataclasses.dataclass(frozen=True)
class SuiteResult:
    name: str
    status: StepStatus  # "skipped": cancelled before it started
    seconds: float
    collected: int
    counts: dict[str, int]
    cases: list[TestCaseResult]
    detail: str
    output_tail: str
    exit_code: int
    # Ended by a cancel: its results are partial (status "failed", or "skipped" when it
    # never started), and nothing should take them for a verdict.
    cancelled: bool = False

    def to_step(self) -> Step:
        """The step of ``--json`` documents (docs/json.md), plus the counts and the cases."""
        extra: StepExtras = {
            "counts": dict(self.counts),
            "cases": [case.to_dict() for case in self.cases],
        }
        if self.cancelled:
            extra["cancelled"] = True
        return step(self.name, self.status, self.seconds, self.detail, **extra)


@dataclasses.dataclass(frozen=True)
class TestEvent:
    """Progress of a running suite: ``collected``, each ``result``, then ``finished``."""

    __test__ = False

    kind: str  # "collected" | "result" | "finished"
    suite: str
    total: int | None  # None until collection is done
    done: int
    counts: dict[str, int]
    case: TestCaseResult | None = None
    detail: str = ""  # on "finished": the suite's detail line
    status: str = ""  # on "finished": passed, failed, or cancelled


OnEvent = Callable[[TestEvent], None]


def junit_names(nodeid: str) -> tuple[str, str]:
    """classname and name as pytest's --junitxml writes them (its mangle_test_address)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = names[0].replace("/", ".").removesuffix(".py")
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def case_from_dict(suite: str, case: Mapping[str, Any]) -> TestCaseResult:
    """A case of a step's ``cases`` (as :meth:`TestCaseResult.to_dict` wrote it) read back."""
    nodeid = str(case.get("nodeid", ""))
    classname, name = junit_names(nodeid)
    outcome = str(case.get("outcome", "error"))
    return TestCaseResult(
        suite=suite,
        nodeid=nodeid,
        classname=classname,
        name=name,
        outcome=outcome if outcome in OUTCOMES else "error",
        seconds=float(case.get("seconds") or 0.0),
        message=str(case.get("message") or ""),
        traceback=str(case.get("traceback") or ""),
        when=str(case.get("when") or "call"),
    )


def progress_line(progress: TestEvent | SuiteResult) -> str:
    """``unit 41/57 passed, 1 failed``: the live line of the TUI and of batch stderr."""
    total: int | None
    if isinstance(progress, SuiteResult):
        suite, total, counts = progress.name, progress.collected, progress.counts
    else:
        suite, total, counts = progress.suite, progress.total, progress.counts
    shown_total = "?" if total is None else str(total)
    line = f"{suite} {counts.get('passed', 0)}/{shown_total} passed"
    rest = count_summary(counts, skip=("passed",))
    return f"{line}, {rest}" if rest else line


def count_summary(counts: dict[str, int], skip: tuple[str, ...] = ()) -> str:
    """``41 passed, 1 failed``: the counts that are not zero (but those in ``skip``)."""
    parts = []
    for outcome in OUTCOMES:
        number = counts.get(outcome, 0)
        if number and outcome not in skip:
            label = "errors" if outcome == "error" and number > 1 else outcome
            parts.append(f"{number} {label}")
    return ", ".join(parts)

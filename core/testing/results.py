"""What a suite run reports: each test's outcome, the suite's result, the live events.

:mod:`core.testing.runner` runs the suites and :mod:`core.testing.pytest_child` fills these in from
the
events of relman's pytest plugin; :mod:`core.testing.suites` records them,
:mod:`core.testing.junit` writes
them as JUnit XML, and :func:`progress_line` is the live line of the TUI and of batch stderr.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.ledger.steps import step

if TYPE_CHECKING:
    from core.documents import Step, StepExtras, StepStatus

__all__ = [
    "OUTCOMES",
    "OnEvent",
    "SuiteResult",
    "TestCaseResult",
    "TestEvent",
    "count_summary",
    "progress_line",
]

# In the order a person reads them; pytest's own summary categories.
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")


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
        """The step of ``--json`` documents (docs/json.md), plus the counts."""
        extra: StepExtras = {"counts": dict(self.counts)}
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

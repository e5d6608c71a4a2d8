"""What one measurement of an analysis finds: one :class:`CheckResult` per check, a line a
person reads each, and the :func:`verdict` of them all (docs/architecture.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

__all__ = ["CHECKS", "CheckResult", "Verdict", "verdict"]

Verdict = Literal["pass", "fail", "inconclusive"]
# The checks an analysis may run, as relman.toml names them.
CHECKS = ("error-rate", "latency", "prediction-mix", "shadow-agreement", "accuracy")


@dataclass(frozen=True)
class CheckResult:
    """One check of one measurement: the ``analysis`` entry of a rollout document."""

    check: str  # "error-rate" | "latency" | ...
    stable: str  # the stable's figure, e.g. "31 ms" / "1.0% of 2400"
    canary: str  # the new release's figure
    verdict: Verdict
    detail: str  # e.g. "p95 412 ms vs stable 31 ms (x13.3 > x1.5): fail"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def verdict(results: Iterable[CheckResult]) -> Verdict:
    """ "fail" if any check fails; else "inconclusive" if any is; else "pass" (also for
    none: a measurement with no check has nothing against the new release)."""
    found = {result.verdict for result in results}
    if "fail" in found:
        return "fail"
    if "inconclusive" in found:
        return "inconclusive"
    return "pass"

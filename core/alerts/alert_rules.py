"""What each alert rule watches, and how it reads a minute.

The rules a checked policy makes (:func:`standard_rules`), in order: ``latency_p99`` and
``error_rate`` (``sudden``: a threshold sustained ``for`` minutes), ``latency_leak`` (on
``leak_metric``) and ``error_leak`` (``leak``: the CUSUM of :mod:`core.alerts.detect` against
the
release's own baseline), ``down`` (the scrape failed or /readyz was not 200),
``performance`` (live accuracy more than ``accuracy_max_drop`` below the release's offline
metric); and ``drift:FEATURE`` (:func:`drift_rule`; ``drift``: PSI of one feature above
``drift_psi_max``; one rule per feature the collector reports).

:meth:`Rule.verdict` feeds the rule's detector the minute's value and words its detail
line; the verdict moves the rule's alert (core.alerts.alert_state) on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.alerts.alert_state import AlertState
from core.alerts.detect import METRIC_LABELS, METRIC_UNITS, Cusum, Detector, Threshold, Verdict

Kind = Literal["sudden", "leak", "drift", "performance", "down"]
# Floor of the error-rate baseline's spread: a healthy service often has exactly 0 errors,
# and one failed request among a few dozen must not read as many sigmas.
ERROR_RATE_MIN_SIGMA = 0.005


@dataclass(slots=True)
class Rule:
    """One alert rule: what it reads (``metric``, the per-minute series; None for down,
    drift, performance), its detector, and its alert."""

    name: str
    kind: Kind
    metric: str | None
    detector: Detector
    alert: AlertState = field(default_factory=AlertState)

    def verdict(
        self,
        minute: int,
        point: Mapping[str, float | None],
        release: str | None,
        *,
        up: bool,
        drift: Mapping[str, float] | None,
        accuracy: tuple[float, float] | None,
        policy: Mapping[str, Any],
    ) -> Verdict:
        """The rule's verdict of one minute (the arguments of core.alerts.alerting's
        ``Rules.evaluate``; ``policy``: the checked parameters)."""
        if self.metric is not None:
            return self.detector.update(minute, point.get(self.metric), release)
        if self.kind == "down":
            verdict = self.detector.update(minute, 0.0 if up else 1.0)
            if verdict.breaching:
                streak = getattr(self.detector, "streak", 1)
                detail = f"down for {streak} min: scrape failed or /readyz not 200"
            else:
                detail = "up: scrape and /readyz answer"
            return _with(verdict, detail, value=1.0 if not up else 0.0)
        if self.kind == "drift":
            feature = self.name.removeprefix("drift:")
            psi = drift.get(feature) if drift else None
            verdict = self.detector.update(minute, psi)
            if psi is None:
                return verdict
            window = int(policy["drift_window_minutes"])
            limit = float(policy["drift_psi_max"])
            op = ">" if verdict.breaching else "<="
            detail = f"{feature} PSI {psi:.2f} {op} {limit:.2f} over the last {window} min"
            return _with(verdict, detail)
        # performance: the drop of live accuracy below the offline metric
        if accuracy is None:
            return self.detector.update(minute, None)
        live, offline = accuracy
        drop = offline - live
        verdict = self.detector.update(minute, drop)
        max_drop = float(policy["accuracy_max_drop"])
        if verdict.breaching:
            detail = (
                f"live accuracy {live:.3f}, {drop:.3f} below offline {offline:.3f}"
                f" (max drop {max_drop:.3f})"
            )
        else:
            detail = f"live accuracy {live:.3f}, offline {offline:.3f} (max drop {max_drop:.3f})"
        return _with(verdict, detail, baseline=offline)


def standard_rules(policy: Mapping[str, Any]) -> list[Rule]:
    """Every rule but the drift ones, in order, from the checked parameters."""
    p = policy
    leak_metric = str(p["leak_metric"])
    return [
        Rule(
            "latency_p99",
            "sudden",
            "p99_ms",
            Threshold(
                float(p["latency_p99_ms"]),
                int(p["latency_for_minutes"]),
                label="p99",
                unit="ms",
            ),
        ),
        Rule(
            "error_rate",
            "sudden",
            "error_rate",
            Threshold(
                float(p["error_rate_max"]),
                int(p["error_for_minutes"]),
                label="error rate",
                unit="%",
            ),
        ),
        Rule(
            "latency_leak",
            "leak",
            leak_metric,
            _cusum(p, float(p["leak_min_sigma_ms"]), leak_metric),
        ),
        Rule("error_leak", "leak", "error_rate", _cusum(p, ERROR_RATE_MIN_SIGMA, "error_rate")),
        Rule("down", "down", None, Threshold(0.5, int(p["down_for_minutes"]), label="down")),
        Rule(
            "performance",
            "performance",
            None,
            Threshold(float(p["accuracy_max_drop"]), 1, label="accuracy drop"),
        ),
    ]


def drift_rule(feature: str, policy: Mapping[str, Any]) -> Rule:
    """The drift rule of one feature: its PSI above ``drift_psi_max``."""
    limit = float(policy["drift_psi_max"])
    return Rule(f"drift:{feature}", "drift", None, Threshold(limit, 1, label=f"{feature} PSI"))


def _cusum(policy: Mapping[str, Any], min_sigma: float, metric: str) -> Cusum:
    p = policy
    return Cusum(
        baseline_minutes=int(p["leak_baseline_minutes"]),
        k=float(p["leak_k"]),
        h=float(p["leak_h"]),
        min_sigma=min_sigma,
        label=METRIC_LABELS[metric],
        unit=METRIC_UNITS[metric],
    )


def _with(
    verdict: Verdict,
    detail: str,
    *,
    value: float | None = None,
    baseline: float | None = None,
) -> Verdict:
    return Verdict(
        verdict.breaching,
        verdict.value if value is None else value,
        verdict.threshold,
        verdict.baseline if baseline is None else baseline,
        detail,
        sustained=verdict.sustained,
        score=verdict.score,
    )

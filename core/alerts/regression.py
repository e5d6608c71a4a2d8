"""The regression rule: a point well above what the environment did before (a seasonal
:class:`~core.alerts.seasonal.Expectation`), by a ratio and in spreads, so that it means
the same on any metric in any unit.

Breaching when ``value >= ratio * level`` and ``(value - level) / spread >= z`` (the spread
floored at ``min_spread`` of the level: a very steady series does not turn every wiggle
into many sigmas); sustained after ``for_points`` such points in a row. Hysteresis: once
breaching, a point still breaches while it is at least half as far above the level, by
both measures, so a value hovering at the limit opens one alert and resolves once.

The detail line says what it compared, e.g. ``p95 243 ms vs 41 ms this hour yesterday
(x5.9, 12 sigma)``. Without an expectation (no history yet) it holds no opinion: not
breaching, and the line says so. Pure, state in plain JSON like core.alerts.detect.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from core.alerts.detect import Streak, Verdict, format_value
from core.alerts.seasonal import Expectation

Direction = Literal["above", "below"]


class Regression(Streak):
    """A point far from its expectation for ``for_points`` points (see the module doc)."""

    kind = "regression"

    def __init__(
        self,
        *,
        ratio: float = 1.5,
        z: float = 4.0,
        for_points: int = 2,
        min_spread: float = 0.05,
        min_sigma: float = 0.0,
        direction: Direction = "above",
        label: str = "value",
        unit: str = "",
    ) -> None:
        if ratio <= 1 or z <= 0 or for_points < 1:
            raise ValueError("regression needs ratio > 1, z > 0 and for_points >= 1")
        self.ratio = float(ratio)
        self.z = float(z)
        self.for_points = int(for_points)
        self.min_spread = float(min_spread)
        self.min_sigma = float(min_sigma)
        self.direction: Direction = direction
        self.label = label
        self.unit = unit
        self.streak = 0

    def update(
        self,
        minute: int,
        value: float | None,
        release: str | None = None,
        expected: Expectation | None = None,
    ) -> Verdict:
        del minute, release  # the expectation carries the past
        if value is None or math.isnan(value):
            return Verdict(
                self.streak > 0,
                None,
                None,
                expected.level if expected else None,
                f"{self.label}: no data this minute",
                sustained=self.streak >= self.for_points,
            )
        shown = format_value(value, self.unit)
        if expected is None or expected.level <= 0:
            self.streak = 0
            detail = f"{self.label} {shown}: no earlier history to compare with yet"
            return Verdict(False, value, None, None, detail, sustained=False)
        level = expected.level
        spread = max(expected.spread, self.min_spread * level, self.min_sigma)
        if self.direction == "above":
            ratio, z = value / level, (value - level) / spread
        else:
            ratio = level / value if value > 0 else math.inf
            z = (level - value) / spread
        # Hysteresis: half the way back is still the same breach.
        keep = self.streak > 0
        need_ratio = 1 + (self.ratio - 1) / 2 if keep else self.ratio
        need_z = self.z / 2 if keep else self.z
        breaching = ratio >= need_ratio and z >= need_z
        self.streak = self.streak + 1 if breaching else 0
        sustained = self.streak >= self.for_points
        base = f"{format_value(level, self.unit)} {expected.words()}"
        sign = "x" if self.direction == "above" else "/"
        factor = f"{sign}{ratio:.1f}" if ratio < 100 else f"{sign}{ratio:.0f}"
        detail = f"{self.label} {shown} vs {base} ({factor}, {z:.1f} sigma)"
        if breaching and not sustained:
            detail += f" for {self.streak} of {self.for_points} points"
        limit = level * self.ratio if self.direction == "above" else level / self.ratio
        return Verdict(
            breaching,
            value,
            limit,
            level,
            detail,
            sustained=sustained,
            score=z,
            unit=self.unit if self.direction == "above" else None,
        )

    def params(self) -> dict[str, Any]:
        return {
            "ratio": self.ratio,
            "z": self.z,
            "for_points": self.for_points,
            "min_spread": self.min_spread,
            "min_sigma": self.min_sigma,
            "direction": self.direction,
        }

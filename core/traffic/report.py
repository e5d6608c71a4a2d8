"""What a run of `relman traffic` counted: the tally its sending threads share, its progress
lines, and the report it answers with."""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from core.traffic.faults import describe_fault


@dataclass
class TrafficReport:
    service: str
    env: str
    url: str
    release: str | None
    inject: str | None
    rate: float
    duration: float
    rows_from: str
    seconds: float = 0.0
    sent: int = 0
    succeeded: int = 0
    # Failed requests by HTTP status ("500") or "timeout" / "connection".
    errors: dict[str, int] = field(default_factory=dict)
    # Not sent: the client had MAX_PENDING_PER_WORKER requests waiting per thread.
    skipped: int = 0
    # Over every answered request (any status).
    p50_ms: float | None = None
    p95_ms: float | None = None
    # Items of the answers that are lists of labels, e.g. {"setosa": 20, ...}.
    predictions: dict[str, int] = field(default_factory=dict)
    fault: dict[str, Any] | None = None
    fault_file: str | None = None
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        """One line: what was sent, what came back."""
        errors = ", ".join(f"{key}: {n}" for key, n in sorted(self.errors.items()))
        line = (
            f"{self.service} {self.env}: sent {self.sent} in {self.seconds:.1f} s, "
            f"ok {self.succeeded}, errors {self.failed}" + (f" ({errors})" if errors else "")
        )
        if self.skipped:
            line += f", skipped {self.skipped}"
        return line + f"; p50 {_ms(self.p50_ms)}, p95 {_ms(self.p95_ms)}"

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("seconds", "p50_ms", "p95_ms"):
            if document[key] is not None:
                document[key] = round(document[key], 1)
        return {
            "ok": True,
            **document,
            "failed": self.failed,
            "fault_detail": describe_fault(self.inject),
            "detail": self.summary(),
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


class Tally:
    """Counts shared by the sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.done = 0
        self.succeeded = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.window: list[float] = []
        self.predictions: Counter[str] = Counter()

    def add(self, status: int | None, problem: str | None, ms: float, answer: bytes) -> None:
        labels: list[str] = []
        if status is not None and 200 <= status < 300:
            with contextlib.suppress(ValueError):
                decoded = json.loads(answer)
                if isinstance(decoded, list) and all(isinstance(x, str) for x in decoded):
                    labels = decoded
        with self.lock:
            self.done += 1
            if status is not None:
                self.latencies.append(ms)
                self.window.append(ms)
            if status is not None and 200 <= status < 300:
                self.succeeded += 1
                self.predictions.update(labels)
            else:
                self.errors[str(status) if status is not None else problem or "error"] += 1

    def take_window(self) -> list[float]:
        with self.lock:
            window, self.window = self.window, []
        return window

    def progress(self, elapsed: float, every: float) -> str:
        """One line: the counts so far, and the latency of the answers of the last
        ``every`` seconds (since the line before)."""
        window = self.take_window()
        with self.lock:
            sent, done, errors = self.started, self.done, sum(self.errors.values())
        return (
            f"{elapsed:4.0f} s: sent {sent}, answered {done}, errors {errors}; "
            f"last {every:g} s: p50 {_ms(percentile(window, 0.5))}, "
            f"p95 {_ms(percentile(window, 0.95))}"
        )


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

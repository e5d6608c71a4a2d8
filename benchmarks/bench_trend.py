"""Speed, detection delay and false alarms of the trend detector (core.alerts.trend).

Fed straight to :class:`core.alerts.trend.Trend` with its defaults (window 30 min,
min_slope 2 %/min, p < 0.001, 8 points), seeded synthetic latency series, multiplicative
lognormal noise:

- speed: 43,200 minutes (30 days of 1-minute points, the backtest's budget) of noise, of a
  daily cycle of +-50 % (smooth: the rising half is significant for hours) and of a leak
  restarting every hour; 10-second samples (6 points a minute, 180 in the window) on 3
  days. Best of ``--repeat`` runs; how often the O(n^2) Theil-Sen ran.
- delay: a release leaking from its first request (60 ms/min on 38 ms, the issue's demo;
  and ramps of 2-10 % of the start level per minute), with 10-second samples and with one
  value a minute: minutes from the release to the first breaching minute (its end).
- false alarms: noise (10 % and 20 %), with and without the daily cycle, a new release
  every ``--release-minutes``: breaching episodes per day (rising edges), per release.

    python benchmarks/bench_trend.py [--seeds 20] [--days 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.alerts.trend as trend_module
from core.alerts.trend import Trend

M0 = 1_700_006_400  # a minute start, Unix seconds
DAY = 1440
Level = Callable[[float], float]  # minutes since the start -> noiseless value


def daily(base: float, amplitude: float = 0.5) -> Level:
    return lambda t: base * (1 + amplitude * math.sin(2 * math.pi * t / DAY))


def feed(
    level: Level, noise: float, minutes: int, seed: int, per_minute: int = 0
) -> list[tuple[int, float, list[float] | None]]:
    """(minute, value, samples): one value at the half minute, or ``per_minute`` samples
    (the minute's value then is their maximum, as a p95 of the minute would lean)."""
    rng = random.Random(seed)
    out: list[tuple[int, float, list[float] | None]] = []
    for m in range(minutes):
        if per_minute:
            samples = [
                level(m + (i + 0.5) / per_minute) * math.exp(rng.gauss(0, noise))
                for i in range(per_minute)
            ]
            out.append((M0 + 60 * m, max(samples), samples))
        else:
            out.append((M0 + 60 * m, level(m + 0.5) * math.exp(rng.gauss(0, noise)), None))
    return out


def speed(repeat: int) -> None:
    calls = [0]
    theil_sen = trend_module.theil_sen

    def counted(xs: list[float], ys: list[float]) -> tuple[float, float]:
        calls[0] += 1
        return theil_sen(xs, ys)

    trend_module.theil_sen = counted  # type: ignore[assignment]
    leak = lambda t: 40.0 * (1 + 0.05 * (t % 60))  # noqa: E731 - a new leaking release an hour
    cases = [
        ("noise 10%", lambda t: 40.0, 0.10, 30 * DAY, 0),
        ("daily cycle +-50%, noise 10%", daily(40.0), 0.10, 30 * DAY, 0),
        ("daily cycle +-50%, noise 1%", daily(40.0), 0.01, 30 * DAY, 0),
        ("daily cycle +-50%, no noise", daily(40.0), 0.0, 30 * DAY, 0),
        ("leak 5%/min restarting hourly", leak, 0.10, 30 * DAY, 0),
        ("noise 10%, 6 samples/min", lambda t: 40.0, 0.10, 3 * DAY, 6),
        ("daily cycle, noise 1%, 6 samples/min", daily(40.0), 0.01, 3 * DAY, 6),
        ("leak restarting hourly, 6 samples/min", leak, 0.10, 3 * DAY, 6),
    ]
    print(f"speed (window 30 min; best of {repeat})")
    for name, level, noise, minutes, per_minute in cases:
        data = feed(level, noise, minutes, 1, per_minute)
        releases = [f"r{m // 60}" if level is leak else "r0" for m in range(minutes)]
        best = math.inf
        for _ in range(repeat):
            calls[0] = 0
            detector = Trend(label="p95", unit="ms")
            start = time.perf_counter()
            for (minute, value, samples), release in zip(data, releases, strict=True):
                detector.update(minute, value, release, samples)
            best = min(best, time.perf_counter() - start)
        per = best / minutes
        print(
            f"  {name:40s} {per * 1e6:6.1f} us/minute  -> {per * 43_200:5.2f} s per 43,200"
            f"  (Theil-Sen on {calls[0] / minutes:.1%} of minutes)"
        )
    trend_module.theil_sen = theil_sen


def first_breach(data: Sequence[tuple[int, float, list[float] | None]]) -> float:
    detector = Trend(label="p95", unit="ms")
    for m, (minute, value, samples) in enumerate(data):
        if detector.update(minute, value, "r1", samples).breaching:
            return m + 1
    return math.inf


def delays(seeds: int) -> None:
    print("delay from the release (minutes to the end of the first breaching one), noise 10%")

    def ramp(rate: float) -> Level:
        return lambda t: 100.0 * (1 + rate * t)

    ramps: list[tuple[str, Level]] = [("leak 60 ms/min on 38 ms", lambda t: 38.0 + 60.0 * t)]
    ramps += [(f"ramp {pct}%/min of the start", ramp(pct / 100)) for pct in (2, 3, 5, 10)]
    ramps.append(("creep 1%/min (not its job)", ramp(0.01)))
    for name, level in ramps:
        cells = []
        for per_minute, how in ((6, "10-s samples"), (0, "1 value/min")):
            got = [first_breach(feed(level, 0.10, 60, seed, per_minute)) for seed in range(seeds)]
            caught = [g for g in got if not math.isinf(g)]
            if not caught:
                cells.append(f"{how}: never in 60 min")
                continue
            cells.append(
                f"{how}: median {statistics.median(caught):.0f}, max {max(caught):.0f}"
                f" ({len(caught)}/{seeds})"
            )
        print(f"  {name:32s} " + "; ".join(cells))
    issue = [(M0 + 60 * m, v, None) for m, v in enumerate([38, 96, 240, 243, 250, 255, 260, 262])]
    print(f"  issue's per-minute p95 38 -> 262 ms: breaching after {first_breach(issue)} min")


def false_alarms(seeds: int, days: int, release_minutes: int) -> None:
    print(
        f"false alarms ({seeds} seeds x {days} day, a release every {release_minutes} min):"
        " breaching episodes"
    )
    cases = [
        ("noise 10%", lambda t: 40.0, 0.10, 0),
        ("noise 20%", lambda t: 40.0, 0.20, 0),
        ("daily cycle +-50%, noise 10%", daily(40.0), 0.10, 0),
        ("daily cycle +-50%, noise 2%", daily(40.0), 0.02, 0),
        ("noise 10%, 6 samples/min", lambda t: 40.0, 0.10, 6),
    ]
    for name, level, noise, per_minute in cases:
        episodes = 0
        for seed in range(seeds):
            data = feed(level, noise, days * DAY, 10_000 + seed, per_minute)
            detector = Trend(label="p95", unit="ms")
            was = False
            for m, (minute, value, samples) in enumerate(data):
                now = detector.update(minute, value, f"r{m // release_minutes}", samples)
                episodes += now.breaching and not was
                was = now.breaching
        releases = seeds * days * DAY / release_minutes
        print(
            f"  {name:32s} {episodes / (seeds * days):.3f} a day"
            f"  ({episodes} in {releases:.0f} releases)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--release-minutes", type=int, default=60)
    args = parser.parse_args()
    speed(args.repeat)
    delays(args.seeds)
    false_alarms(args.seeds, args.days, DAY * args.days)
    false_alarms(args.seeds, args.days, args.release_minutes)


if __name__ == "__main__":
    main()

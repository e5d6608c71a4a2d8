"""Detection delay and false alarms of the slow-leak CUSUM against static thresholds.

Synthetic per-minute latency series (baseline 120 ms, Gaussian noise of 5 % and 10 %,
seeded) are replayed through :class:`core.alerts.alerting.Rules` -- detectors *and* the alert
state
machine, as the collector runs them -- with the default leak parameters (k = 0.5, h = 8
sigma, 10 baseline minutes, 2 ms sigma floor) and a static ``for 2 min`` threshold at +50 %
(quiet on this noise) and at +25 % (tighter). Scenarios, the change starting at minute 60 of
the release:

- step: +30 % from the change on;
- ramp: +1 % of the baseline per minute (a leak);
- spike: one minute at 3x, then normal (must not fire the leak alert; the sudden rule may
  go pending, and fires only if the spike lasts ``for`` minutes);
- noise only: 7 days of minutes per seed, a new release every day (so each day learns a
  new baseline, the main source of CUSUM false alarms): alerts that fired, per day.

Delays are minutes from the change to the alert *firing* (median / p90 / max over seeds);
the ratio line compares the leak detector with the +50 % threshold on the same series.

    python benchmarks/bench_detectors.py [--seeds 20] [--noise-days 7] [--noise-seeds 20]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.alerts.alerting import DEFAULTS, Rules
from core.alerts.detect import MEAN_MARGIN, SPREAD_MARGIN

BASE_MS = 120.0
CHANGE_AT = 60  # minutes into the release
HORIZON = 240  # minutes after the change we wait for a detection
STATIC = {"static +50%": 1.5, "static +25%": 1.25}

Shape = Callable[[int], float]  # minutes since the change -> multiplier of the baseline


def series(rng: random.Random, rel_sigma: float, minutes: int, shape: Shape) -> list[float]:
    out = []
    for m in range(minutes):
        level = BASE_MS * (shape(m - CHANGE_AT) if m >= CHANGE_AT else 1.0)
        out.append(level + rng.gauss(0.0, BASE_MS * rel_sigma))
    return out


def replay(
    values: list[float], rules: Rules, rule: str, release_minutes: int = 0
) -> tuple[list[int], list[int]]:
    """(minutes the rule fired, minutes it went pending). ``release_minutes``: a new
    release (hence a new leak baseline) every that many minutes; 0: one release."""
    fired, pending = [], []
    for minute, value in enumerate(values):
        point = {"p99_ms": value}
        release = f"r{minute // release_minutes}" if release_minutes else "r0"
        for tr in rules.evaluate(minute * 60, point, release=release, up=True):
            if tr.rule == rule and tr.state == "firing":
                fired.append(minute)
            elif tr.rule == rule and tr.state == "pending":
                pending.append(minute)
    return fired, pending


def leak_rules() -> Rules:
    # The latency series is fed as p99 so that one replay drives the leak rule; the static
    # rules get their own Rules (their threshold differs).
    return Rules({"leak_metric": "p99_ms"}, service="bench", env="prod", only=["latency_leak"])


def static_rules(factor: float) -> Rules:
    policy = {"latency_p99_ms": BASE_MS * factor, "latency_for_minutes": 2}
    return Rules(policy, service="bench", env="prod", only=["latency_p99"])


DETECTORS: dict[str, tuple[Callable[[], Rules], str]] = {
    "leak CUSUM": (leak_rules, "latency_leak"),
    **{
        name: ((lambda f=factor: static_rules(f)), "latency_p99") for name, factor in STATIC.items()
    },
}


def delays(rel_sigma: float, shape: Shape, seeds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in DETECTORS}
    for seed in range(seeds):
        values = series(random.Random(seed), rel_sigma, CHANGE_AT + HORIZON, shape)
        for name, (make, rule) in DETECTORS.items():
            fired, _ = replay(values, make(), rule)
            after = [m - CHANGE_AT + 1 for m in fired if m >= CHANGE_AT]
            before = [m for m in fired if m < CHANGE_AT]
            out[name].append(math.inf if before or not after else after[0])
    return out


def spike(rel_sigma: float, seeds: int) -> dict[str, tuple[int, int]]:
    """Per detector: (seeds where the rule went pending, seeds where it fired)."""
    out: dict[str, tuple[int, int]] = {}
    for name, (make, rule) in DETECTORS.items():
        pend = fire = 0
        for seed in range(seeds):
            values = series(random.Random(seed), rel_sigma, CHANGE_AT + 60, lambda m: 1.0)
            values[CHANGE_AT] = 3 * BASE_MS
            fired, pending = replay(values, make(), rule)
            pend += any(m >= CHANGE_AT for m in pending)
            fire += any(m >= CHANGE_AT for m in fired)
        out[name] = (pend, fire)
    return out


def false_alarms(rel_sigma: float, seeds: int, days: int) -> dict[str, float]:
    minutes = days * 1440
    out: dict[str, float] = {}
    for name, (make, rule) in DETECTORS.items():
        total = 0
        for seed in range(seeds):
            values = series(random.Random(10_000 + seed), rel_sigma, minutes, lambda m: 1.0)
            total += len(replay(values, make(), rule, 1440)[0])
        out[name] = total / (seeds * days)
    return out


def fmt_delays(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]

    def one(x: float) -> str:
        return "never" if math.isinf(x) else f"{x:.0f}"

    caught = sum(not math.isinf(v) for v in values)
    if caught == 0:
        return f"never in {HORIZON} min"
    if 2 * caught < len(values):
        return f"caught {caught}/{len(values)}"
    text = f"{one(statistics.median(ordered))} / {one(p90)} / {one(ordered[-1])}"
    return text if caught == len(values) else f"{text} ({caught}/{len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--noise-days", type=int, default=7)
    parser.add_argument("--noise-seeds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    n = int(DEFAULTS["leak_baseline_minutes"])
    k, h = float(DEFAULTS["leak_k"]), float(DEFAULTS["leak_h"])
    print(
        f"leak CUSUM: k={k} h={h} sigma, baseline {n} min, sigma floor "
        f"{DEFAULTS['leak_min_sigma_ms']} ms (effective k={k + MEAN_MARGIN / math.sqrt(n):.2f}, "
        f"sigma from moving ranges x(1 + {SPREAD_MARGIN}/sqrt(m)), clip h/2)"
    )
    print(
        "static: p > 180 ms (+50%) / > 150 ms (+25%) for 2 min; "
        f"resolve {DEFAULTS['resolve_for_minutes']} min, cooldown "
        f"{DEFAULTS['cooldown_minutes']} min"
    )
    print(
        f"baseline {BASE_MS:.0f} ms; change at minute {CHANGE_AT}; delays in minutes to "
        f"firing, median / p90 / max over {args.seeds} seeds\n"
    )
    shapes: dict[str, Shape] = {
        "step +30%": lambda m: 1.30,
        "ramp +1%/min": lambda m: 1.0 + 0.01 * (m + 1),
    }
    names = list(DETECTORS)
    for rel in (0.05, 0.10):
        print(f"noise sigma {rel:.0%} ({BASE_MS * rel:.0f} ms)")
        print(f"  {'scenario':<26}" + "".join(f"{name:<26}" for name in names))
        ramp: dict[str, list[float]] = {}
        for label, shape in shapes.items():
            got = delays(rel, shape, args.seeds)
            if label.startswith("ramp"):
                ramp = got
            print(f"  {label:<26}" + "".join(f"{fmt_delays(got[nm]):<26}" for nm in names))
        spikes = spike(rel, args.seeds)
        print(
            f"  {'spike 3x, 1 min':<26}"
            + "".join(
                f"{f'pending {spikes[nm][0]}, fired {spikes[nm][1]}/{args.seeds}':<26}"
                for nm in names
            )
        )
        fa = false_alarms(rel, args.noise_seeds, args.noise_days)
        days = args.noise_days * args.noise_seeds
        print(
            f"  {f'noise, {days} days':<26}"
            + "".join(f"{f'{fa[nm]:.2f} alarms/day':<26}" for nm in names)
        )
        leak = statistics.median(ramp["leak CUSUM"])
        static = statistics.median(ramp["static +50%"])
        print(f"  ramp delay ratio leak / static +50%: {leak / static:.2f}\n")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()

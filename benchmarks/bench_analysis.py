"""Rollout analysis: how fast a worse release is aborted, how often a healthy one is, and what
one measurement costs next to a 10M-sample metric store.

Request streams are generated with seeded RNGs (Poisson arrivals at ``--rps``, each one the
new release's with probability ``--weight``; 5xx with the side's error rate; lognormal
durations, median 30 ms, sigma 0.5, the new release's scaled by a factor, so its p95 is that
factor times the stable's) and replayed in simulated time through the checks
:func:`core.analysis.measurement.measure` runs on the access log (:mod:`core.analysis.checks`:
error-rate and latency), measuring every ``--interval`` the window growing from the step's
start, as the rollout driver does. A measurement that fails aborts (``failure_limit = 0``).

1. Error rate 1% -> 2% at 20 requests/s: aborted within 3 intervals in >= 95% of 200 runs;
   a healthy release (1% and 1%) aborted in <= 1% of 200 runs. The statistics decide the
   split and interval: a doubling of a 1% rate needs about 250 errors, several thousand
   requests on each side, so 50% and 5 minutes (9,000 requests of the new release by the
   third measurement). Also the look that aborted and the requests it took.
2. Latency against the default limit (``latency_max_ratio`` 1.25), error rate on too, within
   2 intervals, same split and interval: a p95 1.5x the stable's aborted in >= 95% of runs,
   a healthy release in <= 1%; also one at the limit (about alpha) and one at 2x.
3. The built-in analysis (core/delivery/rollout_plan.py: 30 s, twice, min_requests 50) in
   each canary step of the built-in plan at ``--builtin-rps`` (3) requests/s: when can the
   latency check fail a release ``--slower-ms`` (300) slower than a stable of p95
   ``--stable-p95`` (40 ms)? Each run is looked at every second of the window (from the
   weight's setting) and at the plan's measurements (after the step's pause, every interval:
   ``count``, and as many again while inconclusive).
4. One ``measure`` (all five checks but shadow-agreement, canary mode) of the last minutes
   of an hour at each of ``--measure-rps`` (20 and 50) requests/s, half of it the new
   release's: the access log as the proxy writes it, rotated 15 minutes before (11 and 27
   MB), each instance's monitor log of the hour, and ``.relman/metrics.db`` with 10M scrape
   samples, a million feedback labels and the hour's records, built once per rate with the
   store's own APIs and cached under the temp folder. Median and p95 of 20 calls, goal: a
   median < 50 ms: a first measurement (nothing kept) of a 1-minute window (the built-in
   analysis: 30 s, twice) and of a 5-minute one, and a next look at the 5-minute window
   (the tails kept; nothing new written). Then where a first measurement of the 5-minute
   window spends it: the access log's window, the monitor rows of both releases, their
   feedback labels, and the checks.

    .venv/bin/python benchmarks/bench_analysis.py [--runs 200] [--weight 0.5] [--interval 5m]
        [--builtin-rps 3] [--stable-p95 40] [--slower-ms 300]
        [--samples 10000000] [--measure-rps 20,50] [--skip detection|builtin|measure]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from statistics import NormalDist

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.analysis import CheckResult, checks, forget, measure, verdict
from core.analysis.access import Requests
from core.analysis.stats import quantile_upper_index
from core.config.durations import format_duration, parse_duration
from core.config.model import AnalysisConfig, Project, parse_config
from store.metrics.store import Feedback, MetricStore, Record, ScrapeRow

BASE_MS, SIGMA = 30.0, 0.5
ABORT_GOAL, FALSE_ABORT_GOAL, MEASURE_GOAL_MS = 0.95, 0.01, 50.0


# ------------------------------------------------------------------------ simulated rollouts


def stream(
    rng: random.Random,
    seconds: float,
    rps: float,
    weight: float,
    errors: tuple[float, float],
    slower: float,
) -> tuple[Requests, Requests]:
    """(stable, new release) requests of ``seconds`` of simulated time."""
    stable, canary = Requests(), Requests()
    t = 0.0
    while (t := t + rng.expovariate(rps)) < seconds:
        new = rng.random() < weight
        failed = rng.random() < errors[new]
        ms = BASE_MS * rng.lognormvariate(0.0, SIGMA) * (slower if new else 1.0)
        (canary if new else stable).add(t, 503 if failed else 200, ms)
    return stable, canary


def until(requests: Requests, t: float) -> Requests:
    """The requests before ``t`` (a prefix: the window growing)."""
    n = bisect_left(requests.times, t)
    answered = n - sum(requests.failed[:n])
    return Requests(requests.times[:n], requests.failed[:n], requests.ms[:answered], [])


def rollout(
    seed: int, analysis: AnalysisConfig, args: argparse.Namespace, errors: tuple[float, float],
    slower: float = 1.0,
) -> tuple[int | None, int]:  # fmt: skip
    """(the measurement that aborted, 1-based, or None; the new release's requests then)."""
    interval = parse_duration(analysis.interval)
    rng = random.Random(seed)
    stable, canary = stream(rng, interval * analysis.count, args.rps, args.weight, errors, slower)
    for look in range(1, analysis.count + 1):
        ours, theirs = until(stable, look * interval), until(canary, look * interval)
        results = [
            checks.error_rate(ours, theirs, analysis, since=0.0),
            checks.latency(ours, theirs, analysis),
        ]
        if verdict(results) == "fail":
            return look, theirs.count
    return None, canary.count


def scenario(
    name: str, analysis: AnalysisConfig, args: argparse.Namespace, errors: tuple[float, float],
    slower: float, base_seed: int,
) -> float:  # fmt: skip
    outcomes = [rollout(base_seed + s, analysis, args, errors, slower) for s in range(args.runs)]
    aborted = [n for look, n in outcomes if look is not None]
    looks = Counter(look for look, _ in outcomes)
    spread = " ".join(f"{k}:{looks[k]}" for k in range(1, analysis.count + 1))
    needed = (
        f"; new-release requests at abort median {statistics.median(aborted):,.0f}, "
        f"max {max(aborted):,}"
        if aborted
        else ""
    )
    share = len(aborted) / len(outcomes)
    print(f"   {name:<44} aborted {share:6.1%}  (by measurement {spread}, never:{looks[None]})"
          f"{needed}")  # fmt: skip
    return share


def detection(args: argparse.Namespace) -> None:
    analysis = AnalysisConfig(
        interval=args.interval, count=3, min_requests=100, confidence=0.99,
        checks=["error-rate", "latency"],
    )  # fmt: skip
    interval = parse_duration(args.interval)
    per_look = args.rps * args.weight * interval
    print(
        f"1. error rate, {args.runs} seeded runs at {args.rps:g} requests/s: split "
        f"{args.weight:.0%} to the new release, interval {format_duration(interval)}, "
        f"3 measurements ({per_look:,.0f} new-release requests each), confidence "
        f"{analysis.confidence}"
    )
    worse = scenario("1% -> 2% (within 3 intervals)", analysis, args, (0.01, 0.02), 1.0, 0)
    healthy = scenario("1% -> 1% (healthy)", analysis, args, (0.01, 0.01), 1.0, 100_000)
    print(f"   goals: >= {ABORT_GOAL:.0%} aborted: {'ok' if worse >= ABORT_GOAL else 'MISSED'}; "
          f"healthy <= {FALSE_ABORT_GOAL:.0%}: "
          f"{'ok' if healthy <= FALSE_ABORT_GOAL else 'MISSED'}")  # fmt: skip
    two = replace(analysis, count=2)
    limit = two.latency_max_ratio
    print(f"2. latency ({two.latency_quantile}, the default limit x{limit:g}) and error rate, "
          "within 2 intervals, same split and interval")  # fmt: skip
    slow = scenario("p95 x1.5", two, args, (0.01, 0.01), 1.5, 200_000)
    healthy = scenario("p95 x1 (healthy)", two, args, (0.01, 0.01), 1.0, 300_000)
    scenario(f"p95 x{limit:g} (at the limit)", two, args, (0.01, 0.01), limit, 400_000)
    scenario("p95 x2", two, args, (0.01, 0.01), 2.0, 500_000)
    print(f"   goals: p95 x1.5 >= {ABORT_GOAL:.0%} aborted: "
          f"{'ok' if slow >= ABORT_GOAL else 'MISSED'}; healthy <= {FALSE_ABORT_GOAL:.0%}: "
          f"{'ok' if healthy <= FALSE_ABORT_GOAL else 'MISSED'}")  # fmt: skip


# ------------------------------------------------------------- the built-in plan's latency


def builtin_latency(args: argparse.Namespace) -> None:
    """When can the built-in analysis's latency check fail a canary ``--slower-ms`` slower
    than a stable of p95 ``--stable-p95``, at ``--builtin-rps``, in each canary step of the
    built-in plan? Looked at every second of the window (from the weight's setting), and at
    the plan's measurements (the pause, then every interval: ``count``, and as many again
    while inconclusive)."""
    from core.delivery.rollout_plan import BUILTIN_ANALYSIS, BUILTIN_CANARY

    analysis = BUILTIN_ANALYSIS
    q = checks.QUANTILES[analysis.latency_quantile]
    interval = parse_duration(analysis.interval)
    median = args.stable_p95 / math.exp(NormalDist().inv_cdf(q) * SIGMA)
    alpha = checks.look_alpha(analysis)
    needed_stable = next(n for n in range(1, 10_000) if quantile_upper_index(n, q, alpha / 2))
    # With the stable's slowest as the bound, for a canary whose requests are all slower:
    slowest = next(n for n in range(1, 10_000) if q**n < alpha)
    print(f"3. the built-in analysis ({analysis.interval} x {analysis.count}, min_requests "
          f"{analysis.min_requests}, confidence {analysis.confidence}): latency check of a canary "
          f"{args.slower_ms:g} ms slower than a stable of p95 {args.stable_p95:g} ms, "
          f"{args.builtin_rps:g} requests/s, {args.runs} seeded runs; the stable's bound of its "
          f"{analysis.latency_quantile} needs {needed_stable} answered requests ({slowest} "
          f"with its slowest as the bound, for a canary far beyond)")  # fmt: skip
    steps = list(BUILTIN_CANARY)
    for at, step in enumerate(steps):
        if step.weight is None or step.pause is None:
            continue
        weight = step.weight / 100
        pause = parse_duration(step.pause)
        looks = [pause + k * interval for k in range(1, 2 * analysis.count + 1)]
        horizon = int(looks[-1]) + 120
        first_second: list[float] = []
        by_look: Counter[float | None] = Counter()
        for run in range(args.runs):
            rng = random.Random(600_000 + 1000 * at + run)
            stable, canary = Requests(), Requests()
            t = 0.0
            while (t := t + rng.expovariate(args.builtin_rps)) < horizon:
                new = rng.random() < weight
                ms = median * rng.lognormvariate(0.0, SIGMA) + (args.slower_ms if new else 0.0)
                (canary if new else stable).add(t, 503 if rng.random() < 0.01 else 200, ms)
            found = next((s for s in range(1, horizon + 1)
                          if checks.latency(until(stable, s), until(canary, s), analysis).verdict
                          == "fail"), None)  # fmt: skip
            first_second.append(math.inf if found is None else found)
            by_look[next((look for look in looks
                          if checks.latency(until(stable, look), until(canary, look), analysis)
                          .verdict == "fail"), None)] += 1  # fmt: skip
        spread = " ".join(f"{look:.0f}s:{by_look[look]}" for look in looks)
        ordered = sorted(first_second)
        print(f"   weight {step.weight}%: canary {args.builtin_rps * weight:.1f}/s needs "
              f"{analysis.min_requests / (args.builtin_rps * weight * 0.99):.0f} s for "
              f"min_requests, stable {args.builtin_rps * (1 - weight):.1f}/s "
              f"{needed_stable / (args.builtin_rps * (1 - weight) * 0.99):.0f} s for its bound "
              f"({slowest / (args.builtin_rps * (1 - weight) * 0.99):.0f} s by its slowest); "
              f"can fail after median {statistics.median(ordered):.0f} s, 95% by "
              f"{ordered[int(0.95 * len(ordered)) - 1]:.0f} s; failed at the measurement of "
              f"{spread}, not by {looks[-1]:.0f} s: {by_look[None]}")  # fmt: skip


# ---------------------------------------------------------------------------- one measure


HOUR = 3600
NOW = 1_800_000_000 - 1_800_000_000 % 60  # the simulated present: the end of the hour
LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0",
       "30.0", "60.0", "120.0", "180.0", "+Inf")  # fmt: skip
CLASSES = ("setosa", "versicolor", "virginica")
SCHEMA = json.dumps({"columns": [
    {"name": "x", "role": "feature", "type": "numerical"},
    {"name": "prediction", "role": "prediction", "type": "categorical"},
]}) + "\n"  # fmt: skip


def build_store(path: Path, samples: int, rps: float) -> float:
    """A metric store of ``samples`` scrapes (6 h of 1-second scrapes of as many series as
    it takes), a million older feedback labels, then the hour's: seconds it took."""
    started = time.perf_counter()
    span = 6 * HOUR
    series = max(1, samples // span)
    with MetricStore.open(path) as store:
        batch: list[ScrapeRow] = []
        for n in range(samples):
            tick, s = divmod(n, series)
            requests = float(tick * (13 + s % 20))
            buckets = {le: requests * i / 15 for i, le in enumerate(LES)}
            batch.append(ScrapeRow(f"svc{s:03d}", "prod", NOW - span + tick, "r1", requests,
                                   requests // 50, 1.0, buckets))  # fmt: skip
            if len(batch) == 100_000:
                store.add_scrapes(batch)
                batch = []
        store.add_scrapes(batch)
        old = (
            Feedback("iris", "prod", f"old-{i}", CLASSES[i % 3], NOW - 2 * HOUR)
            for i in range(10**6)
        )
        store.add_feedback(old)
        records, labels = [], []
        for side, request_id, t, prediction in hour_predictions(rps):
            if side == "stable":
                records.append(Record("iris", "prod", int(t), "r1", request_id, {"x": 1.0},
                                      prediction, None))  # fmt: skip
            if int(request_id[1:]) * 7919 % 10 < 3:  # 30% of the requests get their label back
                labels.append(Feedback("iris", "prod", request_id, prediction, NOW))
        store.add_records(records)
        store.add_feedback(labels)
    return time.perf_counter() - started


def hour_traffic(rps: float) -> Iterator[tuple[float, bool, int, float]]:
    """(t, new release?, status, ms) of the hour, ``rps`` requests/s, half the new release's."""
    rng = random.Random(11)
    t = float(NOW - HOUR)
    while (t := t + rng.expovariate(rps)) < NOW:
        new = rng.random() < 0.5
        yield t, new, 503 if rng.random() < 0.01 else 200, BASE_MS * rng.lognormvariate(0, SIGMA)


def hour_predictions(rps: float) -> Iterator[tuple[str, str, float, str]]:
    rng = random.Random(12)
    for n, (t, new, _, _) in enumerate(hour_traffic(rps)):
        yield ("canary" if new else "stable"), f"q{n}", t, CLASSES[rng.randrange(3)]


def write_logs(root: Path, rps: float) -> tuple[Path, dict[str, Path]]:
    env = root / ".relman" / "envs" / "iris" / "prod"
    env.mkdir(parents=True, exist_ok=True)
    log = env / "access.log"
    with open(log.with_name("access.log.1"), "w") as old, open(log, "w") as new:
        for t, canary, status, ms in hour_traffic(rps):
            record = {"t": round(t, 3), "method": "POST", "path": "/classify", "status": status,
                      "ms": round(ms, 2), "upstream": f"127.0.0.1:{41000 + canary}", "bytes": 31,
                      "role": "canary" if canary else "stable",
                      "release": "r2" if canary else "r1"}  # fmt: skip
            line = json.dumps(record, separators=(",", ":"))  # as the proxy writes it
            (new if t >= NOW - 900 else old).write(line + "\n")
    folders = {"r1": env / "instances" / "r1-41000", "r2": env / "instances" / "r2-41001"}
    handles = {}
    for release, folder in folders.items():
        monitor = folder / "monitoring" / "iris"
        (monitor / "data").mkdir(parents=True, exist_ok=True)
        (monitor / "schema").mkdir(exist_ok=True)
        (monitor / "schema" / "schema.1.log").write_text(SCHEMA)
        handles[release] = open(monitor / "data" / "data.1.log", "w")  # noqa: SIM115
    for side, request_id, t, prediction in hour_predictions(rps):
        row = {"x": 1.0, "prediction": prediction, "request_id": request_id, "trace_id": "0",
               "timestamp": datetime.fromtimestamp(t).isoformat()}  # fmt: skip
        handles["r2" if side == "canary" else "r1"].write(json.dumps(row) + "\n")
    for handle in handles.values():
        handle.close()
    return log, folders


def one_measure(args: argparse.Namespace) -> None:
    for rps in (float(rate) for rate in args.measure_rps.split(",")):
        measure_at(args, rps)


def measure_at(args: argparse.Namespace, rps: float) -> None:
    cache = Path(tempfile.gettempdir()) / "relman-bench-analysis"
    root = cache / f"project-{args.samples}-{rps:g}rps"
    store = root / ".relman" / "metrics.db"
    done = store.with_name("metrics.db.built")
    if not done.exists():
        for stale in store.parent.glob("metrics.db*"):
            stale.unlink()
        store.parent.mkdir(parents=True, exist_ok=True)
        print(f"4. building the {args.samples:,}-sample store (once, cached in {cache}) ...")
        seconds = build_store(store, args.samples, rps)
        done.write_text(f"{seconds:.0f}\n")
    log, folders = write_logs(root, rps)
    text = '[project]\nname = "shop"\n[services.iris]\nbento = "service:Iris"\nmodel = ["m"]\n'
    project = Project(root, root / "relman.toml", parse_config(text, root / "relman.toml"))
    analysis = AnalysisConfig(
        count=3, min_requests=100,
        checks=["error-rate", "latency", "prediction-mix", "shadow-agreement", "accuracy"],
    )  # fmt: skip
    size = (log.stat().st_size + log.with_name("access.log.1").stat().st_size) / 1e6
    print(f"4. one measure of the last minutes of an hour at {rps:g} requests/s ({size:.0f} MB of "
          f"access log, {args.samples:,}-sample store of {store.stat().st_size / 1e9:.1f} GB), "
          f"median / p95 of 20 calls, goal: median < {MEASURE_GOAL_MS:g} ms")  # fmt: skip
    results: list[CheckResult] = []
    for name, window, kept in (
        ("first measurement of a 1m window", 60, False),
        ("first measurement of a 5m window", 300, False),
        ("next look at a 5m window (tails kept)", 300, True),
    ):

        def call(window: float = window) -> list[CheckResult]:
            return measure(
                project, "iris", "prod", analysis, since=NOW - window, until=NOW, stable="r1",
                canary="r2", mode="canary", access_log=log, instance_folders=folders,
            )  # fmt: skip

        forget()
        results = call()
        timings = []
        for _ in range(20):
            if not kept:
                forget()
            started = time.perf_counter()
            call()
            timings.append((time.perf_counter() - started) * 1000)
        median, p95 = statistics.median(timings), statistics.quantiles(timings, n=20)[-1]
        mark = "ok" if median < MEASURE_GOAL_MS else "OVER GOAL"
        print(f"   {name:<40} {median:6.1f} / {p95:6.1f} ms  {mark}")
    parts = breakdown(project, analysis, log, folders)
    print("   of a first 5m measurement, median ms: " + ", ".join(
        f"{part} {ms:.1f}" for part, ms in parts.items()))  # fmt: skip
    print("   the checks of the last:")
    for result in results:
        print(f"     {result.check:<15} {result.detail}")


def breakdown(
    project: Project, analysis: AnalysisConfig, log: Path, folders: dict[str, Path]
) -> dict[str, float]:
    """Median milliseconds of 20 first measurements' parts, done as measure() does them."""
    from core.analysis.access import read_window
    from core.analysis.measurement import _pairs
    from core.analysis.predictions import window_rows

    since = NOW - 300
    parts = ("access log", "monitor rows", "feedback labels", "checks")
    timings: list[list[float]] = []
    for _ in range(20):
        forget()
        marks = [time.perf_counter()]
        window = read_window(log, since, NOW, stable="r1", canary="r2")
        marks.append(time.perf_counter())
        ours = window_rows(folders["r1"], since, NOW)[0]
        theirs = window_rows(folders["r2"], since, NOW)[0]
        marks.append(time.perf_counter())
        ids = [row.request_id for row in (*ours, *theirs) if row.request_id]
        with MetricStore.open(project.metrics_path, readonly=True) as store:
            labels = store.feedback_labels("iris", "prod", ids)
        marks.append(time.perf_counter())
        checks.error_rate(window.stable, window.canary, analysis, since=since)
        checks.latency(window.stable, window.canary, analysis)
        predictions = [row.prediction for row in ours], [row.prediction for row in theirs]
        checks.prediction_mix(*predictions, analysis)
        checks.accuracy(_pairs(ours, labels), _pairs(theirs, labels), analysis)
        marks.append(time.perf_counter())
        timings.append([(b - a) * 1000 for a, b in pairwise(marks)])
    return {part: statistics.median(t[i] for t in timings) for i, part in enumerate(parts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--weight", type=float, default=0.5, help="the new release's share")
    parser.add_argument("--interval", default="5m")
    parser.add_argument("--samples", type=int, default=10_000_000)
    parser.add_argument("--measure-rps", default="20,50", help="requests/s of part 4, commas")
    parser.add_argument("--builtin-rps", type=float, default=3.0, help="requests/s of part 4")
    parser.add_argument("--stable-p95", type=float, default=40.0, help="ms, part 4")
    parser.add_argument("--slower-ms", type=float, default=300.0, help="the canary's, part 4")
    parts = ["detection", "measure", "builtin"]
    parser.add_argument("--skip", choices=parts, action="append", default=[])
    args = parser.parse_args()
    if "detection" not in args.skip:
        detection(args)
    if "builtin" not in args.skip:
        builtin_latency(args)
    if "measure" not in args.skip:
        one_measure(args)


if __name__ == "__main__":
    main()

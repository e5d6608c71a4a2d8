"""Exact latencies: the per-minute log-linear histograms against the exact percentiles and
against BentoML's histogram buckets, and what keeping them costs the collector.

Requests at ``--rate`` (50) a second for ``--minutes`` (30) minutes, in three shapes of
latency (a 38 ms service: lognormal, sigma 0.25; a bimodal one, 80 % at 20 ms and 20 % at
300 ms; a heavy tail: lognormal, median 120 ms, sigma 0.9), are written as the proxy
writes its access log (core/targets/proxy.py: one JSON line per request, each up to 5 s
late, so out of order; 10 % of them a canary's, 2 % failed).

1. Accuracy, per minute: p50/p95/p99 of the stable side's requests exactly (numpy's
   default interpolation), from the minute's histogram (store.metrics.sketch,
   :class:`~store.metrics.store.LatencyMinute`) and from BentoML's default buckets
   (0.005 ... 180 s, +Inf; Prometheus' histogram_quantile, what rollups used before). The
   worst and median relative error over the minutes, and one minute side by side.
   Goal: the histogram within 1 % everywhere.
2. Cost, per minute of log: :meth:`AccessLatencyReader.read` of the minute's lines (parse,
   bin, histogram), ``MetricStore.add_batch`` merging them into their rows (a file store,
   WAL), and ``latency_minute`` + ``with_latency`` (what the rollup of the minute adds);
   the median and worst over the minutes, read as the collector reads: a pass every 5 s.
   Goal: well under 100 ms a minute at 50 requests a second.
3. Size: bytes of a minute's row (6 histograms of 10 s), and ``latency_sketch`` over the
   whole run (one merged histogram, what a baseline over a window reads).

    .venv/bin/python benchmarks/bench_latency_sketch.py [--rate 50] [--minutes 30]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.monitoring.latency_log import AccessLatencyReader
from store.metrics.sketch import exact_quantile
from store.metrics.store import (
    AccessOffset,
    MetricStore,
    Rollup,
    histogram_quantile,
    with_latency,
)

T0 = 1_790_000_000 - 1_790_000_000 % 3600
LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")
LES += ("30.0", "60.0", "120.0", "180.0", "+Inf")
QUANTILES = (0.5, 0.95, 0.99)
PASS_SECONDS = 5
SHAPES = {
    "38 ms lognormal": lambda rng: rng.lognormvariate(0, 0.25) * 38.0,
    "bimodal 20/300 ms": lambda rng: (
        rng.gauss(20.0, 2.0) if rng.random() < 0.8 else rng.gauss(300.0, 30.0)
    ),
    "heavy tail 120 ms": lambda rng: rng.lognormvariate(0, 0.9) * 120.0,
}


def requests(shape: str, rate: int, minutes: int, seed: int) -> list[tuple[float, dict]]:
    """(written at, record) of every request, in the order written."""
    rng = random.Random(seed)
    draw = SHAPES[shape]
    out = []
    for i in range(rate * 60 * minutes):
        t = T0 + i / rate + rng.uniform(0, 1 / rate)
        ms = round(max(0.05, draw(rng)), 3)
        role, release, status = "stable", "r1", 200
        roll = rng.random()
        if roll < 0.02:
            status = 503
        elif roll < 0.12:
            role, release = "canary", "r2"
        record = {"t": t, "method": "POST", "path": "/predict", "status": status, "ms": ms,
                  "upstream": "127.0.0.1:3001", "bytes": 40, "role": role,
                  "release": release}  # fmt: skip
        out.append((t + rng.uniform(0, 5), record))
    out.sort(key=lambda item: item[0])
    return out


def bucket_quantiles(values: list[float]) -> list[float | None]:
    """What the rollups said before: the quantiles of BentoML's bucket counts."""
    counts = dict.fromkeys(LES, 0.0)
    for ms in values:
        for le in LES:
            if le == "+Inf" or float(le) * 1000 >= ms:
                counts[le] += 1
    out = []
    for q in QUANTILES:
        found = histogram_quantile(q, counts)
        out.append(None if found is None else found * 1000)
    return out


def run(shape: str, rate: int, minutes: int, folder: Path) -> dict:
    lines = requests(shape, rate, minutes, seed=len(shape))
    log = folder / "access.log"
    log.write_text("")
    store = MetricStore.open(folder / "metrics.db")
    reader = AccessLatencyReader(log, None, service="iris", env="prod", floor=T0)
    truth: dict[int, list[float]] = {}
    for _, record in lines:
        if record["role"] == "stable" and record["status"] < 500:
            t = record["t"]
            truth.setdefault(int(t - t % 60), []).append(record["ms"])
    read_ms: dict[int, float] = {}
    store_ms: dict[int, float] = {}
    i = 0
    with log.open("a") as handle:
        for now in range(T0 + PASS_SECONDS, T0 + 60 * minutes + 10, PASS_SECONDS):
            chunk = []
            while i < len(lines) and lines[i][0] <= now:
                chunk.append(json.dumps(lines[i][1]) + "\n")
                i += 1
            handle.writelines(chunk)
            handle.flush()
            minute = now - now % 60
            started = time.perf_counter()
            rows = reader.read()
            middle = time.perf_counter()
            store.add_batch(latency=rows, access=[AccessOffset("iris", "prod", reader.state())])
            done = time.perf_counter()
            read_ms[minute] = read_ms.get(minute, 0.0) + (middle - started) * 1000
            store_ms[minute] = store_ms.get(minute, 0.0) + (done - middle) * 1000
    errors_sketch, errors_buckets, rollup_ms = [], [], []
    sample = None
    for minute, values in sorted(truth.items()):
        if minute >= T0 + 60 * minutes:
            continue
        started = time.perf_counter()
        latency = store.latency_minute("iris", "prod", minute)
        base = Rollup("iris", "prod", minute, "r1", len(values), 0, rate, 0, None, None, None, 0)
        rolled = with_latency(base, latency)
        rollup_ms.append((time.perf_counter() - started) * 1000)
        exact = [exact_quantile(values, q) for q in QUANTILES]
        sketch = [rolled.p50_ms, rolled.p95_ms, rolled.p99_ms]
        buckets = bucket_quantiles(values)
        errors_sketch.append([abs(s - e) / e for s, e in zip(sketch, exact, strict=True)])
        errors_buckets.append([abs(b - e) / e for b, e in zip(buckets, exact, strict=True)])
        if sample is None:
            sample = (exact, sketch, buckets, len(values))
    with store._reading() as conn:  # the row sizes, as stored
        sizes = [n for (n,) in conn.execute("SELECT length(sub) FROM latency WHERE release = 'r1'")]
    started = time.perf_counter()
    merged = store.latency_sketch("iris", "prod", T0, T0 + 60 * minutes, release="r1")
    window_ms = (time.perf_counter() - started) * 1000
    store.close()
    whole = [m for m in read_ms if m < T0 + 60 * minutes]
    return {
        "errors_sketch": errors_sketch,
        "errors_buckets": errors_buckets,
        "sample": sample,
        "read": [read_ms[m] for m in whole],
        "store": [store_ms[m] for m in whole],
        "rollup": rollup_ms,
        "size": statistics.median(sizes),
        "window": (window_ms, merged.count),
    }


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:8.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--minutes", type=int, default=30)
    args = parser.parse_args()
    worst_sketch, worst_cost = 0.0, 0.0
    for shape in SHAPES:
        with tempfile.TemporaryDirectory() as temp:
            found = run(shape, args.rate, args.minutes, Path(temp))
        print(f"\n== {shape}: {args.rate} requests/s, {args.minutes} minutes")
        exact, sketch, buckets, n = found["sample"]
        print(f"   one minute ({n} stable requests), ms:      p50      p95      p99")
        print("     exact                                " + " ".join(map(fmt, exact)))
        print("     log-linear histogram                 " + " ".join(map(fmt, sketch)))
        print("     BentoML buckets                      " + " ".join(map(fmt, buckets)))
        for name, errors in (
            ("histogram", found["errors_sketch"]),
            ("buckets", found["errors_buckets"]),
        ):
            worst = [max(e[k] for e in errors) * 100 for k in range(3)]
            middle = [statistics.median(e[k] for e in errors) * 100 for k in range(3)]
            print(
                f"   relative error, {name:9} worst / median %: "
                + "  ".join(
                    f"p{int(q * 100)} {w:6.2f} / {m:5.2f}"
                    for q, w, m in zip(QUANTILES, worst, middle, strict=True)
                )
            )
            if name == "histogram":
                worst_sketch = max(worst_sketch, *worst)
        read, stored, rolled = found["read"], found["store"], found["rollup"]
        per_minute = [r + s for r, s in zip(read, stored, strict=True)]
        worst_cost = max(worst_cost, statistics.median(per_minute))
        print(
            f"   cost per minute of log (12 passes), ms: read {statistics.median(read):.2f} "
            f"(worst {max(read):.2f}), store {statistics.median(stored):.2f} "
            f"(worst {max(stored):.2f}), rollup {statistics.median(rolled):.2f}; "
            f"total median {statistics.median(per_minute):.2f}"
        )
        window_ms, count = found["window"]
        print(
            f"   a minute's row: {found['size']:.0f} bytes; latency_sketch of {args.minutes} "
            f"minutes ({count} requests): {window_ms:.1f} ms"
        )
    print(
        f"\nworst relative error of the histogram: {worst_sketch:.2f} % (goal <= 1 %); "
        f"median cost of a minute: {worst_cost:.1f} ms (goal well under 100 ms)"
    )
    return 0 if worst_sketch <= 1.0 + 1e-6 and worst_cost < 100 else 1


if __name__ == "__main__":
    sys.exit(main())

"""`bench_collector.py --source prometheus`: the same traffic through both sources.

While the project's collector reads the demo's counters from Prometheus, a second
collector runs in the benchmark's own process (a thread) with ``source = "scrape"``,
scraping the same instances into a metric store of its own (``Collector(..., state_dir=,
store_path=)``). For each whole minute both rolled up, it prints side by side what each
stored (rps, error rate, p95: the proxy's exact latencies where it has some, in both)
and the p95 each source's histogram gives (the rollup of its scrapes alone).

What may differ, and by how much: the two read the counters at different instants (the
scraping collector at its passes, Prometheus at its own 1 s scrapes, thinned to the
5 s interval), so a minute's window differs by up to an interval at each end: rps by
the requests of those few seconds (Poisson noise at a steady rate, a few %; allowed:
``RPS_TOLERANCE``). The histogram's p95 is an interpolation inside one of BentoML's
buckets (Prometheus' histogram_quantile): it only knows the quantile lies in that bucket,
so the two agree when they differ by less than that bucket's width. The stored p95 comes
from the proxy's access log in both (each request's latency, within 1 %): equal.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from pathlib import Path
from typing import Any

RPS_TOLERANCE = 0.05  # relative
BRIDGE_SECONDS = 120  # as core.monitoring.collector's


class Beside:
    """The scraping collector, one pass every ``interval`` seconds in a thread."""

    def __init__(self, project: Any, folder: Path, interval: float) -> None:
        from core.monitoring.collector import Collector

        folder.mkdir(parents=True, exist_ok=True)
        monitoring = dataclasses.replace(project.config.monitoring, source="scrape", file_sd=None)
        shadow = dataclasses.replace(
            project, config=dataclasses.replace(project.config, monitoring=monitoring)
        )
        self.store = folder / "metrics.db"
        self.collector = Collector(shadow, state_dir=folder, store_path=self.store)
        self.interval = interval
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self.collector.run_pass()
            except Exception as exc:  # a benchmark says it and goes on
                print(f"scraping collector: {type(exc).__name__}: {exc}")
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _minute_values(path: Path, service: str, env: str, minute: int) -> dict[str, Any] | None:
    """What a store holds of ``minute``: its rollup and its histogram's p95 and bucket."""
    from store.metrics.rows import rollup
    from store.metrics.store import MetricStore

    with MetricStore.open(path, readonly=True) as store:
        stored = store.rollups(service, env, minute, minute + 60)
        previous = store.last_scrape(service, env, before=minute)
        scrapes = store.scrapes(service, env, minute, minute + 60)
    if not stored:
        return None
    if previous is not None and minute - previous.t > BRIDGE_SECONDS:
        previous = None
    histogram = rollup(previous, scrapes, minute) if scrapes else None
    p95 = histogram.p95_ms if histogram is not None else None
    bucket = (math.nan, math.nan)
    if p95 is not None:
        bounds = sorted(1000 * float(le) for le in scrapes[-1].buckets if le != "+Inf")
        low = max((b for b in bounds if b < p95), default=0.0)
        high = min((b for b in bounds if b >= p95), default=math.inf)
        bucket = (low, high)
    return {"rollup": stored[0], "p95_hist": p95, "bucket": bucket, "scrapes": len(scrapes)}


def compare(
    prom_store: Path, scrape_store: Path, service: str, envs: tuple[str, ...], minutes: list[int]
) -> bool:
    """Print both sources' minutes side by side; True when every minute agrees."""
    agree = True
    print(
        "per-minute rollups, Prometheus source | scraping collector (same traffic):\n"
        f"  {'env':<8}{'minute':<7}{'rps prom':>9}{'scrape':>8}{'diff':>7}  "
        f"{'p95 stored':>10}{'scrape':>8}  {'p95 hist':>8}{'scrape':>8}  bucket (ms)   verdict"
    )
    for env in envs:
        for minute in minutes:
            prom = _minute_values(prom_store, service, env, minute)
            scraped = _minute_values(scrape_store, service, env, minute)
            clock = time.strftime("%H:%M", time.gmtime(minute))
            if prom is None or scraped is None:
                print(f"  {env:<8}{clock:<7}  missing: prom {prom is not None}, scrape "
                      f"{scraped is not None}")  # fmt: skip
                agree = False
                continue
            a, b = prom["rollup"], scraped["rollup"]
            diff = abs(a.rps - b.rps) / b.rps if b.rps else math.inf
            low, high = scraped["bucket"]
            hist_a, hist_b = prom["p95_hist"], scraped["p95_hist"]
            hist_ok = (
                hist_a is not None and hist_b is not None and abs(hist_a - hist_b) <= high - low
            )
            stored_ok = (
                a.p95_ms is not None
                and b.p95_ms is not None
                and (abs(a.p95_ms - b.p95_ms) <= 0.01 * b.p95_ms)
            )
            ok = diff <= RPS_TOLERANCE and hist_ok and stored_ok
            agree &= ok
            print(
                f"  {env:<8}{clock:<7}{a.rps:9.3f}{b.rps:8.3f}{100 * diff:6.1f}%  "
                f"{_ms(a.p95_ms):>10}{_ms(b.p95_ms):>8}  {_ms(hist_a):>8}{_ms(hist_b):>8}  "
                f"({low:g}, {high:g}]  {'agree' if ok else 'DIFFER'}"
            )
    print(
        f"  rps: allowed {100 * RPS_TOLERANCE:g}% (the two read the counters up to an interval "
        "apart at each end of a minute); stored p95 (proxy, exact within 1%): equal within 1%; "
        "histogram p95: within its bucket's width (histogram_quantile's error)"
    )
    return agree


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

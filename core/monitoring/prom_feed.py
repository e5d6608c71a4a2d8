"""What the collector takes from Prometheus for one environment (docs/prometheus.md): the
samples scraped since the last one it stored (a catch-up in pieces, at most an hour back),
those of the release the environment served at each time, thinned to the collector's
interval, as the scrape rows the scraping collector would store, so the per-minute rollups
are computed by the same code; the minutes whose scrape failed (``up`` 0); and what to say:
a gap in the samples, several series where one was expected, no samples at all.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.config.model import PrometheusLabels
from core.monitoring.prom_source import (
    CHUNK_SECONDS,
    PromClient,
    TargetKey,
    TargetSamples,
    samples_query,
    selector,
    target_samples,
)
from store.metrics.rows import ScrapeRow

# A sample is read once this many seconds old: Prometheus stamps it with the scrape's
# start and shows it once the scrape is in, a moment later.
SETTLE_SECONDS = 1.0
# Samples further apart than this many times the usual spacing (and at least MIN_GAP
# seconds) are a gap: Prometheus did not scrape in between.
GAP_FACTOR = 3.0
MIN_GAP_SECONDS = 10.0
STEPS_KEPT = 9  # the usual spacing is the median of this many steps between samples
# No sample of a serving environment for this long: said (is Prometheus scraping it?).
SILENT_SECONDS = 30.0


@dataclass
class Cursor:
    """How far one environment is read from Prometheus (kept in its Watch)."""

    after_ms: int  # samples up to this time (ms) are read
    last_row: int | None = None  # the newest row taken (s): the next is an interval later
    last_ms: int | None = None  # the newest sample of the environment's target seen
    final: float | None = None  # Prometheus answered up to here: minutes before are whole
    steps: list[int] = field(default_factory=list)  # the last ms between two samples
    started: float = 0.0  # when this cursor began reading
    silent_since: float | None = None  # since when no sample came (None: some did)


@dataclass
class Feed:
    """One read: the rows to store, the minutes whose scrape failed, and the lines."""

    rows: list[ScrapeRow] = field(default_factory=list)
    failed: set[int] = field(default_factory=set)
    warning: str | None = None  # a state that lasts (said once until it changes)
    gaps: list[str] = field(default_factory=list)  # one line each


def start_cursor(last_stored: int | None, now: float, catch_up: int) -> Cursor:
    """Where a new watch starts: after its last stored row when there is one within
    ``catch_up`` seconds, else a minute before the minute in progress (the first judged:
    its rollup needs a row before it)."""
    current = int(now) - int(now) % 60
    floor = max(current - 60, int(now) - catch_up)
    if last_stored is not None and last_stored >= floor:
        return Cursor(after_ms=last_stored * 1000 + 999, last_row=last_stored, started=now)
    return Cursor(after_ms=floor * 1000, started=now)


def release_at(
    ledger: Any, service: str, env: str, release: str | None, since: str | None
) -> Callable[[int], str | None]:
    """The release (service, env) served at a time: ``release`` (the one it serves now)
    since the ledger recorded its state (``since``, ISO); before, the last promotion or
    rollback done by then (read once, only when a time before is asked: a catch-up across
    a promotion)."""
    try:
        start = datetime.fromisoformat(since).timestamp() if since else -math.inf
    except ValueError:
        start = -math.inf
    done: list[tuple[float, str]] | None = None

    def at(t: int) -> str | None:
        nonlocal done
        if t >= start:
            return release
        if done is None:
            done = [
                (datetime.fromisoformat(p.finished_at).timestamp(), p.release_id)
                for p in ledger.done_promotions(service, env)
                if p.finished_at
            ]
        return next((r for finished, r in done if finished <= t), release)

    return at


def read_feed(
    client: PromClient,
    labels: PrometheusLabels,
    *,
    service: str,
    env: str,
    cursor: Cursor,
    now: float,
    interval: float,
    release_at: Callable[[int], str | None],
    catch_up: int,
    serving: bool,
) -> Feed:
    """Read (service, env) from ``cursor`` to ``now`` (less SETTLE_SECONDS) and move the
    cursor on; ``release_at(t)``: the release the environment served at ``t`` (its rows are
    that release's), ``serving``: it should be scraped now (a silence is said). Raises
    core.monitoring.prom_source.PrometheusError, the cursor unmoved."""
    end = now - SETTLE_SECONDS
    start = max(cursor.after_ms / 1000, end - catch_up)
    targets: dict[TargetKey, TargetSamples] = {}
    series = selector(labels, service, env)
    piece_start = start
    while piece_start < end:
        piece_end = min(piece_start + CHUNK_SECONDS, end)
        seconds = max(1, math.ceil(piece_end - piece_start))
        result = client.query(samples_query(series, seconds), piece_end)
        for key, found in target_samples(result, labels.release).items():
            merged = targets.setdefault(key, TargetSamples())
            merged.samples.update(found.samples)
            merged.up.update(found.up)
        piece_start = piece_end
    low, high = cursor.after_ms, round(end * 1000)
    for found in targets.values():  # what an earlier read had, and what pieces overlapped
        found.samples = {ms: s for ms, s in found.samples.items() if low < ms <= high}
        found.up = {ms: v for ms, v in found.up.items() if low < ms <= high}
    feed = _feed(targets, cursor, service, env, interval, release_at)
    cursor.after_ms, cursor.final = max(cursor.after_ms, high), end
    seen = cursor.last_ms is not None and cursor.last_ms > low
    if seen or not serving:
        cursor.silent_since = None
    elif cursor.silent_since is None:  # since the last sample, or since it started looking
        last = cursor.last_ms / 1000 if cursor.last_ms is not None else cursor.started
        cursor.silent_since = max(last, cursor.started)
    silent = cursor.silent_since
    if feed.warning is None and silent is not None and end - silent >= SILENT_SECONDS:
        feed.warning = (
            f"Prometheus has no samples of {labels.service}={service}, {labels.env}={env} "
            f"since {_clock(silent)}: is it scraping the environment (the file_sd list, "
            "[monitoring.labels])? Its minutes get no rollup meanwhile"
        )
    return feed


def _feed(
    targets: dict[TargetKey, TargetSamples],
    cursor: Cursor,
    service: str,
    env: str,
    interval: float,
    release_at: Callable[[int], str | None],
) -> Feed:
    feed = Feed()
    scraped = {key: found.scrapes() for key, found in targets.items()}
    times = {t for scrapes, failed in scraped.values() for t in [s.t for s in scrapes] + failed}
    expected = {release_at(t) for t in times}
    chosen: dict[str | None, TargetKey] = {}
    for release in sorted(expected, key=str):
        keys = [k for k in targets if k.release == (release or "")]
        keys = keys or [k for k in targets if k.release == ""]
        if len(keys) > 1:
            shown = "; ".join(k.show() for k in sorted(keys))
            feed.warning = (
                f"Prometheus has {len(keys)} series of {service}/{env} release "
                f"{(release or '?')[:12]} ({shown}) where relman reads one; give them distinct "
                "labels or drop one scrape job: none of them is stored meanwhile"
            )
        elif keys:
            chosen[release] = keys[0]
    stamps: list[int] = []  # of the chosen targets, in ms: for the gaps
    for release, key in chosen.items():
        scrapes, failed = scraped[key]
        found = targets[key]
        stamps += [ms for ms in (found.up or found.samples) if release_at(ms // 1000) == release]
        feed.failed |= {t - t % 60 for t in failed if release_at(t) == release}
        for scrape in scrapes:
            if release_at(scrape.t) != release:
                continue
            if cursor.last_row is not None and scrape.t < cursor.last_row + interval:
                continue  # thinned to the collector's interval
            feed.rows.append(
                ScrapeRow(service, env, scrape.t, release, scrape.requests, scrape.errors,
                          scrape.in_progress, dict(scrape.buckets))
            )  # fmt: skip
            cursor.last_row = scrape.t
    feed.rows.sort(key=lambda row: row.t)
    _gaps(sorted(stamps), cursor, feed, f"{service}/{env}")
    return feed


def _gaps(stamps: list[int], cursor: Cursor, feed: Feed, name: str) -> None:
    """A line for each stretch without a sample (from the last one seen before too), once
    the usual spacing is known (the median of the last few steps)."""
    previous = cursor.last_ms
    for ms in stamps:
        if previous is not None and ms > previous:
            step = ms - previous
            usual = statistics.median(cursor.steps) if len(cursor.steps) >= 3 else None
            if usual is not None and step > max(GAP_FACTOR * usual, MIN_GAP_SECONDS * 1000):
                feed.gaps.append(
                    f"no samples of {name} in Prometheus from {_clock(previous / 1000)} to "
                    f"{_clock(ms / 1000)} ({step / 1000:.0f} s): minutes without one get "
                    "no rollup"
                )
            else:
                cursor.steps = [*cursor.steps[-(STEPS_KEPT - 1) :], step]
        previous = ms if previous is None else max(previous, ms)
    cursor.last_ms = previous


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(t))

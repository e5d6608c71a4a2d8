"""Recorded production series with labelled incidents, read from a local copy of the Numenta
Anomaly Benchmark's layout (``data/<group>/<file>.csv`` with ``timestamp,value`` rows and
``labels/combined_windows.json``), for benchmarks/bench_alert_quality.py ``--real DIR``.

The data is not in this repository (its licence is not ours to relicense): point ``--real``
at a checkout or a copy of the files you have. Each CSV becomes a
:class:`~benchmarks.alert_series.LabelledSeries` with its own timestamps (gaps kept) and
NAB's windows as point indexes; its unit is told from the file name.

Tuning and held-out halves (:func:`half`): a file is in the tuning half when the CRC-32 of
its key (``group/file.csv``, as NAB's label file names it) is even, held out when odd. The
split depends on the name alone, so it is fixed before any score is seen and stays the same
as files are added; rules are tuned on the first half only, and both are reported.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import statistics
import zlib
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.alert_series import LabelledSeries

UNITS = (
    ("latency", "latency"),
    ("cpu", "cpu"),
    ("request_count", "requests"),
    ("network", "network"),
    ("disk", "disk"),
    ("temperature", "temperature"),
)


TUNING = "tuning"
HELD_OUT = "held-out"


def half(name: str) -> str:
    """:data:`TUNING` or :data:`HELD_OUT` for a series named ``group/file`` (with or without
    ``.csv``): the parity of the CRC-32 of ``group/file.csv`` (module docstring)."""
    key = name if name.endswith(".csv") else f"{name}.csv"
    return TUNING if zlib.crc32(key.encode()) % 2 == 0 else HELD_OUT


def _seconds(text: str) -> int:
    return int(datetime.fromisoformat(text.strip()).replace(tzinfo=UTC).timestamp())


def _unit(name: str) -> str:
    return next((unit for key, unit in UNITS if key in name), "other")


def load(root: Path) -> list[LabelledSeries]:
    """Every CSV under ``root/data`` that ``root/labels/combined_windows.json`` labels, in
    name order. A file that does not read whole is an error naming it."""
    windows_file = root / "labels" / "combined_windows.json"
    try:
        labelled: dict[str, list[list[str]]] = json.loads(windows_file.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{windows_file}: {exc}; --real needs NAB's layout") from None
    out: list[LabelledSeries] = []
    for key in sorted(labelled):
        path = root / "data" / key
        if not path.exists():
            continue
        try:
            with path.open(newline="") as handle:
                rows = [
                    (_seconds(r["timestamp"]), float(r["value"])) for r in csv.DictReader(handle)
                ]
        except (OSError, KeyError, ValueError) as exc:
            raise SystemExit(f"{path}: not a whole timestamp,value CSV ({exc})") from None
        rows.sort()
        times = tuple(t for t, _ in rows)
        steps = [b - a for a, b in itertools.pairwise(times) if b > a]
        interval = int(statistics.median(steps)) if steps else 300
        spans = []
        for first, last in labelled[key]:
            a = bisect.bisect_left(times, _seconds(first))
            b = bisect.bisect_right(times, _seconds(last)) - 1
            if a <= b:
                spans.append((a, b))
        out.append(
            LabelledSeries(
                name=key.removesuffix(".csv"),
                family=key.split("/", 1)[0],
                unit=_unit(key),
                interval=interval,
                start=times[0],
                values=tuple(v for _, v in rows),
                anomalies=(),
                times=times,
                windows=tuple(spans),
            )
        )
    if not out:
        raise SystemExit(f"no labelled CSV found under {root / 'data'}")
    return out

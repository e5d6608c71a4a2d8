"""core/analysis reading its inputs: the access log's window (rotation, roles, malformed
lines, reading only the window) and the predictions each instance logged in it."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.analysis.access import Window, read_window
from core.analysis.predictions import window_rows
from core.targets.monitor_log import MonitorReader

T0 = 1_800_000_000.0


def line(t: float, role: str = "stable", status: int = 200, **extra: Any) -> str:
    release = {"stable": "r1", "canary": "r2", "shadow": "r2"}[role]
    record = {"t": t, "method": "POST", "path": "/classify", "status": status, "ms": 12.5,
              "upstream": "127.0.0.1:9", "bytes": 20, "role": role, "release": release,
              **extra}  # fmt: skip
    return json.dumps(record) + "\n"


def write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def read(
    log: Path, since: float, until: float, mode: Literal["canary", "shadow"] = "canary"
) -> Window:
    return read_window(log, since, until, stable="r1", canary="r2", mode=mode)


def test_the_window_only_by_role(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, [line(T0 + i, "canary" if i % 4 == 0 else "stable", 503 if i % 10 == 0 else 200)
                for i in range(100)])  # fmt: skip
    window = read(log, T0 + 20, T0 + 60)
    assert window.stable.count + window.canary.count == 40
    assert window.canary.count == 10
    assert min(window.stable.times) >= T0 + 20 and max(window.stable.times) < T0 + 60
    assert window.canary.errors == 2  # 20 and 40 (60 is past the window)
    assert window.stable.errors == 2  # 30 and 50


def test_a_window_across_the_rotation_reads_each_line_once(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log.with_name("access.log.1"), [line(T0 + i) for i in range(50)])
    write(log, [line(T0 + i) for i in range(50, 100)])
    assert read(log, T0 + 40, T0 + 60).stable.count == 20
    assert read(log, T0, T0 + 100).stable.count == 100
    assert read(log, T0 + 60, T0 + 70).stable.count == 10
    # Rotated between the two opens: access.log.1 is the file access.log was (same inode).
    os.remove(log.with_name("access.log.1"))
    os.link(log, log.with_name("access.log.1"))
    assert read(log, T0, T0 + 100).stable.count == 50


def test_the_next_measurement_reads_only_what_was_written_since(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, [line(T0 + i) for i in range(100)])
    assert read(log, T0 + 50, T0 + 1000).stable.count == 50
    more = [line(T0 + i, "canary") for i in range(100, 120)]
    with open(log, "a", encoding="utf-8") as handle:
        handle.writelines(more)
    window = read(log, T0 + 50, T0 + 1000)
    assert (window.stable.count, window.canary.count) == (50, 20)
    assert window.bytes_read == sum(len(text) for text in more)
    # The proxy rotates: what access.log held is access.log.1 now, read no further.
    os.replace(log, log.with_name("access.log.1"))
    write(log, [line(T0 + i, "canary") for i in range(120, 130)])
    window = read(log, T0 + 50, T0 + 1000)
    assert (window.stable.count, window.canary.count) == (50, 30)
    # A shorter window of the same start, and one that starts later.
    assert read(log, T0 + 50, T0 + 110).canary.count == 10
    assert read(log, T0 + 110, T0 + 1000).canary.count == 20


def test_malformed_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, [
        line(T0), "not json\n", "[1, 2]\n", json.dumps({"t": T0 + 1}) + "\n",
        json.dumps({"t": "soon", "status": 200}) + "\n",
        json.dumps({"t": T0, "status": True}) + "\n",
        "\n", line(T0 + 2, status=500, ms="slow"), line(T0 + 3, "canary", ms=-1),
        '{"t": ' + str(T0 + 4),  # being written: no newline yet
    ])  # fmt: skip
    window = read(log, T0, T0 + 10)
    assert window.malformed == 5
    assert window.stable.count == 2 and window.stable.errors == 1
    assert window.stable.ms == [12.5]  # the 5xx has no duration to count, nor a string one
    assert window.canary.count == 1 and window.canary.ms == []


def test_roles_releases_and_modes(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    old = json.dumps({"t": T0 + 1, "status": 200, "ms": 5})  # before rollouts: no role
    write(log, [
        line(T0, "stable"), old + "\n", line(T0 + 2, "canary"),
        line(T0 + 3, "shadow", agree=True), line(T0 + 4, "shadow", agree=False),
        line(T0 + 5, "shadow", agree=None), line(T0 + 6, "shadow", agree="yes"),
        # An earlier rollout's canary, and a record without a role naming the new release:
        json.dumps({"t": T0 + 7, "status": 200, "role": "canary", "release": "r0"}) + "\n",
        json.dumps({"t": T0 + 8, "status": 200, "release": "r2"}) + "\n",
    ])  # fmt: skip
    canary = read(log, T0, T0 + 10)
    assert canary.stable.count == 2 and canary.canary.count == 2
    shadow = read(log, T0, T0 + 10, mode="shadow")
    assert shadow.stable.count == 2  # a role-less record is never the shadow's
    assert shadow.canary.agree == [True, False, None, None]


def test_a_missing_log_is_an_empty_window(tmp_path: Path) -> None:
    window = read(tmp_path / "access.log", T0, T0 + 60)
    assert window.stable.count == window.canary.count == window.malformed == 0


def test_only_the_window_is_read_from_a_large_log(tmp_path: Path) -> None:
    """A day of requests before the window (about 12 MB): the window is found by bisection,
    and the lines after it are not read."""
    log = tmp_path / "access.log"
    with open(log, "w", encoding="utf-8") as handle:
        for i in range(86_400):
            handle.write(line(T0 + i, "canary" if i % 2 else "stable"))
    size = log.stat().st_size
    window = read(log, T0 + 50_000, T0 + 50_060)
    assert window.stable.count == window.canary.count == 30
    assert window.bytes_read < size / 50


def test_lines_slightly_out_of_order_are_in_their_window(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    order = [0, 1, 3, 2, 5, 4, 9, 6, 7, 8, 10, 11]
    write(log, [line(T0 + 100 * 60 + i) for i in order])
    assert read(log, T0 + 6000 + 2, T0 + 6000 + 9).stable.times == [
        T0 + 6000 + i for i in (3, 2, 5, 4, 6, 7, 8)
    ]


# Lines that are no record alone, though joined as one JSON array (as many lines are parsed
# at once) they would make three objects of three lines.
TOGETHER = ['{"t": 1800000001.0, "status": 200},{"t": 1800000002.0, "status": 200}\n',
            '{"a": [{"t": 1800000003.0}\n', '{"status": 200}]}\n']  # fmt: skip


def test_lines_that_are_records_only_together_are_each_malformed(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    write(log, [line(T0 + i / 100) for i in range(300)] + TOGETHER
               + [line(T0 + 3 + i / 100) for i in range(300)])  # fmt: skip
    window = read(log, T0, T0 + 10)
    assert window.stable.count == 600 and window.malformed == 3
    # Two records on one line, no bracket anywhere: one element too many, read line by line.
    write(log, [line(T0 + i / 100) for i in range(300)] + TOGETHER[:1])
    window = read(log, T0 - 100, T0 + 10)
    assert window.stable.count == 300 and window.malformed == 1


# ------------------------------------------------------------------------------- monitor


SCHEMA = json.dumps({"columns": [
    {"name": "x", "role": "feature", "type": "numerical"},
    {"name": "prediction", "role": "prediction", "type": "categorical"},
]}) + "\n"  # fmt: skip


def monitor_line(t: float, prediction: str, request_id: str) -> str:
    stamp = datetime.fromtimestamp(t).isoformat()  # naive local time, as BentoML writes it
    return json.dumps({"x": 1.0, "prediction": prediction, "timestamp": stamp,
                       "request_id": request_id, "trace_id": "0"}) + "\n"  # fmt: skip


def instance(tmp_path: Path, name: str, files: dict[str, list[str]]) -> Path:
    folder = tmp_path / name
    data = folder / "monitoring" / "iris" / "data"
    data.mkdir(parents=True)
    (folder / "monitoring" / "iris" / "schema").mkdir()
    (folder / "monitoring" / "iris" / "schema" / "schema.1.log").write_text(SCHEMA)
    for file, lines in files.items():
        write(data / file, lines)
    return folder


def test_outcomes_are_the_rows_without_their_features(tmp_path: Path) -> None:
    """read_outcomes (what the analysis reads) and read (what the collector reads) agree,
    row by row, on odd lines too: a second with and without its fraction, ids that are none,
    a numeric prediction, a time that is not one, lines that are records only together."""
    stamp = datetime.fromtimestamp(T0).isoformat()
    odd = [
        json.dumps({"x": 1.0, "prediction": 2.0, "timestamp": stamp, "request_id": "None"}),
        json.dumps({"x": 2.0, "prediction": "b", "timestamp": stamp + ".250000",
                    "request_id": 7}),
        json.dumps({"x": 3.0, "prediction": "c", "timestamp": stamp + "\n.250000"}),
        json.dumps({"x": 4.0, "prediction": None, "timestamp": stamp + ".5", "request_id": ""}),
        *(text.rstrip("\n") for text in TOGETHER),
    ]  # fmt: skip
    lines = [monitor_line(T0 + i / 3, "a", f"r{i}") for i in range(1200)]
    lines[700:700] = [text + "\n" for text in odd]
    folder = instance(tmp_path, "r1-9004", {"data.1.log": lines})
    monitor = folder / "monitoring" / "iris"
    rows, outcomes = MonitorReader(monitor).read(), MonitorReader(monitor).read_outcomes()
    assert [(r.t, r.request_id, r.prediction, r.target) for r in rows] == outcomes
    assert len(outcomes) == 1200 + 3
    assert [row.t for row in outcomes] == sorted(
        int(datetime.fromisoformat(json.loads(text)["timestamp"]).timestamp())
        for text in lines
        if text.startswith('{"x"') and "\\n" not in text
    )
    odd_rows = [row for row in outcomes if not (row.request_id or "").startswith("r")]
    assert odd_rows == [(int(T0), None, "2", None), (int(T0), "7", "b", None),
                        (int(T0), None, None, None)]  # fmt: skip
    reader = MonitorReader(monitor)
    reader.read_outcomes()
    assert reader.skipped == 1 + 3


def test_window_rows_across_rotated_files_and_workers(tmp_path: Path) -> None:
    folder = instance(tmp_path, "r1-9001", {
        "data.1.log.2027-01-14": [monitor_line(T0 + i, "a", f"w1-{i}") for i in range(0, 200)],
        "data.1.log": [monitor_line(T0 + i, "b", f"w1-{i}") for i in range(200, 400)]
                      + ["garbage\n"],
        "data.2.log": [monitor_line(T0 + i + 0.5, "c", f"w2-{i}") for i in range(0, 400, 2)],
    })  # fmt: skip
    rows, skipped = window_rows(folder, T0 + 150, T0 + 250)
    assert len(rows) == 100 + 50
    assert all(T0 + 150 <= row.t < T0 + 250 for row in rows)
    assert {row.prediction for row in rows} == {"a", "b", "c"}
    assert [r.t for r in rows] == sorted(r.t for r in rows)
    assert skipped == 1  # the garbage line
    rows, skipped = window_rows(folder, T0 + 350, T0 + 500)
    assert len(rows) == 50 + 25
    assert skipped == 0  # the garbage line was read (and said) by the first call


def test_window_rows_read_only_what_was_logged_since(tmp_path: Path) -> None:
    folder = instance(tmp_path, "r2-9003", {
        "data.1.log": [monitor_line(T0 + i, "a", str(i)) for i in range(100)],
    })  # fmt: skip
    assert len(window_rows(folder, T0 + 50, T0 + 1000)[0]) == 50
    data = folder / "monitoring" / "iris" / "data" / "data.1.log"
    with open(data, "a", encoding="utf-8") as handle:
        handle.write("garbage\n")
        handle.writelines(monitor_line(T0 + i, "b", str(i)) for i in range(100, 150))
    rows, skipped = window_rows(folder, T0 + 50, T0 + 1000)
    assert [row.request_id for row in rows] == [str(i) for i in range(50, 150)]
    assert skipped == 1
    # The window moving on drops what is before it; asking for earlier reads it again.
    assert len(window_rows(folder, T0 + 140, T0 + 1000)[0]) == 10
    assert len(window_rows(folder, T0, T0 + 1000)[0]) == 150


def test_window_rows_of_a_large_log_and_of_no_log(tmp_path: Path) -> None:
    """The reader starts near the window: the damaged lines of the morning are not read."""
    folder = instance(tmp_path, "r1-9002", {
        "data.1.log": ["damaged\n"] * 1000
                      + [monitor_line(T0 + i, "a", str(i)) for i in range(30_000)],
    })  # fmt: skip
    rows, skipped = window_rows(folder, T0 + 29_000, T0 + 29_010)
    assert [row.request_id for row in rows] == [str(i) for i in range(29_000, 30_000)][:10]
    assert skipped == 0
    assert window_rows(folder, T0, T0 + 10)[1] == 1000  # read again from the window's start
    assert window_rows(tmp_path / "nothing-here", T0, T0 + 10) == ([], 0)

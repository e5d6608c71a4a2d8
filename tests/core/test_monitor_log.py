"""Tailing BentoML monitor logs: whole lines, rotation, truncation, garbage, schema, state."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from core.targets.monitor_log import (
    CONFIG_OVERRIDES_VARIABLE,
    MonitorReader,
    MonitorRow,
    monitor_environment,
    monitor_folders,
)

# Lines as BentoML 1.4.40's default monitor wrote them for the demo's iris service.
SCHEMA = (
    '{"meta_data": {"bento_name": "iris_classifier", "bento_version": "dcbdb3ff9ac7"}, '
    '"columns": [{"name": "sepal_length", "role": "feature", "type": "numerical"}, '
    '{"name": "sepal_width", "role": "feature", "type": "numerical"}, '
    '{"name": "petal_length", "role": "feature", "type": "numerical"}, '
    '{"name": "petal_width", "role": "feature", "type": "numerical"}, '
    '{"name": "prediction", "role": "prediction", "type": "categorical"}]}\n'
)
REAL_ROW = (
    '{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2, '
    '"prediction": "setosa", "timestamp": "2026-11-27T21:27:28.501268", '
    '"request_id": "9860470580762762695", "trace_id": "237591381069804788124966612620801201480"}\n'
)
T0 = 1_795_814_848  # 2026-11-27T21:27:28Z


def row(i: int, *, prediction: str = "setosa", seconds: int = 0) -> str:
    record = {
        "sepal_length": 5.0 + i / 10,
        "sepal_width": 3.0,
        "petal_length": 1.4,
        "petal_width": 0.2,
        "prediction": prediction,
        "timestamp": f"2026-11-27T21:27:{28 + seconds:02d}.5",
        "request_id": str(1000 + i),
        "trace_id": "1",
    }
    return json.dumps(record) + "\n"


@pytest.fixture
def monitor(tmp_path: Path) -> Path:
    folder = tmp_path / "monitoring" / "iris"
    (folder / "data").mkdir(parents=True)
    (folder / "schema").mkdir()
    (folder / "schema" / "schema.1.log").write_text(SCHEMA)
    return folder


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def reader(folder: Path, state: dict[str, Any] | None = None, **kw: Any) -> MonitorReader:
    return MonitorReader(folder, state, naive_tz=UTC, **kw)


def ids(rows: list[MonitorRow]) -> list[str | None]:
    return [r.request_id for r in rows]


def test_a_real_bentoml_row_with_its_schema(monitor: Path) -> None:
    (monitor / "data" / "data.1.log").write_text(REAL_ROW)
    rows = reader(monitor).read()
    assert rows == [
        MonitorRow(
            t=T0,
            request_id="9860470580762762695",
            features={
                "sepal_length": 5.1,
                "sepal_width": 3.5,
                "petal_length": 1.4,
                "petal_width": 0.2,
            },
            prediction="setosa",
            target=None,
        )
    ]


def test_partial_last_line_waits_for_its_newline(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    line = row(2)
    data.write_text(row(1) + line[:30])
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001"]
    assert tail.read() == []
    append(data, line[30:-1])  # still no newline
    assert tail.read() == []
    append(data, "\n" + row(3))
    assert ids(tail.read()) == ["1002", "1003"]
    state = tail.state()["data.1.log"]
    assert (state["inode"], state["offset"]) == (data.stat().st_ino, data.stat().st_size)
    assert state["head"] == f"{len(row(1))}:" + state["head"].split(":")[1]  # the first line
    assert tail.problems == []


def test_rotation_finishes_the_renamed_file_then_reads_the_new_one(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1))
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001"]
    append(data, row(2))  # written after our last pass, just before midnight
    data.rename(monitor / "data" / "data.1.log.2026-11-27")
    data.write_text(row(3))  # TimedRotatingFileHandler's new file
    assert ids(tail.read()) == ["1002", "1003"]
    assert tail.read() == []
    assert set(tail.state()) == {"data.1.log", "data.1.log.2026-11-27"}


def test_rotation_while_the_collector_was_down_is_followed_from_the_saved_state(
    monitor: Path,
) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1))
    first = reader(monitor)
    first.read()
    saved = json.loads(json.dumps(first.state()))  # as persisted by a collector
    append(data, row(2))
    data.rename(monitor / "data" / "data.1.log.2026-11-27")
    data.write_text(row(3) + row(4))
    assert ids(reader(monitor, saved).read()) == ["1002", "1003", "1004"]


def test_a_truncated_file_is_read_again_from_the_start(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    tail = reader(monitor)
    assert len(tail.read()) == 2
    data.write_text(row(3))  # same inode, shorter than what we read
    assert ids(tail.read()) == ["1003"]
    assert tail.problems == ["data/data.1.log: shorter than already read, read again"]


def test_a_replaced_file_with_a_new_inode_is_read_from_the_start(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2) + row(3))
    tail = reader(monitor)
    tail.read()
    replacement = monitor / "data" / "new"
    replacement.write_text(row(4) + row(5) + row(6) + row(7))  # longer than the old one
    os.replace(replacement, data)
    assert ids(tail.read()) == ["1004", "1005", "1006", "1007"]


def test_a_file_truncated_and_written_past_the_offset_is_read_from_the_start(
    monitor: Path,
) -> None:
    # logrotate's copytruncate: the same inode, and by the next pass longer than before.
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001", "1002"]
    with data.open("r+") as handle:
        handle.truncate(0)
        handle.write(row(3) + row(4) + row(5))
    assert ids(tail.read()) == ["1003", "1004", "1005"]
    assert tail.problems == [
        "data/data.1.log: rewritten since it was read (truncated or replaced), read again from "
        "the start"
    ]
    assert tail.read() == []


def _between_listing_and_reading(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    """Run ``action`` once, after the reader listed the files and before it opens them."""
    listed = MonitorReader._data_files
    done: list[bool] = []

    def data_files(self: MonitorReader) -> list[tuple[str, os.stat_result]]:
        found = listed(self)
        if not done:
            done.append(True)
            action()
        return found

    monkeypatch.setattr(MonitorReader, "_data_files", data_files)


def test_rotation_between_listing_and_reading_loses_nothing(
    monitor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1))
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001"]
    append(data, row(2))

    def rotate() -> None:
        data.rename(monitor / "data" / "data.1.log.2026-11-27")
        data.write_text(row(3))

    _between_listing_and_reading(monkeypatch, rotate)
    first = tail.read()  # listed the old inode under the old name, met the new file
    assert ids(first + tail.read()) == ["1002", "1003"]
    assert tail.read() == []


def test_truncation_between_listing_and_reading_loses_nothing(
    monitor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    tail = reader(monitor)
    assert len(tail.read()) == 2
    append(data, row(3))

    def truncate() -> None:  # after the listing saw the file grow
        with data.open("r+") as handle:
            handle.truncate(0)
            handle.write(row(4))

    _between_listing_and_reading(monkeypatch, truncate)
    first = tail.read()  # row 3 went with the truncation: nobody can read it any more
    append(data, row(5) + row(6))  # by the next pass the file is longer than the old offset
    assert ids(first + tail.read()) == ["1004", "1005", "1006"]


def test_a_partial_line_at_rotation_is_finished_in_the_rotated_file(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    line = row(2)
    data.write_text(row(1) + line[:40])
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001"]
    rotated = monitor / "data" / "data.1.log.2026-11-27"
    data.rename(rotated)
    append(rotated, line[40:])  # the writer still holds the old file: it ends the line there
    data.write_text(row(3))
    assert ids(tail.read()) == ["1002", "1003"]
    assert tail.problems == [] and tail.skipped == 0


def test_a_new_file_on_a_reused_inode_is_read_from_the_start(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    tail = reader(monitor)
    tail.read()
    saved = tail.state()["data.1.log"]
    # The file deleted, and another one given its inode under a rotated name.
    data.unlink()
    other = monitor / "data" / "data.1.log.2026-11-27"
    other.write_text(row(3) + row(4) + row(5))
    state = {
        "data.1.log": saved,
        "gone": {"inode": other.stat().st_ino, **{k: v for k, v in saved.items() if k != "inode"}},
    }
    assert ids(reader(monitor, state).read()) == ["1003", "1004", "1005"]


def test_state_saved_by_an_older_relman_without_heads_still_resumes(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    older = {"data.1.log": {"inode": data.stat().st_ino, "offset": len(row(1) + row(2))}}
    append(data, row(3))
    tail = reader(monitor, older)
    assert ids(tail.read()) == ["1003"]
    assert "head" in tail.state()["data.1.log"]


def test_garbage_lines_are_skipped_and_counted(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    garbage = [
        "not json at all\n",
        "[1, 2]\n",
        '{"sepal_length": 1.0}\n',  # no timestamp
        '{"timestamp": "yesterday"}\n',
        b"\xff\xfe{}\n".decode("latin-1"),
        "\n",  # blank: not counted
    ]
    data.write_text(row(1) + "".join(garbage) + row(2))
    tail = reader(monitor)
    assert ids(tail.read()) == ["1001", "1002"]
    assert tail.problems == ["data/data.1.log: 5 unparsable line(s) skipped"]
    assert tail.skipped == 5
    append(data, "{broken\n")
    assert tail.read() == []
    assert tail.skipped == 6


def test_roles_come_from_the_newest_schema(monitor: Path) -> None:
    schema = {
        "meta_data": {},
        "columns": [
            {"name": "x", "role": "feature", "type": "numerical"},
            {"name": "colour", "role": "feature", "type": "categorical"},
            {"name": "y", "role": "prediction", "type": "categorical"},
            {"name": "truth", "role": "target", "type": "categorical"},
        ],
    }
    newer = monitor / "schema" / "schema.2.log"
    newer.write_text(json.dumps(schema) + "\n")
    old = time.time() - 100
    os.utime(monitor / "schema" / "schema.1.log", (old, old))
    record = {
        "x": 2,
        "colour": "red",
        "sepal_length": 9.0,  # not a feature of this schema
        "y": 1.0,
        "truth": 0,
        "timestamp": "2026-11-27T21:27:28+01:00",
        "request_id": "7",
    }
    (monitor / "data" / "data.2.log").write_text(json.dumps(record) + "\n")
    tail = reader(monitor)
    [got] = tail.read()
    assert got == MonitorRow(T0 - 3600, "7", {"x": 2.0}, "1", "0")
    assert tail.schema.features == ("x", "colour")
    assert tail.schema.targets == ("truth",)


def test_without_a_schema_roles_are_guessed_and_said_so(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.1.log").write_text(row(1))
    tail = reader(tmp_path)
    [got] = tail.read()
    assert got.prediction == "setosa"
    assert set(got.features) == {"sepal_length", "sepal_width", "petal_length", "petal_width"}
    assert tail.problems == ["no schema file: roles guessed from the column names"]


def test_state_round_trip_reads_nothing_twice(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + row(2))
    first = reader(monitor)
    assert len(first.read()) == 2
    saved = json.loads(json.dumps(first.state()))
    second = reader(monitor, saved)
    assert second.state() == saved
    assert second.read() == []
    append(data, row(3))
    assert ids(second.read()) == ["1003"]


def test_damaged_state_entries_read_the_file_again(monitor: Path) -> None:
    (monitor / "data" / "data.1.log").write_text(row(1))
    tail = reader(monitor, {"data.1.log": {"inode": "x"}, "other": "junk"})
    assert ids(tail.read()) == ["1001"]


def test_several_workers_and_rows_come_back_by_time(monitor: Path) -> None:
    (monitor / "data" / "data.2.log").write_text(row(1, seconds=3) + row(2, seconds=5))
    (monitor / "data" / "data.1.log").write_text(row(3, seconds=1) + row(4, seconds=4))
    (monitor / "data" / "notes.txt").write_text("not a data file\n")
    rows = reader(monitor).read()
    assert ids(rows) == ["1003", "1001", "1004", "1002"]
    assert [r.t - T0 for r in rows] == [1, 3, 4, 5]


def test_naive_timestamps_are_local_time_by_default(
    monitor: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (monitor / "data" / "data.1.log").write_text(REAL_ROW)
    monkeypatch.setenv("TZ", "Etc/GMT-2")  # POSIX sign: UTC+2
    time.tzset()
    try:
        [got] = MonitorReader(monitor).read()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert got.t == T0 - 2 * 3600


def test_a_small_budget_spreads_a_backlog_over_passes(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text("".join(row(i) for i in range(10)))
    tail = reader(monitor, read_budget=3 * len(row(0)) + 5)
    seen: list[str | None] = []
    for _ in range(5):
        seen += ids(tail.read())
    assert seen == [str(1000 + i) for i in range(10)]
    assert tail.problems == []


def test_a_line_longer_than_the_budget_is_skipped(monitor: Path) -> None:
    data = monitor / "data" / "data.1.log"
    data.write_text(row(1) + '{"blob": "' + "x" * 5000 + '"}\n' + row(2))
    tail = reader(monitor, read_budget=1000)
    got: list[str | None] = []
    for _ in range(3):
        got += ids(tail.read())
    assert got == ["1001", "1002"]
    assert tail.skipped == 1


def test_missing_folder_is_no_rows(tmp_path: Path) -> None:
    tail = reader(tmp_path / "nowhere")
    assert tail.read() == [] and tail.state() == {} and tail.problems == []


def test_monitor_folders_lists_monitors(monitor: Path) -> None:
    (monitor.parent / "stray").mkdir()
    assert monitor_folders(monitor.parent) == {"iris": monitor}
    assert monitor_folders(monitor / "nowhere") == {}


def test_monitor_environment_merges_into_an_existing_override(tmp_path: Path) -> None:
    existing = {"services": {"workers": 2, "monitoring": {"enabled": True}}}
    env = monitor_environment(
        tmp_path / "a b", {CONFIG_OVERRIDES_VARIABLE: json.dumps(existing), "PATH": "/bin"}
    )
    assert list(env) == [CONFIG_OVERRIDES_VARIABLE]
    assert json.loads(env[CONFIG_OVERRIDES_VARIABLE]) == {
        "services": {
            "workers": 2,
            "monitoring": {"enabled": True, "options": {"log_path": str(tmp_path / "a b")}},
        }
    }
    fresh = monitor_environment(Path("rel"), {CONFIG_OVERRIDES_VARIABLE: "not json"})
    path = json.loads(fresh[CONFIG_OVERRIDES_VARIABLE])["services"]["monitoring"]["options"]
    assert Path(path["log_path"]).is_absolute()


@pytest.fixture(autouse=True)
def _restore_tz() -> Iterator[None]:
    yield
    time.tzset()

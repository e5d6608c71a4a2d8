"""core/pipelines/data_changes.py: DVC-tracked data compared with what DVC recorded, cheaply.

The repository is the ``dvc_repo`` fixture: data/iris.csv (2 rows) tracked by a .dvc file, a
``train`` stage reading it and writing models/model.pkl, the directory data/features and
metrics.json.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config.model import Project, parse_config
from core.pipelines.data_changes import DataChange, DataWatch, watched_data
from tests.core.conftest import DvcRepo

TOML = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["clf"]
data = ["iris"]
"""

NEW_ROWS = "4.9,1.5,setosa\n7.7,6.7,virginica\n"


def _project(repo: DvcRepo) -> Project:
    path = repo.root / "relman.toml"
    return Project(repo.root, path, parse_config(TOML, path))


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _recorded(repo: DvcRepo) -> str:
    text = (repo.root / "data" / "iris.csv.dvc").read_text()
    return next(line.split(":")[1].strip() for line in text.splitlines() if "md5:" in line)


def test_the_watched_data_is_what_dvc_tracks_upstream_of_the_model(dvc_repo: DvcRepo) -> None:
    """src/train.py is a dependency too, but git tracks it: code, which a commit brings."""
    assert watched_data(_project(dvc_repo), "iris") == ["data/iris.csv"]


def test_nothing_changed_reports_nothing_files_and_directories(dvc_repo: DvcRepo) -> None:
    """No change, also for a directory: its md5 is computed exactly as DVC records it."""
    watch = DataWatch(dvc_repo.root, ["data/iris.csv", "data/features", "models/model.pkl"])
    assert watch.poll() == []
    assert watch.files_hashed == 4  # iris.csv, model.pkl and the two files of data/features


def test_new_rows_are_one_change_with_both_md5s_and_row_counts(dvc_repo: DvcRepo) -> None:
    watch = DataWatch(dvc_repo.root, ["data/iris.csv"])
    assert watch.poll() == []
    before = watch.stat_key("data/iris.csv")
    recorded = _recorded(dvc_repo)
    with open(dvc_repo.root / "data" / "iris.csv", "a") as handle:
        handle.write(NEW_ROWS)
    current = _md5(dvc_repo.root / "data" / "iris.csv")

    changes = watch.poll()

    assert changes == [DataChange("data/iris.csv", recorded, current, 2, 4)]
    assert changes[0].reason() == (
        f"data/iris.csv changed: md5 {recorded[:8]} -> {current[:8]}, 2 -> 4 rows"
    )
    assert watch.stat_key("data/iris.csv") != before


def test_an_idle_poll_hashes_nothing(dvc_repo: DvcRepo) -> None:
    watch = DataWatch(dvc_repo.root, ["data/iris.csv", "data/features"])
    with open(dvc_repo.root / "data" / "iris.csv", "a") as handle:
        handle.write(NEW_ROWS)
    first = watch.poll()
    hashed = watch.files_hashed
    key = watch.stat_key("data/iris.csv")

    assert watch.poll() == first
    assert watch.poll() == first
    assert watch.files_hashed == hashed  # nothing rehashed: the stats did not change
    assert watch.stat_key("data/iris.csv") == key  # settled: nothing wrote to it since


def test_a_removed_file_has_no_current_md5(dvc_repo: DvcRepo) -> None:
    watch = DataWatch(dvc_repo.root, ["data/iris.csv"])
    (dvc_repo.root / "data" / "iris.csv").unlink()

    [change] = watch.poll()

    assert change.current_md5 is None and change.recorded_md5 == _recorded(dvc_repo)
    assert change.current_rows is None
    assert change.reason() == f"data/iris.csv is gone: md5 {_recorded(dvc_repo)[:8]} recorded"
    assert watch.stat_key("data/iris.csv") is None


def test_a_changed_directory_reports_the_md5_dvc_then_records(dvc_repo: DvcRepo) -> None:
    watch = DataWatch(dvc_repo.root, ["data/features"])
    (dvc_repo.root / "data" / "features" / "y.txt").write_text("y\ny\n")
    (dvc_repo.root / "data" / "features" / "z.txt").write_text("a new file\n")

    [change] = watch.poll()
    assert change.recorded_md5 == dvc_repo.lock_out("data/features")["md5"]
    assert change.current_md5 is not None and change.current_md5.endswith(".dir")
    assert change.recorded_rows is None and change.current_rows is None

    dvc_repo.dvc("commit", "train", force=True)  # DVC hashes the directory and records it

    assert dvc_repo.lock_out("data/features")["md5"] == change.current_md5
    assert watch.poll() == []


def test_the_change_is_gone_once_reproduced_and_committed(dvc_repo: DvcRepo) -> None:
    watch = DataWatch(dvc_repo.root, watched_data(_project(dvc_repo), "iris"))
    with open(dvc_repo.root / "data" / "iris.csv", "a") as handle:
        handle.write(NEW_ROWS)
    assert [change.path for change in watch.poll()] == ["data/iris.csv"]

    dvc_repo.dvc("reproduce")
    dvc_repo.commit("retrain on the new rows")

    assert watch.poll() == []
    assert _recorded(dvc_repo) == _md5(dvc_repo.root / "data" / "iris.csv")


def test_recorded_rows_are_unknown_without_the_cached_copy(dvc_repo: DvcRepo) -> None:
    """The recorded version's rows come from the local DVC cache; without it, only now's."""
    recorded = _recorded(dvc_repo)
    dvc_repo.cache_file(recorded).unlink()
    with open(dvc_repo.root / "data" / "iris.csv", "a") as handle:
        handle.write(NEW_ROWS)

    [change] = DataWatch(dvc_repo.root, ["data/iris.csv"]).poll()

    assert (change.recorded_rows, change.current_rows) == (None, 4)
    assert change.reason().endswith(", 4 rows now")


def test_a_dependency_record_stands_in_for_a_missing_dvc_file(dvc_repo: DvcRepo) -> None:
    """Without data/iris.csv.dvc, dvc.lock still records what ``train`` read."""
    (dvc_repo.root / "data" / "iris.csv.dvc").unlink()
    watch = DataWatch(dvc_repo.root, ["data/iris.csv"])
    assert watch.poll() == []

    with open(dvc_repo.root / "data" / "iris.csv", "a") as handle:
        handle.write(NEW_ROWS)

    [change] = watch.poll()
    deps = dvc_repo.lock()["stages"]["train"]["deps"]
    assert change.recorded_md5 == next(d["md5"] for d in deps if d["path"] == "data/iris.csv")


def test_a_path_nothing_records_is_reported(dvc_repo: DvcRepo) -> None:
    """A record removed (dvc.lock deleted): the content has nothing to match."""
    (dvc_repo.root / "dvc.lock").unlink()
    path = "models/model.pkl"

    [change] = DataWatch(dvc_repo.root, [path]).poll()

    assert change.recorded_md5 is None and change.current_md5 == _md5(dvc_repo.root / path)
    assert change.reason() == f"{path} is not recorded by DVC yet: md5 {change.current_md5[:8]}"


# ------------------------------------------------------------- with file notifications


def _until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for ``condition`` (checked every 20 ms): a notification arrives on its own time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:g} s"
        time.sleep(0.02)


def test_a_notified_watch_walks_a_folder_only_when_something_under_it_changed(
    dvc_repo: DvcRepo,
) -> None:
    watch = DataWatch(dvc_repo.root, ["data/iris.csv", "data/features"], notify=True)
    try:
        assert "file notifications for 1 folder" in watch.notifications
        assert watch.poll() == []
        assert watch.walks == 1
        feed = watch._feed
        assert feed is not None
        features = dvc_repo.root / "data" / "features"

        # Writes that change nothing, until one is notified: the kernel's watch is in place.
        def notified() -> bool:
            (features / "x.txt").write_text((features / "x.txt").read_text())
            return "data/features" in feed._marked

        _until(notified, "notification of a write")
        feed._settled_at = 0.0
        watch.poll()
        walks = watch.walks

        for _ in range(5):  # nothing written: the folder is not walked
            assert watch.poll() == []
        assert watch.walks == walks

        (features / "z.txt").write_text("a new file\n")
        changes: list[DataChange] = []

        def seen() -> bool:
            changes[:] = watch.poll()
            return bool(changes)

        _until(seen, "change of data/features")
        assert [c.path for c in changes] == ["data/features"]
        assert watch.walks > walks
        # A single file is one stat a poll, notified or not.
        (dvc_repo.root / "data" / "iris.csv").write_text(
            (dvc_repo.root / "data" / "iris.csv").read_text() + NEW_ROWS
        )
        assert sorted(c.path for c in watch.poll()) == ["data/features", "data/iris.csv"]
    finally:
        watch.close()


def test_without_notifications_every_poll_walks_as_before(
    dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watchfiles cannot be imported (or the kernel refuses watches): the feed says so and
    every folder is walked at every poll; nothing is missed."""
    import builtins

    real_import = builtins.__import__

    def no_watchfiles(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "watchfiles":
            raise ImportError("no watchfiles here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_watchfiles)
    watch = DataWatch(dvc_repo.root, ["data/features"], notify=True)
    try:
        _until(lambda: watch._feed is not None and watch._feed.failed is not None, "failure")
        assert "watchfiles is not installed" in watch.notifications
        for count in range(1, 4):
            assert watch.poll() == []
            assert watch.walks == count
        (dvc_repo.root / "data" / "features" / "z.txt").write_text("a new file\n")
        assert [c.path for c in watch.poll()] == ["data/features"]
    finally:
        watch.close()

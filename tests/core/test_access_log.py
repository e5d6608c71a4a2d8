"""core/targets/access_log.py: JSON lines, rotated by size at a flush."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.targets.access_log import AccessLog


def test_lines_are_json_and_the_file_rotates_past_its_size(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(path, max_bytes=1000)
    for n in range(50):  # 27 bytes each: past 1000 bytes
        log.write({"n": n, "path": "/predict"})
    log.flush()
    old = path.with_name("access.log.1")
    assert [json.loads(line)["n"] for line in old.read_text().splitlines()] == list(range(50))
    assert path.read_text() == ""
    log.write({"n": 50})
    log.flush()
    log.close()
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [50]


def test_a_small_file_is_not_rotated(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(path, max_bytes=1000)
    log.write({"n": 1})
    log.flush()
    log.close()
    assert not path.with_name("access.log.1").exists()
    assert json.loads(path.read_text()) == {"n": 1}


def test_a_rotation_that_fails_loses_nothing_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(path, max_bytes=5)

    def refuse(*_args: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("core.targets.access_log.os.replace", refuse)
    log.write({"n": 1})
    assert log.flush() == f"cannot rotate {path}: Permission denied; it keeps growing"
    log.write({"n": 2})  # still open: nothing lost
    log.flush()
    log.close()
    assert [json.loads(line)["n"] for line in path.read_text().splitlines()] == [1, 2]

"""core/access_log.py: JSON lines, rotated by size at a flush."""

from __future__ import annotations

import json
from pathlib import Path

from core.access_log import AccessLog


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

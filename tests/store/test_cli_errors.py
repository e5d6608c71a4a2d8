"""The store's errors through the real command line: one line on stderr (or the JSON error
document) and the exit code each had before the store got its own error family."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tui.cli import run

CONFIG = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["shop-model"]

[environments.prod]
port = 3102
"""

CORRUPT = (
    ".relman/ledger.db: not a readable relman database (not an SQLite file); move it aside "
    "(e.g. rename it to ledger.db.broken) to start a new one, or restore it from a backup"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "relman.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)  # the message names the file as the user would type it
    return tmp_path


def _corrupt_ledger(project: Path) -> bytes:
    path = project / ".relman" / "ledger.db"
    path.parent.mkdir()
    garbage = os.urandom(4096)
    path.write_bytes(garbage)
    return garbage


def test_a_corrupt_ledger_is_one_line_and_exit_3(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = _corrupt_ledger(project)
    code = run(["--project", str(project), "audit", "verify"])
    captured = capsys.readouterr()
    assert code == 3
    assert captured.err == f"relman: {CORRUPT}\n"
    assert (project / ".relman" / "ledger.db").read_bytes() == garbage  # left as it was


def test_a_corrupt_ledger_in_json(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _corrupt_ledger(project)
    code = run(["--json", "--project", str(project), "history"])
    document = json.loads(capsys.readouterr().out)
    assert code == 3
    assert document == {"ok": False, "error": CORRUPT, "exit_code": 3}


def test_a_request_the_ledger_refuses_is_exit_2(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["--project", str(project), "history", "--before", "bogus"])
    assert code == 2
    assert capsys.readouterr().err == (
        "relman: history cursor 'bogus' is not one relman gave; start from page 1\n"
    )
    assert not (project / ".relman").exists()  # a read never creates the ledger

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

import pytest

from core.ledger.identity import current_user


def test_relman_user_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELMAN_USER", "alice")
    assert current_user(tmp_path) == "alice"


def test_git_email_of_the_repository(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "config", "user.email", "bob@x.org"], check=True)
    assert current_user(tmp_path) == "bob@x.org"


def test_os_user_when_nothing_else(tmp_path: Path) -> None:
    # the suite's git config is empty and RELMAN_USER unset (tests/conftest.py)
    assert current_user(tmp_path) == getpass.getuser()

"""A read-only ledger answers every query and refuses every change, without writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import release_error
from store import Ledger
from store.errors import ReadOnlyRefused
from tests.store import add_release


def test_read_only_refuses_changes_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as writer:
        add_release(writer, "aaaaaaaaaaaa")
        run = writer.start_run("test", release_id="aaaaaaaaaaaa")
    before = path.read_bytes()
    with Ledger.open(path, readonly=True) as ledger:
        assert ledger.get_release("aaa").id == "aaaaaaaaaaaa"
        attempts = [
            lambda: add_release(ledger, "bbbbbbbbbbbb"),
            lambda: ledger.assign_version("aaaaaaaaaaaa", "v1.0.0"),
            lambda: ledger.start_run("test"),
            lambda: ledger.finish_run(run.id, "passed"),
            lambda: ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa"),
            lambda: ledger.approve("aaaaaaaaaaaa", "prod"),
            lambda: ledger.set_environment_state("fraud", "prod", "down"),
            lambda: ledger.log_event("x", outcome="ok"),
        ]
        for attempt in attempts:
            with pytest.raises(ReadOnlyRefused, match="opened read-only") as caught:
                attempt()
            assert release_error(caught.value).exit_code == 1
    assert path.read_bytes() == before


def test_read_only_sees_a_writer_s_new_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as writer, Ledger.open(path, readonly=True) as reader:
        assert reader.releases("fraud") == []
        add_release(writer, "aaaaaaaaaaaa")
        assert [r.id for r in reader.releases("fraud")] == ["aaaaaaaaaaaa"]

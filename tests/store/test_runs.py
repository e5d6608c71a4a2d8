"""Runs, their steps and their test results."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import LedgerConflict, TestResultRecord
from store.ledger.records import RunStatus
from tests.store import FakeClock, add_release, open_ledger


def test_steps_update_in_place(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        run = ledger.start_run("release", service="fraud")
        ledger.record_step(run.id, "verify", "running")
        ledger.record_step(run.id, "test", "running")
        ledger.record_step(run.id, "verify", "passed", seconds=0.2, detail="clean\n tree")
        assert [(s.seq, s.name, s.status, s.detail) for s in ledger.steps(run.id)] == [
            (1, "verify", "passed", "clean tree"),
            (2, "test", "running", ""),
        ]


def test_finish_run_once(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        run = ledger.start_run("gate", service="fraud", env="prod")
        assert run.status == "running" and run.finished_at is None
        done = ledger.finish_run(run.id, "interrupted", reason="ctrl-c")
        assert ledger.finish_run(run.id, "interrupted") == done
        with pytest.raises(LedgerConflict, match="already finished as interrupted"):
            ledger.finish_run(run.id, "passed")


def test_test_results_come_from_the_latest_run_per_suite(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        first = ledger.start_run("test", release_id="aaaaaaaaaaaa")
        ledger.record_test_results(
            first.id,
            [
                TestResultRecord("unit", "t::a", "failed", message="boom"),
                TestResultRecord("model", "m::acc", "passed"),
            ],
        )
        second = ledger.start_run("test", release_id="aaaaaaaaaaaa")
        ledger.record_test_results(second.id, [TestResultRecord("unit", "t::a", "passed")])
        results = ledger.test_results("aaaaaaaaaaaa")
        assert [(r.suite, r.outcome, r.run_id) for r in results] == [
            ("model", "passed", first.id),
            ("unit", "passed", second.id),
        ]
        assert [r.suite for r in ledger.test_results("aaaaaaaaaaaa", suite="model")] == ["model"]
        assert ledger.audit_events(limit=1)[0].details["outcomes"] == {"passed": 1}


def test_latest_run_filters(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        ids = {}
        outcomes: list[tuple[str, RunStatus]] = [
            ("dev", "passed"),
            ("prod", "failed"),
            ("dev", "failed"),
        ]
        for env, status in outcomes:
            clock.advance(seconds=1)
            run = ledger.start_run("gate", env=env, service="fraud", release_id="aaaaaaaaaaaa")
            ledger.finish_run(run.id, status)
            ids[(env, status)] = run.id
        latest = ledger.latest_run("gate", "aaaaaaaaaaaa")
        assert latest is not None and latest.id == ids[("dev", "failed")]
        prod = ledger.latest_run("gate", "aaaaaaaaaaaa", env="prod")
        assert prod is not None and prod.id == ids[("prod", "failed")]
        passed = ledger.latest_run("gate", service="fraud", status="passed")
        assert passed is not None and passed.id == ids[("dev", "passed")]
        assert ledger.latest_run("build", "aaaaaaaaaaaa") is None

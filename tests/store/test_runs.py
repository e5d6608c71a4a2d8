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


def test_a_run_names_the_process_that_holds_it(tmp_path: Path) -> None:
    """The next relman tells a run left by a killed one from a live one by its holder."""
    import os
    import socket

    with open_ledger(tmp_path) as ledger:
        run = ledger.start_run("test", service="fraud", details={"suites": ["unit"]})
        assert run.details == {"suites": ["unit"], "pid": os.getpid(), "host": socket.gethostname()}
        # A caller that knows better (a process started for the run) says so.
        other = ledger.start_run("build", details={"pid": 4121, "host": "ci-7"})
        assert (other.details["pid"], other.details["host"]) == (4121, "ci-7")
        assert ledger.get_run(run.id).details == run.details  # as stored


def test_open_runs_answers_as_running_runs_does(tmp_path: Path) -> None:
    from store.ledger.snapshot import open_runs

    path = tmp_path / ".relman" / "ledger.db"
    assert open_runs(path) == [] and not path.exists()  # never creates the ledger
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.2.0")
        first = ledger.start_run("test", service="fraud", release_id="aaaaaaaaaaaa")
        done = ledger.start_run("build", service="fraud")
        ledger.finish_run(done.id, "passed")
        last = ledger.start_run("promote", service="fraud", env="dev")
        expected = ledger.running_runs()
    assert [run.id for run in expected] == [first.id, last.id]
    assert open_runs(path) == [(expected[0], "v1.2.0"), (expected[1], None)]


def test_a_reason_that_starts_with_the_status_is_not_said_twice(tmp_path: Path) -> None:
    from store.ledger.records import run_summary

    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.2.0")
        run = ledger.start_run("test", service="fraud", release_id="aaaaaaaaaaaa")
        assert run_summary(run, "v1.2.0") == "test run #1 of aaaaaaaaaaaa (v1.2.0): running"
        why = "interrupted: relman (pid 4121) ended without finishing"
        closed = ledger.finish_run(run.id, "interrupted", reason=why)
        assert run_summary(closed, "v1.2.0") == f"test run #1 of aaaaaaaaaaaa (v1.2.0): {why}"
        [entry] = [e for e in ledger.history().entries if e.kind == "run"]
        assert entry.summary == run_summary(closed, "v1.2.0")
        gate = ledger.start_run("gate", env="dev")
        failed = ledger.finish_run(gate.id, "failed", reason="suite unit failed")
        assert run_summary(failed, None) == "gate run #2 in dev: failed (suite unit failed)"

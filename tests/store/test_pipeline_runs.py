"""Pipeline runs in the ledger: recorded step by step, one open run per pipeline and service,
a takeover only from the holder the taker saw, and what the audit log keeps of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import Ledger, LedgerConflict
from store.errors import InvalidRequest, RecordNotFound
from tests.store import open_ledger

STEPS = [("repro", "repro"), ("commit", "commit"), ("verify", "verify"), ("deploy:dev", "deploy")]


def _begin(ledger: Ledger, pid: int | None = 4121) -> int:
    run = ledger.begin_pipeline_run(
        "retrain",
        "iris",
        trigger="data",
        reason="data/iris.csv changed",
        steps=STEPS,
        pid=pid,
        host="here",
    )
    return run.id


def test_a_run_is_recorded_step_by_step(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        run_id = _begin(ledger)
        run = ledger.get_pipeline_run(run_id)
        assert run.status == "running" and run.open and run.trigger == "data"
        assert [(s.name, s.status) for s in run.steps] == [(n, "pending") for n, _ in STEPS]
        ledger.update_pipeline_step(run_id, 0, status="running", attempt=True)
        ledger.update_pipeline_step(
            run_id,
            0,
            status="passed",
            detail="ran  prepare,\ntrain",
            output=["x"] * 300,
            result={"stages": ["prepare"]},
            seconds=1.23456,
        )
        ledger.update_pipeline_step(run_id, 1, status="running", attempt=True)
        ledger.update_pipeline_step(run_id, 1, status="failed", detail="push failed")
        ledger.update_pipeline_step(run_id, 1, status="running", attempt=True)
        ledger.update_pipeline_step(run_id, 1, status="passed", result={"commit": "abc"})
        step0, step1 = ledger.get_pipeline_run(run_id).steps[:2]
        assert step0.detail == "ran prepare, train" and len(step0.output) == 200
        assert step0.result == {"stages": ["prepare"]} and step0.seconds == 1.235
        assert step0.started_at and step0.finished_at and step0.attempts == 1
        assert step1.attempts == 2 and step1.result == {"commit": "abc"}
        ended = ledger.update_pipeline_run(run_id, status="passed", detail="done", release="r1")
        assert ended.status == "passed" and ended.finished_at and ended.release == "r1"
        with pytest.raises(LedgerConflict, match="already ended passed"):
            ledger.update_pipeline_run(run_id, status="running")
        actions = [event.action for event in ledger.audit_events(limit=10)]
        assert actions[:2] == ["pipeline_finished", "pipeline_started"]


def test_one_open_run_per_pipeline_and_service(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        first = _begin(ledger)
        with pytest.raises(LedgerConflict, match=f"run #{first} of pipeline retrain for iris"):
            _begin(ledger)
        ledger.update_pipeline_run(first, status="waiting", detail="approval")
        with pytest.raises(LedgerConflict, match=r"has not ended \(waiting\)"):
            _begin(ledger)
        ledger.update_pipeline_run(first, status="failed", detail="no")
        assert _begin(ledger) != first
        assert [run.id for run in ledger.pipeline_runs(open_only=True)] == [first + 1]


def test_a_takeover_needs_the_run_as_the_taker_saw_it(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        run_id = _begin(ledger, pid=111)
        seen = ledger.get_pipeline_run(run_id).updated_at
        taken = ledger.claim_pipeline_run(run_id, pid=222, host="here", seen=seen)
        assert taken.pid == 222 and taken.status == "running"
        # a second taker that read it before the first claimed it is refused
        with pytest.raises(LedgerConflict, match="changed meanwhile"):
            ledger.claim_pipeline_run(run_id, pid=333, host="here", seen=seen)
        # an interrupted run is still open: taken over, and a second run of it is refused
        ledger.update_pipeline_run(run_id, status="interrupted", detail="stopped")
        with pytest.raises(LedgerConflict, match="has not ended"):
            _begin(ledger)
        now = ledger.get_pipeline_run(run_id)
        assert now.open and now.finished_at is None
        again = ledger.claim_pipeline_run(run_id, pid=333, host="here", seen=now.updated_at)
        assert again.status == "running" and again.pid == 333
        ended = ledger.update_pipeline_run(run_id, status="cancelled", detail="by bob")
        assert not ended.open and ended.finished_at
        with pytest.raises(LedgerConflict, match="ended cancelled"):
            ledger.claim_pipeline_run(run_id, pid=444, host="here", seen=ended.updated_at)


def test_bad_requests_are_refused(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        with pytest.raises(InvalidRequest, match="has no steps"):
            ledger.begin_pipeline_run(
                "x", "iris", trigger="manual", reason="", steps=[], pid=None, host=None
            )
        with pytest.raises(RecordNotFound, match="no pipeline run #9"):
            ledger.get_pipeline_run(9)
        run_id = _begin(ledger)
        with pytest.raises(RecordNotFound, match="no step 9"):
            ledger.update_pipeline_step(run_id, 9, status="passed")


def test_runs_are_in_the_history_timeline(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        run_id = _begin(ledger)
        ledger.update_pipeline_run(run_id, status="failed", detail="repro: stage train failed")
        page = ledger.history(limit=10)
        (entry,) = [e for e in page.entries if e.kind == "pipeline"]
        assert entry.service == "iris" and entry.env is None and entry.status == "failed"
        assert entry.summary == (
            f"pipeline retrain run #{run_id} (data: data/iris.csv changed): failed "
            "(repro: stage train failed)"
        )
        # an environment's history holds none (a run belongs to no environment), and the
        # cursor of a pipeline entry pages on to the older run
        assert not [e for e in ledger.history(env="dev").entries if e.kind == "pipeline"]
        second = _begin(ledger)
        newest = ledger.history(limit=1)
        assert newest.entries[0].record.id == second and newest.next_cursor
        older = ledger.history(limit=1, before=newest.next_cursor)
        assert [e.record.id for e in older.entries] == [run_id]

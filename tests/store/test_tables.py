"""Every table written through the Ledger and read back as the records the engine uses."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from store import (
    ApprovalRecord,
    ArtifactRecord,
    EnvState,
    Ledger,
    PromotionRecord,
    ReleaseRecord,
    RunRecord,
    StepRecord,
    TestResultRecord,
)
from tests.store import FakeClock, open_ledger

AT = "2025-03-01T03:00:00.000000+00:00"


def test_every_table_round_trips(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        artifacts = [
            ArtifactRecord("train", "dataset", "data/train.csv", "11" * 16, 2048, 1),
            ArtifactRecord("model", "model", "models/model.pkl", "22" * 16, 512, 1),
        ]
        release = ledger.record_release(
            "3f9a1c0b2d4e",
            service="fraud",
            git_commit="c" * 40,
            git_branch="main",
            message="retrain on March data",
            author="Ann <ann@example.org>",
            params={"C": 0.5, "features": ["a", "b"]},
            metrics={"accuracy": 0.951},
            artifacts=artifacts,
            version="v1.0.0",
        )
        run = ledger.start_run("test", service="fraud", env="dev", release_id=release.id)
        ledger.record_step(run.id, "unit", "passed", seconds=1.25, detail="12 passed")
        ledger.record_step(run.id, "accuracy", "failed", seconds=0.5, detail="0.91 < 0.95")
        ledger.record_test_results(
            run.id,
            [
                TestResultRecord("unit", "tests/test_a.py::test_ok", "passed", 0.01),
                TestResultRecord("unit", "tests/test_a.py::test_bad", "failed", 0.02, "assert 1"),
            ],
        )
        ledger.finish_run(run.id, "failed", reason="accuracy 0.91 < 0.95", details={"n": 2})
        promotion = ledger.begin_promotion("fraud", "prod", release.id, reason="weekly")
        ledger.finish_promotion(promotion.id, "done", url="http://127.0.0.1:3000", pid=4242)
        ledger.approve(release.id, "prod", comment="looks good", actor="bob")

    # Read back through a fresh (read-only) connection: what is on disk, not in memory.
    with Ledger.open(tmp_path / ".relman" / "ledger.db", readonly=True) as ledger:
        assert ledger.get_release("3f9a1c0b2d4e") == ReleaseRecord(
            id="3f9a1c0b2d4e",
            service="fraud",
            version="v1.0.0",
            git_commit="c" * 40,
            git_branch="main",
            message="retrain on March data",
            author="Ann <ann@example.org>",
            created_at=AT,
            params={"C": 0.5, "features": ["a", "b"]},
            metrics={"accuracy": 0.951},
        )
        assert ledger.artifacts("3f9a1c0b2d4e") == [
            ArtifactRecord(
                "train", "dataset", "data/train.csv", "11" * 16, 2048, 1, "3f9a1c0b2d4e"
            ),
            ArtifactRecord("model", "model", "models/model.pkl", "22" * 16, 512, 1, "3f9a1c0b2d4e"),
        ]
        assert ledger.get_run(1) == RunRecord(
            id=1,
            kind="test",
            release_id="3f9a1c0b2d4e",
            service="fraud",
            env="dev",
            actor="alice",
            started_at=AT,
            finished_at=AT,
            status="failed",
            reason="accuracy 0.91 < 0.95",
            # who held it (start_run records this process), and what finish_run added
            details={"n": 2, "pid": os.getpid(), "host": socket.gethostname()},
        )
        assert ledger.steps(1) == [
            StepRecord("unit", "passed", 1.25, "12 passed", run_id=1, seq=1),
            StepRecord("accuracy", "failed", 0.5, "0.91 < 0.95", run_id=1, seq=2),
        ]
        assert [(r.nodeid, r.outcome, r.message) for r in ledger.test_results("3f9a1c0b2d4e")] == [
            ("tests/test_a.py::test_bad", "failed", "assert 1"),
            ("tests/test_a.py::test_ok", "passed", ""),
        ]
        assert ledger.get_promotion(1) == PromotionRecord(
            id=1,
            service="fraud",
            env="prod",
            release_id="3f9a1c0b2d4e",
            previous_release_id=None,
            kind="promote",
            actor="alice",
            started_at=AT,
            finished_at=AT,
            status="done",
            reason="weekly",
        )
        assert ledger.approvals("3f9a1c0b2d4e", "prod") == [
            ApprovalRecord(1, "3f9a1c0b2d4e", "fraud", "prod", "bob", AT, "looks good")
        ]
        assert ledger.environment_state("fraud", "prod") == EnvState(
            service="fraud",
            env="prod",
            release_id="3f9a1c0b2d4e",
            version="v1.0.0",
            state="live",
            url="http://127.0.0.1:3000",
            pid=4242,
            since=AT,
            updated_at=AT,
        )
        events = ledger.audit_events(limit=100)
        assert [e.action for e in reversed(events)] == [
            "release.record",
            "run.start",
            "run.step",
            "run.step",
            "run.tests",
            "run.finish",
            "promote.intent",
            "promote.finish",
            "approval.record",
        ]
        assert events[0].actor == "bob"
        assert events[3].outcome == "failed" and events[3].reason == "accuracy 0.91 < 0.95"
        assert events[-1].details["artifacts"] == {
            "data/train.csv": "11" * 16,
            "models/model.pkl": "22" * 16,
        }


def test_recording_the_same_release_twice_changes_nothing(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        first = ledger.record_release("aaaaaaaaaaaa", service="fraud", git_commit="c" * 40)
        again = ledger.record_release("aaaaaaaaaaaa", service="fraud", git_commit="c" * 40)
        assert again == first
        assert len(ledger.audit_events()) == 1

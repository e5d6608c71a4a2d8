"""Schema 3 (rollouts) on a ledger an older relman wrote: upgraded in place with its rows and
audit chain, and `relman audit verify` still passes once rollouts have been audited."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from store import SCHEMA_VERSION, Ledger
from store.errors import SchemaTooOld
from store.ledger import ledger as ledger_module
from store.ledger.migrations import MIGRATIONS, migrate
from store.ledger.snapshot import open_rollouts
from tests.store import add_release, open_ledger
from tui.cli import run

CONFIG = """\
[project]
name = "shop"

[services.fraud]
bento = "service:Fraud"
model = ["fraud-model"]

[environments.prod]
port = 3102
"""


def _write_version_2_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger as relman at schema 2 left it: releases, a live promotion, an open one, and
    their audit events, written through the Ledger with migrations 1 and 2 only."""

    def migrate_to_2(db: Database, path: Path) -> int:
        return migrate(db, path, MIGRATIONS[:2])

    with monkeypatch.context() as patch:
        patch.setattr(ledger_module, "migrate", migrate_to_2)
        with open_ledger(tmp_path) as ledger:
            add_release(ledger, "aaaaaaaaaaaa", version="v1.0.0")
            add_release(ledger, "bbbbbbbbbbbb", version="v1.1.0")
            live = ledger.begin_promotion("fraud", "prod", "aaaaaaaaaaaa", pid=10, host="h")
            ledger.finish_promotion(live.id, "done", url="http://127.0.0.1:3102", pid=11)
            ledger.begin_promotion("fraud", "prod", "bbbbbbbbbbbb", pid=12, host="h")
            assert ledger.schema_version == 2
            path = ledger.path
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "rollouts" not in tables
    return path


def _audit_rows(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT * FROM audit_events ORDER BY seq").fetchall()
    conn.close()
    assert rows
    return rows


def test_a_version_2_ledger_is_upgraded_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_version_2_ledger(tmp_path, monkeypatch)
    events_before = _audit_rows(path)
    # Read-only sessions may not upgrade it, and say which command does.
    with pytest.raises(
        SchemaTooOld, match=f"schema 2 is older than this relman's {SCHEMA_VERSION}"
    ):
        Ledger.open(path, readonly=True)
    with pytest.raises(
        SchemaTooOld, match=f"schema 2 is older than this relman's {SCHEMA_VERSION}"
    ):
        open_rollouts(path)

    with open_ledger(tmp_path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION >= 3
        assert _audit_rows(path) == events_before  # the chain as it was, nothing rewritten
        assert ledger.open_rollouts() == [] and ledger.latest_rollout("fraud", "prod") is None
        state = ledger.environment_state("fraud", "prod")
        assert state is not None and state.release_id == "aaaaaaaaaaaa"
        [promotion] = ledger.open_promotions()
        assert (promotion.release_id, promotion.pid) == ("bbbbbbbbbbbb", 12)
        # The open promotion of schema 2 can carry a rollout now.
        rollout = ledger.begin_rollout(
            "fraud",
            "prod",
            promotion_id=promotion.id,
            run_id=None,
            strategy="canary",
            stable="aaaaaaaaaaaa",
            canary="bbbbbbbbbbbb",
            plan=[{"weight": 20}],
            pid=12,
            host="h",
        )
        assert ledger.verify_chain().ok
    assert open_rollouts(path) == [rollout]


def test_audit_verify_passes_after_rollout_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relman.toml").write_text(CONFIG)
    path = _write_version_2_ledger(tmp_path, monkeypatch)
    with open_ledger(tmp_path) as ledger:
        [promotion] = ledger.open_promotions()
        rollout = ledger.begin_rollout(
            "fraud",
            "prod",
            promotion_id=promotion.id,
            run_id=None,
            strategy="shadow",
            stable="aaaaaaaaaaaa",
            canary="bbbbbbbbbbbb",
            plan=[{"weight": 10}, {"analysis": "default"}],
            pid=12,
            host="h",
        )
        ledger.update_rollout(rollout.id, step=1, weight=10)
        ledger.request_rollout(rollout.id, "pause", actor="bob")
        ledger.claim_rollout(rollout.id, 12, pid=13, host="h", reason="pid 12 ended")
        ledger.update_rollout(rollout.id, phase="aborted", detail="shadow-agreement 0.81 < 0.95")
        ledger.finish_promotion(promotion.id, "undone", reason="rollout aborted")
        events = ledger.audit_events(limit=100)
    rollout_actions = [e.action for e in reversed(events) if e.action.startswith("rollout.")]
    assert rollout_actions == [
        "rollout.begin",
        "rollout.pause",
        "rollout.takeover",
        "rollout.aborted",
    ]

    assert run(["--project", str(tmp_path), "audit", "verify"]) == 0
    assert capsys.readouterr().out == f"audit chain intact: {len(events)} events checked\n"

    # An edit to a rollout's audited reason is caught like any other.
    conn = sqlite3.connect(path)
    for name in ("audit_events_no_update", "audit_events_no_delete"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("UPDATE audit_events SET reason = 'fine' WHERE action = 'rollout.aborted'")
    conn.commit()
    conn.close()
    assert run(["--json", "--project", str(tmp_path), "audit", "verify"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["first_broken"] == next(e.seq for e in events if e.action == "rollout.aborted")

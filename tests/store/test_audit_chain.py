"""The hash-chained audit log: intact on an untouched ledger; tampering names the first
event that cannot be trusted."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path

import pytest

from store import ArtifactRecord, Ledger
from store.ledger.audit import event_hash
from tests.store import add_release, open_ledger

EVENTS = 10


def _ledger_with_events(tmp_path: Path) -> Path:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        for n in range(EVENTS - 1):
            ledger.log_event("gate.check", outcome="passed", service="fraud", reason=f"check {n}")
        assert ledger.verify_chain().ok
        return ledger.path


def _tamper(path: Path, sql: str) -> None:
    """What someone with sqlite3 and write access could do: drop the guards, edit rows."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_events_no_update")
    conn.execute("DROP TRIGGER audit_events_no_delete")
    conn.execute(sql)
    conn.commit()
    conn.close()


def _verify(path: Path) -> tuple[bool, int | None, str | None, int]:
    with Ledger.open(path, readonly=True) as ledger:
        report = ledger.verify_chain()
    return report.ok, report.first_broken, report.problem, report.checked


def test_untouched_chain_verifies(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    assert _verify(path) == (True, None, None, EVENTS)
    with Ledger.open(path, readonly=True) as ledger:
        assert ledger.verify_chain().line == f"audit chain intact: {EVENTS} events checked"
        events = list(reversed(ledger.audit_events(limit=100)))
    assert [e.seq for e in events] == list(range(1, EVENTS + 1))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


def test_updating_a_reason_breaks_that_event(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    _tamper(path, "UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 6")
    assert _verify(path) == (False, 6, "event 6: hash does not match its content", 5)


def test_deleting_a_middle_event_is_a_gap(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    _tamper(path, "DELETE FROM audit_events WHERE seq = 4")
    ok, first, problem, _ = _verify(path)
    assert (ok, first) == (False, 4)
    assert (
        problem == "event 4: missing, the chain jumps from event 3 to 5 (audit rows were deleted)"
    )


def test_deleting_the_newest_events_is_seen(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    _tamper(path, f"DELETE FROM audit_events WHERE seq >= {EVENTS - 1}")
    ok, first, problem, checked = _verify(path)
    assert (ok, first, checked) == (False, EVENTS - 1, EVENTS - 2)
    assert problem is not None and "newest events" in problem
    # New events do not reuse the deleted numbers, so the hole stays visible.
    with Ledger.open(path) as ledger:
        assert ledger.log_event("x", outcome="ok").seq == EVENTS + 1
        assert ledger.verify_chain().first_broken == EVENTS - 1


def test_editing_a_hash_breaks_that_event(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    flip_first_digit = "CASE WHEN hash LIKE '0%' THEN '1' ELSE '0' END || substr(hash, 2)"
    _tamper(path, f"UPDATE audit_events SET hash = {flip_first_digit} WHERE seq = 3")
    assert _verify(path)[:3] == (False, 3, "event 3: hash does not match its content")


def test_rehashing_an_edited_event_breaks_the_next_link(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    with Ledger.open(path, readonly=True) as ledger:
        event = next(e for e in ledger.audit_events(limit=100) if e.seq == 5)
    forged = {**event.__dict__, "reason": "forged"}
    new_hash = event_hash(event.prev_hash, forged)
    _tamper(path, f"UPDATE audit_events SET reason = 'forged', hash = '{new_hash}' WHERE seq = 5")
    assert _verify(path)[:3] == (False, 6, "event 6: prev_hash does not match event 5")


def test_triggers_keep_the_log_append_only(tmp_path: Path) -> None:
    path = _ledger_with_events(tmp_path)
    conn = sqlite3.connect(path)
    for sql in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    conn.close()
    assert _verify(path)[0]


def test_a_failed_change_leaves_no_event(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa")
        # The insert of the release succeeds, then the artifact violates its CHECK: the
        # release, its artifacts and its audit event roll back together.
        with pytest.raises(sqlite3.IntegrityError):
            ledger.record_release(
                "bbbbbbbbbbbb",
                service="fraud",
                git_commit="b" * 40,
                artifacts=[ArtifactRecord("x", "weights", "x.bin")],  # type: ignore[arg-type]
            )
        assert ledger.releases("fraud")[0].id == "aaaaaaaaaaaa"
        assert len(ledger.releases("fraud")) == 1
        assert [e.action for e in ledger.audit_events()] == ["release.record"]
        assert ledger.verify_chain().ok

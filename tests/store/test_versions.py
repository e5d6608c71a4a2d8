"""Version numbers: v1.0.0 first, then bumped from the highest; never reassigned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from store import LedgerConflict, bump_version
from store.errors import InvalidRequest
from tests.store import add_release, open_ledger


def test_first_version_then_bumps(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        assert ledger.next_version("fraud") == "v1.0.0"
        assert ledger.next_version("fraud", "major") == "v1.0.0"
        add_release(ledger, "aaaaaaaaaaaa")
        ledger.assign_version("aaaaaaaaaaaa", ledger.next_version("fraud"))
        assert ledger.get_release("aaaaaaaaaaaa").version == "v1.0.0"
        assert ledger.next_version("fraud") == "v1.1.0"
        assert ledger.next_version("fraud", "patch") == "v1.0.1"
        assert ledger.next_version("fraud", "major") == "v2.0.0"
        # Versions are per service.
        assert ledger.next_version("churn") == "v1.0.0"


def test_highest_by_number_not_by_text_or_date(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.10.0")
        add_release(ledger, "bbbbbbbbbbbb", version="v1.9.3")  # recorded later, lower
        assert ledger.next_version("fraud") == "v1.11.0"
        assert ledger.next_version("fraud", "patch") == "v1.10.1"


def test_versions_are_unique_and_never_reassigned(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "aaaaaaaaaaaa", version="v1.0.0")
        add_release(ledger, "bbbbbbbbbbbb")
        with pytest.raises(
            LedgerConflict, match=re.escape("fraud v1.0.0 is already release aaaaaaaaaaaa")
        ):
            ledger.assign_version("bbbbbbbbbbbb", "v1.0.0")
        with pytest.raises(LedgerConflict, match=re.escape("already is fraud v1.0.0")):
            ledger.assign_version("aaaaaaaaaaaa", "v2.0.0")
        with pytest.raises(InvalidRequest, match=re.escape("not of the form v1.2.0")):
            ledger.assign_version("bbbbbbbbbbbb", "1.1")
        # Assigning the version a release already has is a no-op, not a new audit event.
        events = len(ledger.audit_events())
        ledger.assign_version("aaaaaaaaaaaa", "v1.0.0")
        assert len(ledger.audit_events()) == events
        assert ledger.get_release("bbbbbbbbbbbb").version is None


def test_bump_version() -> None:
    assert bump_version(None, "patch") == "v1.0.0"
    assert bump_version("v0.9.9", "minor") == "v0.10.0"
    with pytest.raises(ValueError):
        bump_version("1.0", "minor")

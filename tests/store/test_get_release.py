"""Finding a release by id or unique id prefix; listing a service's releases."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.errors import release_error
from store import AmbiguousRelease, ReleaseNotFound
from tests.store import FakeClock, add_release, open_ledger


def test_prefix_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger(tmp_path) as ledger:
        add_release(ledger, "ab12cd34ef56", version="v1.0.0")
        add_release(ledger, "ab98cd34ef56")
        add_release(ledger, "ff00aa11bb22", service="churn")
        assert ledger.get_release("ff0").id == "ff00aa11bb22"
        assert ledger.get_release("ab1").id == "ab12cd34ef56"
        assert ledger.get_release("ab98cd34ef56").id == "ab98cd34ef56"
        with pytest.raises(AmbiguousRelease) as ambiguous:
            ledger.get_release("ab")
        assert str(ambiguous.value) == (
            "release prefix 'ab' is ambiguous in .relman/ledger.db: ab12cd34ef56 (fraud v1.0.0),"
            " ab98cd34ef56 (fraud unversioned); type more characters"
        )
        assert release_error(ambiguous.value).exit_code == 2
        with pytest.raises(
            ReleaseNotFound, match=re.escape("no release 'abz' in .relman/ledger.db")
        ):
            ledger.get_release("abz")
        # A prefix whose last character is the highest is still a range, not a wildcard.
        with pytest.raises(ReleaseNotFound):
            ledger.get_release("%")


def test_releases_of_a_service_newest_first(tmp_path: Path) -> None:
    clock = FakeClock()
    with open_ledger(tmp_path, clock) as ledger:
        for release_id in ("aaaaaaaaaaaa", "cccccccccccc", "bbbbbbbbbbbb"):
            add_release(ledger, release_id)
            clock.advance(minutes=1)
        add_release(ledger, "dddddddddddd", service="churn")
        assert [r.id for r in ledger.releases("fraud")] == [
            "bbbbbbbbbbbb",
            "cccccccccccc",
            "aaaaaaaaaaaa",
        ]
        assert [r.id for r in ledger.releases("fraud", limit=1)] == ["bbbbbbbbbbbb"]

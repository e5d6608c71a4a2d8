"""Unit tests of the release ledger (store/). Shared helpers live here, not in a conftest,
so each test file states what it builds: a fresh ledger per test in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from store import ArtifactRecord, Ledger, ReleaseRecord

T0 = datetime(2025, 3, 1, 3, 0, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand, so timestamps are known and can be equal."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def open_ledger(tmp_path: Path, clock: FakeClock | None = None, actor: str = "alice") -> Ledger:
    return Ledger.open(tmp_path / ".relman" / "ledger.db", actor=actor, clock=clock)


def add_release(
    ledger: Ledger, release_id: str, service: str = "fraud", version: str | None = None
) -> ReleaseRecord:
    return ledger.record_release(
        release_id,
        service=service,
        git_commit=release_id * 3,
        git_branch="main",
        message=f"release {release_id}",
        author="Test Author",
        params={"C": 1.0},
        metrics={"accuracy": 0.95},
        artifacts=[ArtifactRecord("model", "model", f"models/{release_id}.pkl", "ab" * 16, 10)],
        version=version,
    )

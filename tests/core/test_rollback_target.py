"""api.rollback_target: what `relman rollback` would go back to, read from the ledger with
the rollback's own rule (the TUI's confirmation names it before anything runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import api
from core.errors import UsageError
from store import Ledger
from store.ledger.records import PromotionKind
from tests.store import FakeClock, add_release, open_ledger

TOML = """\
[project]
name = "fraud"

[services.fraud]
bento = "service:Fraud"
model = ["model.pkl"]

[environments.staging]
port = 3101

[environments.prod]
port = 3102
"""
A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"


def went_live(
    ledger: Ledger, clock: FakeClock, release: str, *, kind: PromotionKind = "promote"
) -> None:
    clock.advance(hours=1)
    promotion = ledger.begin_promotion("fraud", "prod", release, kind=kind)
    ledger.finish_promotion(promotion.id, "done")


@pytest.fixture
def project(tmp_path: Path) -> api.Project:
    (tmp_path / "relman.toml").write_text(TOML)
    return api.load_project(tmp_path)


def target(project: api.Project, env: str = "prod") -> dict[str, str | None] | None:
    """Which release the rollback would go back to (its approvals: test_rollback_rule)."""
    found = api.rollback_target(project, "fraud", env)
    return None if found is None else {"release": found["release"], "version": found["version"]}


def test_the_target_follows_the_rollback_rule(project: api.Project) -> None:
    clock = FakeClock()
    with open_ledger(project.root, clock) as ledger:
        for release, version in ((A, "v1.0.0"), (B, "v1.1.0"), (C, None)):
            add_release(ledger, release, version=version)
    assert target(project) is None  # nothing deployed

    with open_ledger(project.root, clock) as ledger:
        went_live(ledger, clock, A)
    assert target(project) is None  # nothing before A

    with open_ledger(project.root, clock) as ledger:
        went_live(ledger, clock, B)
    assert target(project) == {"release": A, "version": "v1.0.0"}
    assert target(project, "staging") is None

    # Rolled back from B to A: B is never offered again, so A has nothing to go back to.
    with open_ledger(project.root, clock) as ledger:
        went_live(ledger, clock, A, kind="rollback")
    assert target(project) is None

    with open_ledger(project.root, clock) as ledger:
        went_live(ledger, clock, C)
    assert target(project) == {"release": A, "version": "v1.0.0"}


def test_an_unknown_environment_is_a_usage_error(project: api.Project) -> None:
    with pytest.raises(UsageError, match="qa"):
        api.rollback_target(project, "fraud", "qa")

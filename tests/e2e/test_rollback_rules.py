"""`relman rollback --to` a release never live in prod, with real `bentoml serve` processes:
blocked without prod's approvals (the line gives the approve command), through with a
second person's approval or with --force --reason, and the audit log saying which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config.model import load_project
from core.ledger.releases import open_ledger
from tests.e2e.served import (
    environments,
    ports_of,
    predict,
    relman,
    relman_json,
    second_release,
    served,
    served_count,
)

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest


def built(root: Path) -> str:
    """Build the candidate's Bento (recording it as a release, live nowhere); its id."""
    document = relman_json(root, "build", "iris")
    assert document["_exit"] == 0, document["_stderr"]
    release: str = document["bentos"][0]["release"]
    return release


def test_rollback_to_a_release_never_live_in_prod_needs_approval_or_force(served: Path) -> None:
    root = served
    first = built(root)
    approve_first = f"relman approve {first} --env prod"

    blocked = relman(root, "--batch", "rollback", "iris", "--env", "prod", "--to", first)
    assert blocked.returncode == 1
    error = blocked.stderr.strip().splitlines()[-1]
    assert "was never live in prod: prod needs 1 approval from someone other than alice" in error
    assert approve_first in error and "--force --reason" in error
    assert environments(root)["prod"]["state"] == "not deployed" and served_count(root) == 0

    no_reason = relman(
        root, "--batch", "rollback", "iris", "--env", "prod", "--to", first, "--force"
    )
    assert no_reason.returncode == 2 and "--force needs --reason" in no_reason.stderr

    assert relman(root, "approve", first, "--env", "prod").returncode == 0  # alice's own
    own = relman_json(root, "rollback", "iris", "--env", "prod", "--to", first)
    assert own["_exit"] == 1 and "alice's own does not count" in own["error"]

    assert relman(root, "approve", first, "--env", "prod", user="bob").returncode == 0
    approved = relman_json(
        root, "rollback", "iris", "--env", "prod", "--to", first, "--reason", "back to the fix"
    )
    assert approved["_exit"] == 0, approved["error"]
    assert approved["steps"][0]["detail"].endswith("approved for prod by bob (1 needed)")
    assert environments(root)["prod"]["release"] == first
    assert predict(ports_of(root)["prod"]) == ["setosa", "virginica"]

    second_release(root)
    second = built(root)
    forced = relman_json(
        root,
        *("rollback", "iris", "--env", "prod", "--to", second),
        *("--force", "--reason", "the hotfix cannot wait for bob"),
    )
    assert forced["_exit"] == 0, forced["error"]
    assert environments(root)["prod"]["release"] == second
    assert served_count(root) == 1  # the first release's Bento was retired

    verified = relman(root, "--json", "audit", "verify")
    assert verified.returncode == 0 and json.loads(verified.stdout)["ok"] is True
    with open_ledger(load_project(root), read_only=True) as ledger:
        events = ledger.audit_events(limit=200)
    cleared = [
        (e.action, e.actor, e.release_id, e.outcome, e.reason)
        for e in reversed(events)
        if e.action in ("rollback.approved", "rollback.force")
    ]
    assert cleared == [
        ("rollback.approved", "alice", first, "approved", "approved for prod by bob (1 needed)"),
        (
            "rollback.force",
            "alice",
            second,
            "approvals skipped",
            "the hotfix cannot wait for bob",
        ),
    ]

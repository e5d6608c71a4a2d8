"""The rule of `relman rollback`: back to a release that was live in the environment is one
step; to a release never live there needs the environment's approvals, counted as promotion
counts them (four eyes), or --force with --reason; the audit log records which.

The ledger is real; the deploy itself (lock, validate, switch: tests/e2e) is replaced by one
that records the rollback done, as the real one does once the new release serves."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core import api
from core.delivery import rollback as rollback_module
from core.delivery.rollback import clearance, rollback
from core.errors import UsageError
from store import Ledger
from store.ledger.records import PromotionKind
from tests.store import add_release, open_ledger

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
approvals = 1
"""
A, B, C = "aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"
APPROVE_C = f"relman approve {C} --env prod"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> api.Project:
    monkeypatch.setenv("RELMAN_USER", "alice")  # who rolls back
    (tmp_path / "relman.toml").write_text(TOML)
    project = api.load_project(tmp_path)
    with open_ledger(tmp_path) as ledger:
        for release, version in ((A, "v1.0.0"), (B, "v1.1.0"), (C, "v1.2.0")):
            add_release(ledger, release, version=version)
    return project


def went_live(
    ledger: Ledger, release: str, env: str = "prod", *, kind: PromotionKind = "promote"
) -> None:
    promotion = ledger.begin_promotion("fraud", env, release, kind=kind)
    ledger.finish_promotion(promotion.id, "done")


def approve(project: api.Project, release: str, env: str, who: str) -> None:
    with open_ledger(project.root, actor=who) as ledger:
        ledger.approve(release, env)


def decide(project: api.Project, release: str, env: str = "prod", **kwargs: Any) -> Any:
    with open_ledger(project.root) as ledger:
        return clearance(project, ledger, ledger.get_release(release), env, **kwargs)


@pytest.fixture
def deploys(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The releases the rollbacks deployed; each recorded live as the real deploy does."""
    done: list[str] = []

    def deploy(project: Any, ledger: Ledger, record: Any, env: str, *_args: Any) -> None:
        went_live(ledger, record.id, env, kind="rollback")
        done.append(record.id)

    monkeypatch.setattr(rollback_module, "lock_and_deploy", deploy)
    monkeypatch.setattr(rollback_module, "write_tags", lambda *args: None)
    monkeypatch.setattr(
        "core.build.bento_store.find_bento",
        lambda service, release: SimpleNamespace(tag=f"{service}:{release}"),
    )
    return done


def audit(project: api.Project, *actions: str) -> list[Any]:
    """The rollbacks' audit events (those of ``actions`` when named), newest first."""
    with open_ledger(project.root) as ledger:
        events = [e for e in ledger.audit_events(limit=100) if e.action.startswith("rollback.")]
    return [e for e in events if not actions or e.action in actions]


CLEARED = ("rollback.approved", "rollback.force")


def test_a_release_live_there_before_needs_no_approval(project: api.Project) -> None:
    with open_ledger(project.root) as ledger:
        for release in (A, B, C):
            went_live(ledger, release)
    # A is not the release live just before C (B is): it was live there all the same.
    known = decide(project, A)
    assert known.step.status == "skipped" and not known.step.blocks
    assert known.step.detail == "v1.0.0 was live in prod before: no approval needed"
    assert known.by is None


def test_a_release_never_live_there_needs_someone_elses_approval(project: api.Project) -> None:
    with open_ledger(project.root) as ledger:
        went_live(ledger, A)
        went_live(ledger, C, env="staging")  # live elsewhere does not count
        # A deploy that was undone never made C live in prod.
        undone = ledger.begin_promotion("fraud", "prod", C)
        ledger.finish_promotion(undone.id, "undone", reason="validate failed")
    blocked = decide(project, C)
    assert blocked.step.blocks
    assert blocked.step.detail.startswith(
        "v1.2.0 was never live in prod: prod needs 1 approval from someone other than alice; has 0"
    )
    assert blocked.step.detail.endswith(APPROVE_C)

    approve(project, C, "prod", "alice")  # the one rolling back
    approve(project, C, "staging", "bob")  # another environment's
    own = decide(project, C)
    assert own.step.blocks and "alice's own does not count" in own.step.detail

    approve(project, C, "prod", "bob")
    approved = decide(project, C)
    assert approved.step.status == "passed" and approved.by == "approved"
    assert approved.step.detail == (
        "v1.2.0 was never live in prod; approved for prod by bob (1 needed)"
    )


def test_force_goes_without_the_approvals_and_says_so(project: api.Project) -> None:
    forced = decide(project, C, force=True, reason="hotfix of the fraud rule")
    assert forced.step.status == "skipped" and forced.by == "forced"
    assert forced.step.detail == (
        "v1.2.0 was never live in prod; its approvals skipped with --force "
        "(reason: hotfix of the fraud rule)"
    )
    assert forced.approvals.endswith(APPROVE_C)  # what was missing, for the audit log


def test_an_environment_that_asks_no_approval(project: api.Project) -> None:
    free = decide(project, C, env="staging")
    assert free.step.status == "skipped" and free.by is None
    assert free.step.detail == "v1.2.0 was never live in staging; staging needs no approval"


def test_rollback_blocked_then_approved_then_forced(
    project: api.Project, deploys: list[str]
) -> None:
    with open_ledger(project.root) as ledger:
        went_live(ledger, A)

    blocked = rollback(project, "fraud", "prod", to="v1.2.0", reason="bypass?")
    assert blocked.exit_code == 1 and deploys == []
    assert blocked.error is not None and "\n" not in blocked.error
    assert blocked.error.startswith("rollback to v1.2.0 blocked: v1.2.0 was never live in prod")
    assert APPROVE_C in blocked.error and blocked.error.endswith("--force --reason WHY")
    assert [(s["name"], s["status"]) for s in blocked.steps] == [("approvals", "failed")]
    assert audit(project) == []  # nothing started, nothing cleared

    approve(project, C, "prod", "bob")
    approved = rollback(project, "fraud", "prod", to="v1.2.0", reason="back to the fix")
    assert approved.exit_code == 0 and deploys == [C]
    assert [s["name"] for s in approved.steps] == ["approvals", "gates"]
    event = audit(project, *CLEARED)[0]
    assert (event.action, event.outcome, event.actor) == ("rollback.approved", "approved", "alice")
    assert event.release_id == C and event.reason == "approved for prod by bob (1 needed)"
    assert event.details["reason"] == "back to the fix"

    forced = rollback(project, "fraud", "prod", to=B, reason="B serves the old schema", force=True)
    assert forced.exit_code == 0 and deploys == [C, B]
    event = audit(project, *CLEARED)[0]
    assert (event.action, event.outcome) == ("rollback.force", "approvals skipped")
    assert event.release_id == B and event.reason == "B serves the old schema"
    assert "prod needs 1 approval" in event.details["approvals"]

    # B went live in prod (forced): going back to it later is one step, and audited as such.
    assert rollback(project, "fraud", "prod", to=C, reason="again").exit_code == 0
    known = rollback(project, "fraud", "prod", to=B, reason="B again")
    assert known.exit_code == 0 and deploys == [C, B, C, B]
    assert known.steps[0]["detail"] == "v1.1.0 was live in prod before: no approval needed"
    assert len(audit(project, *CLEARED)) == 2  # the approved and the forced one only


def test_force_without_a_reason_is_a_usage_error(project: api.Project, deploys: list[str]) -> None:
    for reason in ("", "   "):
        with pytest.raises(UsageError, match="--force needs --reason"):
            rollback(project, "fraud", "prod", to=C, reason=reason, force=True)
    assert deploys == []


def test_the_preview_names_the_target_and_its_approvals(project: api.Project) -> None:
    with open_ledger(project.root) as ledger:
        went_live(ledger, A)
        went_live(ledger, B)
    default = api.rollback_target(project, "fraud", "prod")
    assert default is not None and default["release"] == A
    assert default["approvals"]["status"] == "skipped"
    named = api.rollback_target(project, "fraud", "prod", to="v1.2.0")
    assert named is not None and named["version"] == "v1.2.0"
    assert named["approvals"]["status"] == "failed"
    assert named["approvals"]["detail"].endswith(APPROVE_C)

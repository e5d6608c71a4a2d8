"""`relman rollout status|pause|resume|abort|promote`: a rollout as a person or script sees
it, and the requests that steer the relman driving it (docs/rollouts.md).

A live driver acts on a request at its next poll; this side waits (briefly) until it did.
When the driver is gone (killed), abort and promote are done here, under the environment's
lock taken over from the dead holder, as any command would recover it.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Literal

from core.config.model import Project
from core.delivery.recovery import holder_alive, recover
from core.delivery.rollout_plan import PlanStep
from core.errors import BlockedError, ReadOnlyError, UsageError
from core.host.processes import pid_alive, this_host
from core.ledger.releases import open_ledger
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from core.targets import target_for

if TYPE_CHECKING:
    from store import Ledger, RolloutRecord

Action = Literal["pause", "resume", "abort", "promote"]
ACTIONS: tuple[Action, ...] = ("pause", "resume", "abort", "promote")
ACT_WITHIN = 10.0  # seconds a live driver gets to act on a request before we report back


def rollout_status(project: Project, service: str, env: str) -> dict[str, Any]:
    """The latest rollout of ``service`` in ``env`` (docs/json.md, "rollout status")."""
    project.config.check_names(service=service, env=env)
    with open_ledger(project, read_only=True) as ledger:
        return rollout_document(ledger, service, env)


def rollout_document(ledger: Ledger, service: str, env: str) -> dict[str, Any]:
    rollout = ledger.latest_rollout(service, env)
    if rollout is None:
        return {
            "ok": True,
            "service": service,
            "env": env,
            "phase": "none",
            "strategy": None,
            "stable": None,
            "canary": None,
            "weight": 0,
            "step": None,
            "steps": [],
            "analysis": [],
            "detail": f"no rollout has run in {env}",
            "since": None,
            "driver": None,
        }
    return _document(ledger, rollout)


def rollout_summary(ledger: Ledger, service: str, env: str) -> dict[str, Any] | None:
    """What the overview and `relman status` show of an open rollout, or None."""
    rollout = ledger.latest_rollout(service, env)
    if rollout is None or rollout.phase not in ("progressing", "paused"):
        return None
    return {
        "phase": rollout.phase,
        "strategy": rollout.strategy,
        "weight": rollout.weight,
        "canary": rollout.canary,
        "canary_version": _version(ledger, rollout.canary),
        "interrupted": not _driver_alive(rollout),
    }


def rollout_action(
    project: Project,
    service: str,
    env: str,
    action: str,
    *,
    read_only: bool = False,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Ask the driver of the open rollout to ``action``; abort or promote it here when no
    relman drives it any more. Returns the rollout document after."""
    project.config.check_names(service=service, env=env)
    if action not in ACTIONS:
        raise UsageError(f"rollout {action}: not an action ({', '.join(ACTIONS)})")
    if read_only:
        raise ReadOnlyError(f"read-only mode: rollout {action} of {service} in {env} refused")
    with open_ledger(project, read_only=False) as ledger:
        rollout = ledger.latest_rollout(service, env)
        if rollout is None or rollout.phase not in ("progressing", "paused"):
            last = f" (the last one, #{rollout.id}, {rollout.phase})" if rollout else ""
            raise UsageError(
                f"no rollout runs in {env}{last}; start one with `relman promote "
                f"{service} --to {env} --strategy canary`"
            )
        if _driver_alive(rollout):
            return _ask(ledger, rollout, action, log)
        if action in ("pause", "resume"):
            raise BlockedError(
                f"the relman that drove rollout #{rollout.id} (pid {rollout.pid}) stopped; "
                f"`relman rollout abort {service} --env {env}` puts the stable release back, "
                f"`relman rollout promote {service} --env {env}` completes it"
            )
        if action == "abort":
            done = recover(project, ledger, service, env, log)
            log("; ".join(done) or "nothing to recover")
        else:
            _promote_orphan(project, ledger, rollout, log)
        return _document(ledger, ledger.get_rollout(rollout.id))


def _ask(ledger: Ledger, rollout: RolloutRecord, action: str, log: Log) -> dict[str, Any]:
    if action == "pause" and rollout.phase == "paused":
        raise UsageError(f"rollout #{rollout.id} is paused already; `relman rollout resume`")
    if action == "resume" and rollout.phase != "paused":
        raise UsageError(f"rollout #{rollout.id} is not paused")
    ledger.request_rollout(rollout.id, action)  # type: ignore[arg-type]
    log(f"asked the relman driving rollout #{rollout.id} (pid {rollout.pid}) to {action}")
    deadline = time.monotonic() + ACT_WITHIN
    current = ledger.get_rollout(rollout.id)
    while current.request is not None and time.monotonic() < deadline:
        time.sleep(0.1)
        current = ledger.get_rollout(rollout.id)
    document = _document(ledger, current)
    if current.request is not None:
        document["detail"] = (
            f"{action} requested; the driver (pid {rollout.pid}) acts at its next poll"
        )
    return document


def _promote_orphan(project: Project, ledger: Ledger, rollout: RolloutRecord, log: Log) -> None:
    """Complete a rollout whose driver died: the new release takes every request."""
    promotion = ledger.get_promotion(rollout.promotion_id)
    if promotion.status != "intent":
        raise BlockedError(f"rollout #{rollout.id}'s promotion is {promotion.status} already")
    if holder_alive(promotion):
        raise BlockedError(f"rollout #{rollout.id}'s promotion is held by pid {promotion.pid}")
    target = target_for(project, rollout.service, rollout.env)
    candidate = target.candidate()
    if candidate is None or candidate.release != rollout.canary:
        raise BlockedError(
            f"the new release {_version(ledger, rollout.canary)} of rollout #{rollout.id} no "
            f"longer runs; `relman rollout abort {rollout.service} --env {rollout.env}`"
        )
    if not ledger.claim_promotion(
        promotion.id,
        promotion.pid,
        pid=os.getpid(),
        host=this_host(),
        reason=f"rollout #{rollout.id} promoted by `relman rollout promote` after its "
        f"driver (pid {rollout.pid}) stopped",
    ):
        raise BlockedError(f"another relman took rollout #{rollout.id} over first")
    target.switch(candidate)
    problem = target.health()
    if problem:
        stable = next((i for i in target.instances() if i.release == rollout.stable), None)
        if stable is not None:
            target.switch(stable)
        target.stop(candidate)
        reason = f"{rollout.env} unhealthy after the switch: {problem}"
        ledger.finish_promotion(promotion.id, "undone", reason=reason)
        ledger.update_rollout(rollout.id, phase="aborted", weight=0, detail=reason)
        raise BlockedError(reason)
    target.sweep(candidate)
    ledger.finish_promotion(promotion.id, "done", url=target.url, pid=candidate.pid)
    line = f"{_version(ledger, rollout.canary)} serves every request (promoted by hand)"
    ledger.update_rollout(rollout.id, phase="promoted", weight=100, detail=line)
    log(line)


def _document(ledger: Ledger, rollout: RolloutRecord) -> dict[str, Any]:
    plan = [PlanStep.from_json(item) for item in rollout.plan]
    recorded = ledger.steps(rollout.run_id) if rollout.run_id is not None else []
    steps: list[dict[str, Any]] = [
        {
            "name": s.name,
            "status": s.status,
            "seconds": round(s.seconds or 0.0, 3),
            "detail": s.detail,
        }
        for s in recorded
    ]
    names = [s["name"] for s in steps]
    open_ = rollout.phase in ("progressing", "paused")
    if open_:
        for index, item in enumerate(plan):
            if index > rollout.step or (index == rollout.step and item.name not in names):
                steps.append({"name": item.name, "status": "pending", "seconds": 0.0, "detail": ""})
    latest = max((m.get("t", 0) for m in rollout.analysis), default=None)
    analysis = [
        {key: m.get(key) for key in ("check", "stable", "canary", "verdict", "detail")}
        for m in rollout.analysis
        if m.get("t") == latest
    ]
    alive = _driver_alive(rollout)
    detail = rollout.detail
    if open_ and not alive:
        detail = (
            f"interrupted: the relman driving it (pid {rollout.pid}) stopped; the next promote, "
            f"rollback or `relman rollout abort` puts {_version(ledger, rollout.stable)} back"
        )
    return {
        "ok": rollout.phase != "aborted",
        "id": rollout.id,
        "service": rollout.service,
        "env": rollout.env,
        "phase": rollout.phase,
        "strategy": rollout.strategy,
        "stable": rollout.stable,
        "stable_version": _version(ledger, rollout.stable),
        "canary": rollout.canary,
        "canary_version": _version(ledger, rollout.canary),
        "weight": rollout.weight,
        "step": rollout.step,
        "steps": steps,
        "analysis": analysis,
        "measurements": len({m.get("t") for m in rollout.analysis}),
        "detail": detail,
        "since": rollout.started_at,
        "finished": rollout.finished_at,
        "driver": {"pid": rollout.pid, "host": rollout.host, "alive": alive} if open_ else None,
    }


def _driver_alive(rollout: RolloutRecord) -> bool:
    if rollout.pid is None:
        return False
    if rollout.host and rollout.host != this_host():
        return True
    return pid_alive(rollout.pid)


def _version(ledger: Ledger, release_id: str | None) -> str | None:
    if release_id is None:
        return None
    from store.errors import InvalidRequest

    try:
        return ledger.get_release(release_id).version or release_id
    except InvalidRequest:
        return release_id

"""Crash safety: reconcile the ledger with the processes that really run.

Every promotion step writes an intent before it acts and a result after. When relman is
killed in between, the ledger keeps an open promotion whose holder (pid, host) is gone.
The next promote, rollback or down takes it over: if the new release is what the proxy
routes to and it answers ready, the interrupted promotion is completed; otherwise the
previous release is put back (restarted from its Bento if it no longer runs) and the
promotion is recorded as undone. Every instance that the environment does not route to is
stopped: no orphan `bentoml serve` outlives a crash. :func:`observe` answers the same
question without writing, for `relman status`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from core.config.model import Project
from core.errors import BlockedError, ReleaseError
from core.host.processes import pid_alive, this_host
from core.ledger.runs import close_abandoned
from core.targets import Target, target_for

if TYPE_CHECKING:  # the store (sqlite-utils, numpy) only where a ledger is opened
    from store import Ledger, PromotionRecord

Log = Callable[[str], None]


def holder_alive(promotion: PromotionRecord) -> bool:
    """Whether the relman that opened ``promotion`` still runs. A holder on another host
    cannot be checked from here and counts as alive."""
    if promotion.pid is None:
        return False
    if promotion.host and promotion.host != this_host():
        return True
    return pid_alive(promotion.pid)


def locked_error(promotion: PromotionRecord) -> BlockedError:
    """``staging is being promoted by bob (pid 4121) since 14:02:11``, exit 1."""
    since = promotion.started_at
    with contextlib.suppress(ValueError):
        since = datetime.fromisoformat(since).astimezone().strftime("%H:%M:%S")
    where = f"pid {promotion.pid}" + (
        f" on {promotion.host}" if promotion.host and promotion.host != this_host() else ""
    )
    verb = "promoted" if promotion.kind == "promote" else "rolled back"
    return BlockedError(
        f"{promotion.env} is being {verb} by {promotion.actor} ({where}) since {since}; "
        "wait for it to finish"
    )


def recover(project: Project, ledger: Ledger, service: str, env: str, log: Log) -> list[str]:
    """Finish or undo the promotions of ``service`` in ``env`` that a dead relman left open,
    and close its runs. Returns one line per thing done. BlockedError while a live relman
    holds the environment. Orphan instances are stopped only under the environment's lock:
    here, while a dead holder's promotion is claimed; see also :func:`sweep`."""
    done: list[str] = []
    target = target_for(project, service, env)
    for promotion in ledger.open_promotions(service, env):
        if holder_alive(promotion):
            raise locked_error(promotion)
        holder = f"{promotion.actor}'s relman (pid {promotion.pid}) stopped"
        claimed = ledger.claim_promotion(
            promotion.id,
            promotion.pid,
            pid=os.getpid(),
            host=this_host(),
            reason=f"promotion #{promotion.id}: {holder}",
        )
        if not claimed:  # another relman found it dead at the same moment, and won
            raise locked_error(ledger.get_promotion(promotion.id))
        done.append(_take_over(project, ledger, target, promotion, holder, log))
    # A rollout whose promotion ended but which its killed driver did not close.
    for rollout in ledger.open_rollouts(service, env):
        ended = ledger.get_promotion(rollout.promotion_id)
        if ended.status != "intent":
            phase: Literal["promoted", "aborted"] = (
                "promoted" if ended.status == "done" else "aborted"
            )
            ledger.update_rollout(
                rollout.id,
                phase=phase,
                weight=100 if phase == "promoted" else 0,
                detail=f"closed after its promotion #{ended.id} ended {ended.status}",
            )
            done.append(f"closed rollout #{rollout.id} ({phase})")
    # Opening the ledger closed those left before; these ended since (core.ledger.runs).
    for run in close_abandoned(ledger, service, env):
        done.append(f"closed {run.kind} run #{run.id} ({run.reason})")
    for line in done:
        log(line)
    return done


def sweep(project: Project, ledger: Ledger, service: str, env: str, log: Log) -> list[str]:
    """Stop every instance the environment does not route to, and record the environment
    down when it was recorded live and nothing serves it. Call it holding the lock (an open
    promotion of this process): an instance being validated by another promotion would look
    like an orphan too."""
    target = target_for(project, service, env)
    serving = target.serving()
    done = target.sweep(serving)
    state = ledger.environment_state(service, env)
    if state is not None and state.state == "live" and serving is None:
        ledger.set_environment_state(service, env, "down")
        done.append(f"{env} was recorded live but nothing served it: now recorded down")
    for line in done:
        log(line)
    return done


def _take_over(
    project: Project,
    ledger: Ledger,
    target: Target,
    promotion: PromotionRecord,
    holder: str,
    log: Log,
) -> str:
    """Complete the claimed ``promotion`` if its release serves and answers ready, else put
    the previous release back; then stop what else runs (the claim is the lock)."""
    serving = target.serving()
    routing = target.routing()
    if serving is not None and routing is not None and routing.canary is not None:
        # A rollout's split: every request back to the release that serves as stable.
        target.switch(serving)
    serving_new = serving is not None and serving.release == promotion.release_id
    if serving is not None and serving_new and target.health() is None:
        target.sweep(serving)
        ledger.finish_promotion(
            promotion.id,
            "done",
            reason=f"completed after {holder}: the new release was serving",
            url=target.url,
            pid=serving.pid,
        )
        _close_rollouts(ledger, promotion, "promoted", f"completed after {holder}")
        return f"completed interrupted {promotion.kind} #{promotion.id} ({holder})"
    restored = _serve_again(project, target, promotion.previous_release_id, serving, log)
    target.sweep(target.serving())
    ledger.finish_promotion(promotion.id, "undone", reason=f"interrupted ({holder}); {restored}")
    _close_rollouts(ledger, promotion, "aborted", f"interrupted ({holder}); {restored}")
    return f"undid interrupted {promotion.kind} #{promotion.id}: {restored}"


def _close_rollouts(
    ledger: Ledger, promotion: PromotionRecord, phase: Literal["promoted", "aborted"], why: str
) -> None:
    """The rollout that ran under ``promotion`` ends with it (core/delivery/rollout.py)."""
    for rollout in ledger.open_rollouts(promotion.service, promotion.env):
        if rollout.promotion_id == promotion.id:
            weight = 100 if phase == "promoted" else 0
            ledger.update_rollout(rollout.id, phase=phase, weight=weight, detail=why)


def _serve_again(
    project: Project, target: Target, previous: str | None, serving: object, log: Log
) -> str:
    """Make ``previous`` the served release again; the line that says what happened."""
    from core.build.bento_store import find_bento

    running = {instance.release: instance for instance in target.instances()}
    if previous is None:
        target.down()
        return "nothing was live before, so nothing serves now"
    if previous in running:
        if getattr(serving, "release", None) == previous:
            return f"{previous} still serves {target.env}"
        target.switch(running[previous])
        return f"{previous} serves again"
    bento = find_bento(target.service, previous)
    if bento is None:
        target.down()
        return f"{previous} could not be restarted (no Bento for it); nothing serves now"
    try:
        instance = target.start(bento.tag, previous, log=log)
        target.wait_ready(instance, project.config.environments[target.env].ready_timeout)
        target.switch(instance)
    except ReleaseError as exc:
        target.down()
        return f"{previous} failed to restart ({exc}); nothing serves now"
    return f"{previous} restarted and serves again"


@dataclass(frozen=True)
class Observed:
    """What runs in an environment, as far as processes tell, for `status`."""

    release: str | None
    running: bool
    note: str | None


def observe(project: Project, service: str, env: str) -> Observed | None:
    """The truth of a locally served environment, read only; None when relman never
    served it here (no folder, or a stage it does not serve), so the ledger's word stands."""
    if project.config.environments[env].port is None:
        return None
    target = target_for(project, service, env)
    folder = getattr(target, "folder", None)
    if folder is None or not folder.exists():
        return None
    serving = target.serving()
    if serving is None:
        return Observed(None, False, "not running")
    return Observed(serving.release, True, None)

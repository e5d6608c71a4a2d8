"""Automatic rollback: what the collector does when an alert fires where the effective
monitoring policy sets ``auto_rollback`` (docs/monitoring.md, "Policies"). The collector
(core.monitoring.collector) only knows that it may act; ``core.api.monitor`` hands it
:func:`roll_back_on_firing`, which decides from the ledger and rolls back through
`relman rollback`'s own code (core.delivery.rollback), audited as ``relman-collector``.

No loops: the alert must be about the release live now; a release is rolled back
automatically at most once, only to the release `relman rollback` would pick (live there
before, never one a rollback left, so no approvals and never ``--force``); and the next alert
after an automatic rollback pages without acting. A promotion or rollout holding the
environment is not waited for: the alert says why nothing was done, and pages as usual.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.config.model import Project
from core.errors import REPORTED, release_error
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet

if TYPE_CHECKING:
    from core.alerts.alert_state import Transition
    from store import Ledger, PromotionRecord, ReleaseRecord

# The actor of everything the automatic rollback records (ledger runs, promotions, audit).
COLLECTOR_ACTOR = "relman-collector"
# The variable core.ledger.identity reads first when a ledger opens for writing.
_USER_VARIABLE = "RELMAN_USER"
_ACTING = threading.Lock()


@dataclass(frozen=True)
class Plan:
    """What to do about one firing alert: roll back to ``target``; or not, because of
    ``why``; or nothing more, its rollback being ``done`` already (that line)."""

    target: ReleaseRecord | None = None
    why: str = ""
    done: str | None = None


# Rules that page without saying the release got worse: acting on them could undo a fix.
NOT_REGRESSIONS = {
    "latency_drop": "latency fell well below its usual level, which a rollback does not mend "
    "(a release that lost work, or traffic that changed: look before acting)",
}


def alert_line(alert: Transition) -> str:
    """The alert's one line, the reason its rollback records: ``error_rate: error rate
    31.7% > 5.0% for 1 min`` (the reason of the command the alert offers on-call)."""
    return f"{alert.rule}: {alert.detail}"


def plan(ledger: Ledger, alert: Transition) -> Plan | None:
    """The rules, read from the ledger; None when there is nothing to do (the alert is about
    a release no longer live, say one a person rolled back meanwhile)."""
    from core.delivery.rollback import previous_release

    service, env = alert.service, alert.env
    state = ledger.environment_state(service, env)
    live = state.release_id if state is not None and state.state == "live" else None
    done = ledger.done_promotions(service, env)  # newest first
    automatic = [p for p in done if p.kind == "rollback" and p.actor == COLLECTOR_ACTOR]
    if alert.release is None or alert.release != live:
        # This very alert rolled its release back already (its minute judged again after a
        # crash): it still says so. Anything else is no longer the collector's business.
        for rolled in automatic:
            if rolled.previous_release_id == alert.release and _after(rolled, alert):
                return Plan(done=done_line(ledger, rolled))
        return None
    if done and done[0] in automatic:
        last = done[0]
        return Plan(
            why=f"{env} was rolled back automatically to {_named(ledger, last.release_id)} at "
            f"{_clock(last.finished_at)}; a second automatic rollback could loop, so on-call "
            "decides"
        )
    for rolled in automatic:
        if rolled.previous_release_id == live:
            return Plan(
                why=f"{_named(ledger, live)} was rolled back automatically once already (at "
                f"{_clock(rolled.finished_at)}); never twice"
            )
    target = previous_release(ledger, service, env, live)
    if target is None:
        return Plan(why=f"no earlier release was live in {env} to go back to")
    if any(p.previous_release_id == target.id for p in automatic):  # previous_release's rule
        return Plan(why=f"{_name(target)} was itself rolled back automatically")
    return Plan(target=target)


def roll_back_on_firing(project: Project, alert: Transition, *, log: Log = _quiet) -> str | None:
    """Act on a firing ``alert`` (the collector calls it where ``auto_rollback`` is on):
    roll its environment back to the last good release, or record in the audit log why
    not. The line its alert documents then say in place of the rollback command; None when
    it did nothing (the alert is about a release no longer live)."""
    from core.delivery.rollback import rollback
    from core.ledger.releases import open_ledger
    from core.ledger.upgrade import READ_ONLY_VARIABLE

    reason = alert_line(alert)
    if alert.rule in NOT_REGRESSIONS:
        return _not_done(project, alert, NOT_REGRESSIONS[alert.rule], log)
    try:
        with open_ledger(project, read_only=True) as ledger:
            decided = plan(ledger, alert)
    except REPORTED as exc:
        return not_done_line(alert, str(release_error(exc)))
    if decided is None:
        return None
    if decided.done is not None:
        return decided.done
    if decided.target is None:
        return _not_done(project, alert, decided.why, log)
    log(f"{alert.service}/{alert.env}: {reason}: rolling back to {_name(decided.target)}")
    try:
        with acting_as(COLLECTOR_ACTOR):
            report = rollback(
                project,
                alert.service,
                alert.env,
                to=decided.target.id,
                reason=reason,
                read_only=bool(os.environ.get(READ_ONLY_VARIABLE)),
                log=log,
            )
    except REPORTED as exc:  # refused before its run began: a live relman holds the lock
        return _not_done(project, alert, str(release_error(exc)), log)
    if not report.ok:
        return _not_done(project, alert, report.error or "the rollback failed", log)
    try:
        with open_ledger(project, read_only=True) as ledger:
            latest = ledger.done_promotions(alert.service, alert.env)
            if latest and latest[0].actor == COLLECTOR_ACTOR:
                return done_line(ledger, latest[0])
    except REPORTED:
        pass
    return f"rolled back automatically to {_name(decided.target)} by {COLLECTOR_ACTOR}"


def done_line(ledger: Ledger, rolled: PromotionRecord) -> str:
    """``rolled back automatically to v1.0.0 (3f9a2c1) from v1.1.0 (0f9e8d7) at 14:03:10
    by relman-collector``."""
    back = (
        f"from {_named(ledger, rolled.previous_release_id)} " if rolled.previous_release_id else ""
    )
    return (
        f"rolled back automatically to {_named(ledger, rolled.release_id)} {back}at "
        f"{_clock(rolled.finished_at)} by {COLLECTOR_ACTOR}"
    )


def not_done_line(alert: Transition, why: str) -> str:
    """``not rolled back: WHY; to roll back by hand: relman rollback ...``."""
    from core.alerts.alert_state import rollback_command

    command = rollback_command(alert.service, alert.env, alert.rule, alert.detail)
    return f"not rolled back: {' '.join(why.split())}; to roll back by hand: {command}"


def _not_done(project: Project, alert: Transition, why: str, log: Log) -> str:
    """Record in the audit log that the rollback was not done and why; its line."""
    from core.ledger.releases import open_ledger

    line = not_done_line(alert, why)
    log(f"{alert.service}/{alert.env}: {line}")
    try:
        with acting_as(COLLECTOR_ACTOR), open_ledger(project, read_only=False) as ledger:
            ledger.log_event(
                "rollback.auto",
                outcome="not done",
                service=alert.service,
                env=alert.env,
                release_id=alert.release,
                reason=" ".join(why.split()),
                details={"alert": alert.rule, "since": alert.since, "line": alert_line(alert)},
            )
    except REPORTED as exc:
        log(f"could not record it in the ledger: {release_error(exc)}")
    return line


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """``actor`` records what a ledger opened meanwhile in this process writes (and the git
    tags a rollback writes): core.ledger.identity reads ``RELMAN_USER`` when a ledger
    opens for writing. The collector's own actor, whoever started it, is left alone
    outside. One at a time: the variable is the process's."""
    with _ACTING:
        before = os.environ.get(_USER_VARIABLE)
        os.environ[_USER_VARIABLE] = actor
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(_USER_VARIABLE, None)
            else:
                os.environ[_USER_VARIABLE] = before


def _after(rolled: PromotionRecord, alert: Transition) -> bool:
    """Whether ``rolled`` ended after ``alert``'s episode opened."""
    try:
        finished = datetime.fromisoformat(rolled.finished_at or "").timestamp()
    except ValueError:
        return False
    return finished >= alert.opened_minute


def _named(ledger: Ledger, release_id: str | None) -> str:
    if release_id is None:
        return "nothing"
    from store import ReleaseNotFound

    try:
        return _name(ledger.get_release(release_id))
    except ReleaseNotFound:
        return release_id[:12]


def _name(record: ReleaseRecord) -> str:
    """``v1.0.0 (3f9a2c1)``, or the id alone when it has no version."""
    return f"{record.version} ({record.id[:7]})" if record.version else record.id[:12]


def _clock(at: str | None) -> str:
    """A ledger timestamp as the local time of day, as locked_error says it."""
    if not at:
        return "?"
    try:
        return datetime.fromisoformat(at).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return at

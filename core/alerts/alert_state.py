"""The alert of one rule: its states, the transitions between them, and how one reads.

:class:`AlertState` is one rule's alert; :meth:`AlertState.step` moves it on by the rule's
verdict of one minute (core.alerts.alerting feeds it, one rule after the other). States
``pending -> firing -> resolved``:

- a breach opens an alert ``pending`` (or straight ``firing`` when the rule needs no more
  minutes: ``for`` = 1, or a leak);
- ``pending -> firing`` once the breach is sustained ``for`` minutes; ``pending ->
  resolved`` on the first clear minute (the ``for`` streak is broken: it never fired);
- ``firing -> resolved`` only after ``resolve_for_minutes`` consecutive clear minutes (a
  breach in between restarts the count: no flapping);
- **cooldown**: for ``cooldown_minutes`` after a resolution, a new breach does not open a
  new alert. Brief breaches (shorter than ``for``) are ignored, and a sustained one
  *re-opens the same alert* straight to ``firing`` (same ``opened_minute``, ``reopened``
  set): an incident that comes back within minutes is the same incident, and on-call gets
  neither a new page nor a pending/resolved ping-pong. After the cooldown, normal rules.
  (The alert's ``opened_minute`` is kept; a store that keeps resolved alerts as final
  history records the re-opening as a new alert opened straight in ``firing``.)

One open alert per rule at most (dedupe): a rule only emits a :class:`Transition` when its
state changes. A minute without data (value None) holds the state.

An open alert's line says the latest minute and the worst one of the episode
(``error rate 31.7% (worst 33.0%) > 5.0% for 4 min``): on-call reads how bad it is now and
how bad it got, not the minute it opened. The worst is the highest value (every rule watches
a quantity where more is worse; a verdict whose detail cannot show one has no ``unit``).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from core.alerts.detect import Verdict
    from core.documents import AlertEntry

State = Literal["pending", "firing", "resolved"]


def iso_minute(t: int | float) -> str:
    """Unix seconds as ISO-8601 UTC, e.g. ``2025-01-31T12:03:00+00:00``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def rollback_command(service: str, env: str, rule: str, detail: str) -> str:
    """``relman rollback SERVICE --env ENV --reason '<rule>: <detail>'``, shell-quoted."""
    reason = f"{rule}: {detail}"
    return (
        f"relman rollback {shlex.quote(service)} --env {shlex.quote(env)}"
        f" --reason {shlex.quote(reason)}"
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change of one rule's alert, at minute ``since_minute`` (Unix seconds of the
    minute's start). ``release`` is the release live at that minute (or the last known one).

    Persisting: ``pending``/``firing`` when the rule has no open alert opens one (straight
    in ``firing`` when the rule needs no more minutes, or when ``reopened``); any other
    transition moves the open alert on. ``opened_minute`` names the episode (shared by its
    pending/firing/resolved transitions and by a re-opening within the cooldown); a store
    whose resolved alerts are final history records a ``reopened`` transition as a new
    alert opened ``firing`` -- its detail says it came back within the cooldown."""

    rule: str
    kind: str
    state: State
    since_minute: int
    detail: str
    value: float | None
    threshold: float | None
    baseline: float | None
    release: str | None
    rollback: str
    service: str
    env: str
    metric: str | None
    opened_minute: int
    reopened: bool = False
    # Another rule of the same cause fires: this transition belongs to its incident, is
    # stored, and is not paged (core.alerts.alerting, "page once").
    grouped_with: str | None = None

    @property
    def since(self) -> str:
        return iso_minute(self.since_minute)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def document(self) -> dict[str, Any]:
        """The ``alerts`` entry (docs/json.md), as the webhook posts and the store keeps it."""
        return {**alert_document(self)}


def alert_document(
    row: Transition | Mapping[str, Any],
    *,
    service: str | None = None,
    env: str | None = None,
) -> AlertEntry:
    """The ``alerts`` entry of docs/json.md ``{"name", "kind", "service", "env", "state", "since",
    "detail", "release", "rollback"}`` from a :class:`Transition` or an alert row (a mapping
    with ``name`` or ``rule``; ``since`` as Unix seconds, ISO text or a datetime; ``value``,
    ``threshold``, ``baseline``, ``opened`` are carried along when present)."""
    if isinstance(row, Transition):
        data: dict[str, Any] = {**row.to_dict(), "name": row.rule, "since": row.since_minute}
    else:
        data = dict(row)
    # An untyped row (the store's or a transition's): tests/contract checks the values.
    get: Callable[[str], Any] = data.get
    since = get("since")
    if isinstance(since, datetime):
        since = since.astimezone(UTC).isoformat(timespec="seconds")
    elif isinstance(since, int | float) and not isinstance(since, bool):
        since = iso_minute(since)
    doc: AlertEntry = {
        "name": get("name") or get("rule"),
        "kind": get("kind"),
        "service": service if service is not None else get("service"),
        "env": env if env is not None else get("env"),
        "state": get("state"),
        "since": since,
        "detail": data.get("detail", ""),
        "release": get("release"),
        "rollback": get("rollback"),
    }
    if "value" in data:
        doc["value"] = data["value"]
    if "threshold" in data:
        doc["threshold"] = data["threshold"]
    if "baseline" in data:
        doc["baseline"] = data["baseline"]
    if data.get("grouped_with"):
        doc["grouped_with"] = str(data["grouped_with"])
    return doc


@dataclass(slots=True)
class AlertState:
    """The alert of one rule: ``status`` is ``inactive`` (none yet), ``pending``,
    ``firing`` or ``resolved`` (the last one, kept for the cooldown)."""

    status: str = "inactive"
    opened: int | None = None
    since: int | None = None
    resolved_at: int | None = None
    clear: int = 0
    release: str | None = None
    detail: str = ""
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    worst: float | None = None  # the highest value of the open episode
    # What was done about the episode (an automatic rollback, or why there was none): its
    # documents say this line in place of the rollback command, until a new episode.
    action: str | None = None
    # The rule that paged for the incident this episode joined (core.alerts.alerting).
    grouped_with: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def step(
        self,
        verdict: Verdict,
        minute: int,
        *,
        opening_release: str | None,
        resolve_for: int,
        cooldown_minutes: int,
        interval: int = 60,
    ) -> tuple[State, str, bool] | None:
        """Move the alert on by the rule's verdict of ``minute`` (see the module doc). When
        its state changed: the new state, its detail line, and whether it re-opened within
        the cooldown; None when it holds. ``opening_release``: recorded by a new alert.
        ``resolve_for`` counts points, ``interval`` seconds apart (the collector's minutes)."""
        if verdict.value is None:
            return None  # no data: hold
        if self.status in ("pending", "firing"):
            self._remember(verdict)
        if self.status == "pending":
            if not verdict.breaching:
                self.status, self.resolved_at = "resolved", minute
                return "resolved", f"{self.detail}; cleared before firing", False
            if verdict.fires:
                self.status = "firing"
                return "firing", self.detail, False
            return None
        if self.status == "firing":
            if verdict.breaching:
                self.clear = 0
                return None
            self.clear += 1
            if self.clear < resolve_for:
                return None
            self.status, self.resolved_at = "resolved", minute
            minutes = self.clear * interval / 60
            return "resolved", f"{self.detail}; clear for {minutes:g} min", False
        # inactive, or resolved: a new breach
        if not verdict.breaching:
            return None
        cooling = (
            self.status == "resolved"
            and self.resolved_at is not None
            and minute - self.resolved_at < cooldown_minutes * 60
        )
        if cooling:
            if not verdict.fires:
                return None  # a brief breach within the cooldown: ignored
            self.status, self.clear, self.worst = "firing", 0, None
            self._remember(verdict)
            detail = f"{self.detail}; re-opened within the {cooldown_minutes} min cooldown"
            return "firing", detail, True
        self.opened, self.clear, self.resolved_at, self.worst = minute, 0, None, None
        self.release, self.action = opening_release, None
        self._remember(verdict)
        state: State = "firing" if verdict.fires else "pending"
        self.status = state
        return state, self.detail, False

    def _remember(self, verdict: Verdict) -> None:
        """The minute's values, the episode's worst, and the line that says both."""
        value = verdict.value
        if value is not None and (self.worst is None or value > self.worst):
            self.worst = value
        self.detail = with_worst(verdict, self.worst)
        self.value = value
        self.threshold = verdict.threshold
        self.baseline = verdict.baseline


def with_worst(verdict: Verdict, worst: float | None) -> str:
    """The verdict's detail with the episode's worst value beside the minute's, when they
    read differently: ``error rate 31.7% (worst 33.0%) > 5.0% for 4 min``."""
    from core.alerts.detect import format_value

    if verdict.unit is None or verdict.value is None or worst is None:
        return verdict.detail
    shown = format_value(verdict.value, verdict.unit)
    worst_shown = format_value(worst, verdict.unit)
    if worst_shown == shown or shown not in verdict.detail:
        return verdict.detail
    return verdict.detail.replace(shown, f"{shown} (worst {worst_shown})", 1)

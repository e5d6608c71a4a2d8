"""Alert rules of one (service, environment), their state machine, and the webhook.

:class:`Rules` is built from an effective monitoring policy (a mapping of the parameters in
:data:`DEFAULTS`) and fed one minute at a time by the collector::

    rules = Rules(policy, service="iris", env="prod")
    for transition in rules.evaluate(minute, point, release=rel, up=True, drift=psi):
        ...  # persist it (one alert row per episode), POST it to the webhook
    saved = rules.to_dict()            # JSON; Rules.from_dict(saved) resumes after a restart

Pure and storage-agnostic: it returns :class:`Transition` objects and never touches a
database, a clock or the network (except :func:`send_webhook`, on request).

Rules and kinds: ``latency_p99`` and ``error_rate`` (``sudden``: a threshold sustained
``for`` minutes), ``latency_leak`` (on ``leak_metric``) and ``error_leak`` (``leak``: the
CUSUM of :mod:`core.detect` against the release's own baseline), ``down`` (the scrape
failed or /readyz was not 200), ``drift:FEATURE`` (``drift``: PSI of one feature above
``drift_psi_max``; one rule per feature the collector reports), ``performance`` (live
accuracy more than ``accuracy_max_drop`` below the release's offline metric).

States of one rule's alert, ``pending -> firing -> resolved``:

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

One open alert per rule at most (dedupe): a rule only emits a transition when its state
changes. Minutes without data (value None) hold the state. A minute at or before the last
one evaluated is ignored (the collector may re-feed a minute after a restart).
"""

from __future__ import annotations

import json
import math
import shlex
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.detect import (
    METRIC_LABELS,
    METRIC_UNITS,
    Cusum,
    Detector,
    Threshold,
    Verdict,
)
from core.errors import ConfigError

PolicyValue = float | str | bool
# An effective policy: parameter name -> value (None, or a missing name: the default).
Policy = Mapping[str, PolicyValue | None]
State = Literal["pending", "firing", "resolved"]
Kind = Literal["sudden", "leak", "drift", "performance", "down"]

# The built-in layer of the policy cascade (core/policies.py imports it).
DEFAULTS: dict[str, PolicyValue] = {
    "latency_p99_ms": 500,
    "latency_for_minutes": 2,
    "error_rate_max": 0.05,
    "error_for_minutes": 2,
    "resolve_for_minutes": 2,
    "cooldown_minutes": 5,
    "leak_metric": "p95_ms",
    "leak_baseline_minutes": 10,
    "leak_k": 0.5,
    "leak_h": 8.0,
    "leak_min_sigma_ms": 2.0,
    "drift_psi_max": 0.2,
    "drift_window_minutes": 15,
    "drift_min_records": 200,  # PSI of 50 unshifted rows exceeds 0.2 most of the time
    "accuracy_max_drop": 0.05,
    "down_for_minutes": 1,
}

# One line per parameter, for `relman policy explain`.
DESCRIPTIONS: dict[str, str] = {
    "latency_p99_ms": "p99 latency above which the latency_p99 rule breaches (ms)",
    "latency_for_minutes": "minutes the p99 must stay above its limit before firing",
    "error_rate_max": "error rate (fraction of requests) above which error_rate breaches",
    "error_for_minutes": "minutes the error rate must stay above its limit before firing",
    "resolve_for_minutes": "consecutive clear minutes before a firing alert resolves",
    "cooldown_minutes": "minutes after a resolution during which a breach re-opens it",
    "leak_metric": "latency series watched for slow leaks (p50_ms, p95_ms, p99_ms)",
    "leak_baseline_minutes": "minutes of a new release that make its baseline",
    "leak_k": "CUSUM allowance, in baseline sigmas",
    "leak_h": "CUSUM decision threshold, in baseline sigmas",
    "leak_min_sigma_ms": "floor of the latency baseline's spread (ms)",
    "drift_psi_max": "PSI of a feature above which its drift rule fires",
    "drift_window_minutes": "minutes of logged records compared with the reference",
    "drift_min_records": "records needed in the window before drift is computed",
    "accuracy_max_drop": "live accuracy below the offline metric by more than this fires",
    "down_for_minutes": "minutes down (scrape failed or /readyz not 200) before firing",
}

METRICS = ("rps", "error_rate", "p50_ms", "p95_ms", "p99_ms")
LEAK_METRICS = ("p50_ms", "p95_ms", "p99_ms")
# Floor of the error-rate baseline's spread: a healthy service often has exactly 0 errors,
# and one failed request among a few dozen must not read as many sigmas.
ERROR_RATE_MIN_SIGMA = 0.005

_INT_PARAMS = {
    "latency_for_minutes": 1,
    "error_for_minutes": 1,
    "resolve_for_minutes": 1,
    "cooldown_minutes": 0,
    "leak_baseline_minutes": 2,
    "drift_window_minutes": 1,
    "drift_min_records": 1,
    "down_for_minutes": 1,
}
_POSITIVE = {"latency_p99_ms", "error_rate_max", "leak_h", "drift_psi_max"}
_NON_NEGATIVE = {"leak_k", "leak_min_sigma_ms", "accuracy_max_drop"}


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"monitoring parameter {name} must be a number, not {value!r}")
    return float(value)


def check_policy(policy: Policy, *, strict: bool = False) -> dict[str, PolicyValue]:
    """The effective parameters: ``policy`` over :data:`DEFAULTS`, checked (types, ranges,
    whole minutes). ``strict`` also rejects unknown names. Raises ConfigError naming the
    parameter."""
    if strict:
        unknown = sorted(set(policy) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"unknown monitoring parameter {unknown[0]}; known: {', '.join(DEFAULTS)}"
            )
    out: dict[str, PolicyValue] = {}
    for name, default in DEFAULTS.items():
        value = policy.get(name)
        if value is None:
            value = default
        if name == "leak_metric":
            if value not in LEAK_METRICS:
                raise ConfigError(
                    f"monitoring parameter leak_metric must be one of "
                    f"{', '.join(LEAK_METRICS)}, not {value!r}"
                )
            out[name] = str(value)
            continue
        number = _number(name, value)
        if name in _INT_PARAMS:
            if number != int(number) or number < _INT_PARAMS[name]:
                raise ConfigError(
                    f"monitoring parameter {name} must be a whole number >= "
                    f"{_INT_PARAMS[name]}, not {value!r}"
                )
            out[name] = int(number)
        elif name in _POSITIVE and number <= 0:
            raise ConfigError(f"monitoring parameter {name} must be > 0, not {value!r}")
        elif name in _NON_NEGATIVE and number < 0:
            raise ConfigError(f"monitoring parameter {name} must be >= 0, not {value!r}")
        else:
            out[name] = number
    return out


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

    @property
    def since(self) -> str:
        return iso_minute(self.since_minute)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def document(self) -> dict[str, Any]:
        """DESIGN.md's ``alerts`` entry."""
        return alert_document(self)


def alert_document(
    row: Transition | Mapping[str, Any],
    *,
    service: str | None = None,
    env: str | None = None,
) -> dict[str, Any]:
    """DESIGN.md's ``alerts`` entry ``{"name", "kind", "service", "env", "state", "since",
    "detail", "release", "rollback"}`` from a :class:`Transition` or an alert row (a mapping
    with ``name`` or ``rule``; ``since`` as Unix seconds, ISO text or a datetime; ``value``,
    ``threshold``, ``baseline``, ``opened`` are carried along when present)."""
    if isinstance(row, Transition):
        data: dict[str, Any] = {**row.to_dict(), "name": row.rule, "since": row.since_minute}
    else:
        data = dict(row)
    since = data.get("since")
    if isinstance(since, datetime):
        since = since.astimezone(UTC).isoformat(timespec="seconds")
    elif isinstance(since, int | float) and not isinstance(since, bool):
        since = iso_minute(since)
    doc: dict[str, Any] = {
        "name": data.get("name") or data.get("rule"),
        "kind": data.get("kind"),
        "service": service if service is not None else data.get("service"),
        "env": env if env is not None else data.get("env"),
        "state": data.get("state"),
        "since": since,
        "detail": data.get("detail", ""),
        "release": data.get("release"),
        "rollback": data.get("rollback"),
    }
    for extra in ("value", "threshold", "baseline"):
        if extra in data:
            doc[extra] = data[extra]
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AlertState:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(slots=True)
class _Rule:
    name: str
    kind: Kind
    metric: str | None
    detector: Detector
    alert: AlertState


class Rules:
    """Every alert rule of one (service, env) and their alert states."""

    def __init__(
        self,
        policy: Policy,
        *,
        service: str,
        env: str,
        only: Collection[str] | None = None,
    ) -> None:
        """``only``: the rule names to evaluate (``drift`` for every drift rule); all by
        default. Raises ConfigError on an invalid parameter."""
        self.policy = check_policy(policy)
        self.service = service
        self.env = env
        self.only = frozenset(only) if only is not None else None
        self.last_minute: int | None = None
        self.release: str | None = None
        self._rules: dict[str, _Rule] = {}
        p = self.policy
        leak_metric = str(p["leak_metric"])
        self._add(
            "latency_p99",
            "sudden",
            "p99_ms",
            Threshold(
                float(p["latency_p99_ms"]),
                int(p["latency_for_minutes"]),
                label="p99",
                unit="ms",
            ),
        )
        self._add(
            "error_rate",
            "sudden",
            "error_rate",
            Threshold(
                float(p["error_rate_max"]),
                int(p["error_for_minutes"]),
                label="error rate",
                unit="%",
            ),
        )
        self._add(
            "latency_leak",
            "leak",
            leak_metric,
            self._cusum(float(p["leak_min_sigma_ms"]), leak_metric),
        )
        self._add(
            "error_leak", "leak", "error_rate", self._cusum(ERROR_RATE_MIN_SIGMA, "error_rate")
        )
        self._add("down", "down", None, Threshold(0.5, int(p["down_for_minutes"]), label="down"))
        self._add(
            "performance",
            "performance",
            None,
            Threshold(float(p["accuracy_max_drop"]), 1, label="accuracy drop"),
        )

    def _cusum(self, min_sigma: float, metric: str) -> Cusum:
        p = self.policy
        return Cusum(
            baseline_minutes=int(p["leak_baseline_minutes"]),
            k=float(p["leak_k"]),
            h=float(p["leak_h"]),
            min_sigma=min_sigma,
            label=METRIC_LABELS[metric],
            unit=METRIC_UNITS[metric],
        )

    def _wanted(self, name: str) -> bool:
        if self.only is None:
            return True
        return name in self.only or (name.startswith("drift:") and "drift" in self.only)

    def _add(self, name: str, kind: Kind, metric: str | None, detector: Detector) -> None:
        if self._wanted(name):
            self._rules[name] = _Rule(name, kind, metric, detector, AlertState())

    def _drift_rule(self, feature: str) -> _Rule | None:
        name = f"drift:{feature}"
        if name not in self._rules:
            limit = float(self.policy["drift_psi_max"])
            self._add(name, "drift", None, Threshold(limit, 1, label=f"{feature} PSI"))
        return self._rules.get(name)

    @property
    def names(self) -> list[str]:
        """The rules evaluated, in order (drift rules appear as features are reported)."""
        return list(self._rules)

    def rule_metric(self, name: str) -> str | None:
        """The per-minute metric a rule reads (None for down, drift, performance)."""
        return self._rules[name].metric

    # -- evaluation -------------------------------------------------------------------

    def evaluate(
        self,
        minute: int,
        point: Mapping[str, float | None],
        *,
        release: str | None,
        up: bool,
        drift: Mapping[str, float] | None = None,
        accuracy: tuple[float, float] | None = None,
    ) -> list[Transition]:
        """Feed one minute (Unix seconds of its start) to every rule; the alerts whose state
        changed. ``point``: rps, error_rate, p50_ms, p95_ms, p99_ms (None: no data).
        ``release``: the release live (None: unknown, e.g. down; leak baselines reset when
        it changes). ``up``: the scrape and /readyz succeeded. ``drift``: PSI per feature
        over the last ``drift_window_minutes`` (None or a missing feature: not computed,
        e.g. fewer than ``drift_min_records`` records). ``accuracy``: (live, offline)."""
        if self.last_minute is not None and minute <= self.last_minute:
            return []
        self.last_minute = minute
        if release is not None:
            self.release = release
        if drift:
            for feature in drift:
                self._drift_rule(feature)
        out: list[Transition] = []
        for rule in self._rules.values():
            verdict = self._verdict(rule, minute, point, release, up, drift, accuracy)
            transition = self._step(rule, verdict, minute, release)
            if transition is not None:
                out.append(transition)
        return out

    def _verdict(
        self,
        rule: _Rule,
        minute: int,
        point: Mapping[str, float | None],
        release: str | None,
        up: bool,
        drift: Mapping[str, float] | None,
        accuracy: tuple[float, float] | None,
    ) -> Verdict:
        if rule.metric is not None:
            return rule.detector.update(minute, point.get(rule.metric), release)
        if rule.kind == "down":
            verdict = rule.detector.update(minute, 0.0 if up else 1.0)
            if verdict.breaching:
                streak = getattr(rule.detector, "streak", 1)
                detail = f"down for {streak} min: scrape failed or /readyz not 200"
            else:
                detail = "up: scrape and /readyz answer"
            return _with(verdict, detail, value=1.0 if not up else 0.0)
        if rule.kind == "drift":
            feature = rule.name.removeprefix("drift:")
            psi = drift.get(feature) if drift else None
            verdict = rule.detector.update(minute, psi)
            if psi is None:
                return verdict
            window = int(self.policy["drift_window_minutes"])
            limit = float(self.policy["drift_psi_max"])
            op = ">" if verdict.breaching else "<="
            detail = f"{feature} PSI {psi:.2f} {op} {limit:.2f} over the last {window} min"
            return _with(verdict, detail)
        # performance: the drop of live accuracy below the offline metric
        if accuracy is None:
            return rule.detector.update(minute, None)
        live, offline = accuracy
        drop = offline - live
        verdict = rule.detector.update(minute, drop)
        max_drop = float(self.policy["accuracy_max_drop"])
        if verdict.breaching:
            detail = (
                f"live accuracy {live:.3f}, {drop:.3f} below offline {offline:.3f}"
                f" (max drop {max_drop:.3f})"
            )
        else:
            detail = f"live accuracy {live:.3f}, offline {offline:.3f} (max drop {max_drop:.3f})"
        return _with(verdict, detail, baseline=offline)

    def _step(
        self, rule: _Rule, verdict: Verdict, minute: int, release: str | None
    ) -> Transition | None:
        alert = rule.alert
        if verdict.value is None:
            return None  # no data: hold
        if alert.status in ("pending", "firing"):
            _remember(alert, verdict)
        if alert.status == "pending":
            if not verdict.breaching:
                alert.status, alert.resolved_at = "resolved", minute
                detail = f"{verdict.detail}; cleared before firing"
                return self._emit(rule, "resolved", minute, verdict, detail, release)
            if verdict.fires:
                alert.status = "firing"
                return self._emit(rule, "firing", minute, verdict, verdict.detail, release)
            return None
        if alert.status == "firing":
            if verdict.breaching:
                alert.clear = 0
                return None
            alert.clear += 1
            needed = int(self.policy["resolve_for_minutes"])
            if alert.clear < needed:
                return None
            alert.status, alert.resolved_at = "resolved", minute
            detail = f"{verdict.detail}; clear for {alert.clear} min"
            return self._emit(rule, "resolved", minute, verdict, detail, release)
        # inactive, or resolved: a new breach
        if not verdict.breaching:
            return None
        cooldown = int(self.policy["cooldown_minutes"]) * 60
        cooling = (
            alert.status == "resolved"
            and alert.resolved_at is not None
            and minute - alert.resolved_at < cooldown
        )
        if cooling:
            if not verdict.fires:
                return None  # a brief breach within the cooldown: ignored
            alert.status, alert.clear = "firing", 0
            _remember(alert, verdict)
            minutes = int(self.policy["cooldown_minutes"])
            detail = f"{verdict.detail}; re-opened within the {minutes} min cooldown"
            return self._emit(rule, "firing", minute, verdict, detail, release, reopened=True)
        alert.opened, alert.clear, alert.resolved_at = minute, 0, None
        alert.release = release if release is not None else self.release
        _remember(alert, verdict)
        state: State = "firing" if verdict.fires else "pending"
        alert.status = state
        return self._emit(rule, state, minute, verdict, verdict.detail, release)

    def _emit(
        self,
        rule: _Rule,
        state: State,
        minute: int,
        verdict: Verdict,
        detail: str,
        release: str | None,
        *,
        reopened: bool = False,
    ) -> Transition:
        alert = rule.alert
        alert.since = minute
        alert.detail = detail
        live = release if release is not None else (self.release or alert.release)
        if live is not None:
            alert.release = live
        return Transition(
            rule=rule.name,
            kind=rule.kind,
            state=state,
            since_minute=minute,
            detail=detail,
            value=verdict.value,
            threshold=verdict.threshold,
            baseline=verdict.baseline,
            release=alert.release,
            rollback=rollback_command(self.service, self.env, rule.name, detail),
            service=self.service,
            env=self.env,
            metric=rule.metric,
            opened_minute=alert.opened if alert.opened is not None else minute,
            reopened=reopened,
        )

    def current(self) -> list[Transition]:
        """The open alerts (pending or firing) as of the last minute, with their latest
        detail and values (for a pane that says why it fires *now*)."""
        out: list[Transition] = []
        for rule in self._rules.values():
            a = rule.alert
            if a.status not in ("pending", "firing") or a.since is None:
                continue
            state: State = "firing" if a.status == "firing" else "pending"
            out.append(
                Transition(
                    rule=rule.name,
                    kind=rule.kind,
                    state=state,
                    since_minute=a.since,
                    detail=a.detail,
                    value=a.value,
                    threshold=a.threshold,
                    baseline=a.baseline,
                    release=a.release,
                    rollback=rollback_command(self.service, self.env, rule.name, a.detail),
                    service=self.service,
                    env=self.env,
                    metric=rule.metric,
                    opened_minute=a.opened if a.opened is not None else a.since,
                )
            )
        return out

    # -- persistence --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to resume (JSON-compatible)."""
        return {
            "version": 1,
            "service": self.service,
            "env": self.env,
            "policy": dict(self.policy),
            "only": sorted(self.only) if self.only is not None else None,
            "last_minute": self.last_minute,
            "release": self.release,
            "rules": {
                name: {"detector": rule.detector.to_dict(), "alert": rule.alert.to_dict()}
                for name, rule in self._rules.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], policy: Policy | None = None) -> Rules:
        """Resume from :meth:`to_dict`. With a (changed) ``policy``, alert states are kept,
        and a detector keeps its state only if its own parameters did not change (a new
        ``leak_h`` keeps the learned baseline and sum; a new ``leak_baseline_minutes``
        relearns it)."""
        only = data.get("only")
        rules = cls(
            policy if policy is not None else data.get("policy", {}),
            service=str(data["service"]),
            env=str(data["env"]),
            only=only if only is not None else None,
        )
        last = data.get("last_minute")
        rules.last_minute = int(last) if last is not None else None
        release = data.get("release")
        rules.release = str(release) if release is not None else None
        for name, saved in dict(data.get("rules", {})).items():
            rule = rules._rules.get(name)
            if rule is None and name.startswith("drift:"):
                rule = rules._drift_rule(name.removeprefix("drift:"))
            if rule is None:
                continue
            rule.detector.load_state(saved.get("detector", {}))
            rule.alert = AlertState.from_dict(saved.get("alert", {}))
        return rules


def _with(
    verdict: Verdict,
    detail: str,
    *,
    value: float | None = None,
    baseline: float | None = None,
) -> Verdict:
    return Verdict(
        verdict.breaching,
        verdict.value if value is None else value,
        verdict.threshold,
        verdict.baseline if baseline is None else baseline,
        detail,
        sustained=verdict.sustained,
        score=verdict.score,
    )


def _remember(alert: AlertState, verdict: Verdict) -> None:
    alert.detail = verdict.detail
    alert.value = verdict.value
    alert.threshold = verdict.threshold
    alert.baseline = verdict.baseline


def send_webhook(url: str, payload: Mapping[str, Any], timeout: float = 5) -> str | None:
    """POST ``payload`` as JSON to ``url``. None when answered 2xx, else one error line
    (``webhook http://...: HTTP 500 Internal Server Error``); never raises on network
    errors. Only http and https URLs."""
    if not url.startswith(("http://", "https://")):
        return f"webhook {url}: not an http(s) URL"
    try:
        body = json.dumps(payload, default=str).encode()
    except (TypeError, ValueError) as exc:
        return f"webhook {url}: payload is not JSON ({exc})"
    try:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "relman-alerts"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(65536)
    except urllib.error.HTTPError as exc:
        return f"webhook {url}: HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"webhook {url}: {_reason(exc.reason)}"
    except (TimeoutError, OSError, ValueError) as exc:
        return f"webhook {url}: {_reason(exc)}"
    if not 200 <= status < 300:
        return f"webhook {url}: HTTP {status}"
    return None


def _reason(reason: object) -> str:
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, TimeoutError) or text == "timed out":
        return "timed out"
    return text

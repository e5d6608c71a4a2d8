"""Alert rules of one (service, environment): their parameters, and the evaluation, minute
by minute, that moves their alerts.

:class:`Rules` is built from an effective monitoring policy (a mapping of the parameters in
:data:`DEFAULTS`, checked by :func:`check_policy`) and fed one minute at a time by the
collector::

    rules = Rules(policy, service="iris", env="prod")
    for transition in rules.evaluate(minute, point, release=rel, up=True, drift=psi):
        ...  # persist it (one alert row per episode), POST it to the webhook
    saved = rules.to_dict()            # JSON; Rules.from_dict(saved) resumes after a restart

Pure and storage-agnostic: it returns :class:`~core.alerts.alert_state.Transition` objects and
never touches a database, a clock or the network. What each rule watches and how it reads
a minute is :mod:`core.alerts.alert_rules`; how its alert goes ``pending -> firing -> resolved``
(cooldown, dedupe) is :mod:`core.alerts.alert_state`; the webhook is
:mod:`core.alerts.webhook`. A minute
at or before the last one evaluated is ignored (the collector may re-feed a minute after a
restart).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from core.alerts.alert_rules import Rule, drift_rule, points, standard_rules
from core.alerts.alert_state import AlertState, State, Transition, rollback_command
from core.alerts.detect import Verdict
from core.alerts.regression import Regression
from core.alerts.seasonal import Expectation, History, Seasonal
from core.errors import ConfigError

PolicyValue = float | str | bool
# Seconds from a release's start over which its level against the past is learned (the
# drop rule's scale: Rules._as_release_runs).
RELEASE_RUNS = 3600
# (oldest, newest) seconds before now whose values tell how today runs against the past.
TODAY_WINDOW = (3 * 3600, 30 * 60)
# An effective policy: parameter name -> value (None, or a missing name: the default).
Policy = Mapping[str, PolicyValue | None]

# The built-in layer of the policy cascade (core/alerts/policies.py imports it).
DEFAULTS: dict[str, PolicyValue] = {
    "latency_p99_ms": 500,
    "latency_for_minutes": 2,
    "error_rate_max": 0.05,
    "error_for_minutes": 2,
    "resolve_for_minutes": 2,
    "cooldown_minutes": 5,
    "season": "auto",
    "regression_ratio": 1.5,
    "regression_z": 4.0,
    "regression_for_minutes": 3,
    "regression_severe_ratio": 2.0,
    "regression_severe_z": 5.0,
    "regression_severe_for_minutes": 2,
    "drop_ratio": 2.0,
    "drop_for_minutes": 15,
    "trend_window_minutes": 30,
    "trend_min_slope": 0.01,
    "trend_p_max": 0.001,
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

# One line per parameter, for `relman policy explain` (its JSON's "description").
DESCRIPTIONS: dict[str, str] = {
    "scrape_interval": "seconds between two scrapes of each live environment",
    "raw_retention_hours": "hours raw scrapes and logged inputs are kept",
    "rollup_retention_days": "days the per-minute rollups are kept (alerts stay as history)",
    "webhook": "URL that receives a JSON POST when an alert fires or resolves",
    "latency_p99_ms": "p99 latency above which the latency_p99 rule breaches (ms)",
    "latency_for_minutes": "minutes the p99 must stay above its limit before firing",
    "error_rate_max": "error rate (fraction of requests) above which error_rate breaches",
    "error_for_minutes": "minutes the error rate must stay above its limit before firing",
    "resolve_for_minutes": "consecutive clear minutes before a firing alert resolves",
    "cooldown_minutes": "minutes after a resolution during which a breach re-opens it",
    "season": "which earlier days the baselines compare with: auto (the season that "
    "predicted the last day best; for the regression rules the last hours' level competes), "
    "daily, weekly, recent (the last 3 hours, regression rules only), or none (only the "
    "hour before the release)",
    "regression_ratio": "latency_regression breaches at this many times the baseline "
    "(and regression_z spreads above it)",
    "regression_z": "spreads (robust sigmas) above the baseline latency_regression needs",
    "regression_for_minutes": "minutes latency_regression must breach before firing",
    "regression_severe_ratio": "latency_regression fires without waiting at this many times "
    "the baseline (and regression_severe_z spreads above it)",
    "regression_severe_z": "spreads above the baseline the severe tier of latency_regression "
    "needs (the spread read from the usual peak where the series is bursty)",
    "regression_severe_for_minutes": "minutes the severe tier must hold (one point of "
    "five-minute data, two of one-minute data)",
    "drop_ratio": "latency_drop fires when the median of its window is this many times below "
    "the baseline (and regression_z standard errors)",
    "drop_for_minutes": "minutes whose median latency_drop compares with the baseline",
    "trend_window_minutes": "minutes of the release the latency_trend test looks back over",
    "trend_min_slope": "rise per minute, as a fraction of the level, latency_trend needs "
    "(0.01: 1%/min)",
    "trend_p_max": "Mann-Kendall p-value below which the rise is significant",
    "leak_metric": "latency series the regression, trend and leak rules watch "
    "(p50_ms, p95_ms, p99_ms)",
    "leak_baseline_minutes": "minutes of a new release that make its baseline",
    "leak_k": "CUSUM allowance, in baseline sigmas",
    "leak_h": "CUSUM decision threshold, in baseline sigmas",
    "leak_min_sigma_ms": "floor of the latency baseline's spread (ms)",
    "drift_psi_max": "PSI of a feature above which its drift rule fires",
    "drift_window_minutes": "minutes of logged records compared with the reference",
    "drift_min_records": "records needed in the window before drift is computed",
    "accuracy_max_drop": "live accuracy below the offline metric by more than this fires",
    "down_for_minutes": "minutes down (scrape failed or /readyz not 200) before firing",
    "auto_rollback": "roll the environment back to its last good release when an alert fires "
    "(once per release; a second firing pages instead)",
}

METRICS = ("rps", "error_rate", "p50_ms", "p95_ms", "p99_ms")
LEAK_METRICS = ("p50_ms", "p95_ms", "p99_ms")

_INT_PARAMS = {
    "latency_for_minutes": 1,
    "error_for_minutes": 1,
    "resolve_for_minutes": 1,
    "cooldown_minutes": 0,
    "leak_baseline_minutes": 2,
    "regression_for_minutes": 1,
    "regression_severe_for_minutes": 1,
    "drop_for_minutes": 1,
    "trend_window_minutes": 3,
    "drift_window_minutes": 1,
    "drift_min_records": 1,
    "down_for_minutes": 1,
}
_POSITIVE = {
    "latency_p99_ms",
    "error_rate_max",
    "leak_h",
    "drift_psi_max",
    "regression_z",
    "regression_severe_z",
    "trend_min_slope",
}
# Parameters with bounds of their own: (low, high), exclusive.
_BETWEEN = {
    "regression_ratio": (1.0, math.inf),
    "regression_severe_ratio": (1.0, math.inf),
    "drop_ratio": (1.0, math.inf),
    "trend_p_max": (0.0, 1.0),
}
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
        if name == "season":
            from core.alerts.seasonal import SEASONS

            if value not in SEASONS:
                raise ConfigError(
                    f"monitoring parameter season must be one of {', '.join(SEASONS)}, "
                    f"not {value!r}"
                )
            out[name] = str(value)
            continue
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
        elif name in _BETWEEN and not _BETWEEN[name][0] < number < _BETWEEN[name][1]:
            low, high = _BETWEEN[name]
            bound = f"> {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
            raise ConfigError(f"monitoring parameter {name} must be {bound}, not {value!r}")
        else:
            out[name] = number
    return out


class Rules:
    """Every alert rule of one (service, env) and their alert states."""

    def __init__(
        self,
        policy: Policy,
        *,
        service: str,
        env: str,
        only: Collection[str] | None = None,
        interval: int = 60,
    ) -> None:
        """``only``: the rule names to evaluate (``drift`` for every drift rule); all by
        default. ``interval``: seconds between two points of the series (the collector's
        minutes; a backtest's own). Raises ConfigError on an invalid parameter."""
        self.policy = check_policy(policy)
        self.service = service
        self.env = env
        self.only = frozenset(only) if only is not None else None
        self.interval = int(interval)
        self.last_minute: int | None = None
        self.release: str | None = None
        # The first minute of the release live now (its "before" is the baseline when the
        # environment has no earlier day).
        self.release_start: int | None = None
        # The open alerts whose line changed in the last minute evaluated, their state held.
        self.refreshed: list[Transition] = []
        self._rules: dict[str, Rule] = {}
        for rule in standard_rules(self.policy, self.interval):
            self._add(rule)
        self._seasonal = Seasonal(str(self.policy["season"]), interval=self.interval)
        self._resolve_for = points(int(self.policy["resolve_for_minutes"]), self.interval)
        # Fixed by the rules (drift rules, added later, read no baseline).
        self._baseline_keys: list[tuple[str, bool]] | None = None
        self._leak_metrics = {r.metric for r in self._rules.values() if r.kind == "leak"}
        self._drops = {
            r.name
            for r in self._rules.values()
            if isinstance(r.detector, Regression) and r.detector.direction == "below"
        }
        # Per metric: value / expected level over the first RELEASE_RUNS seconds of the
        # release live now (the drop rule's scale).
        self._release_runs: dict[str, list[float]] = {}
        # Per metric: (time, value / expected level) of the last TODAY_WINDOW[0] seconds.
        self._ratios: dict[str, _Ratios] = {}

    def _wanted(self, name: str) -> bool:
        if self.only is None:
            return True
        return name in self.only or (name.startswith("drift:") and "drift" in self.only)

    def _add(self, rule: Rule) -> None:
        if self._wanted(rule.name):
            self._rules[rule.name] = rule

    def _drift_rule(self, feature: str) -> Rule | None:
        name = f"drift:{feature}"
        if name not in self._rules:
            self._add(drift_rule(feature, self.policy))
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
        samples: Mapping[str, Sequence[float | None]] | None = None,
        history: History | None = None,
    ) -> list[Transition]:
        """Feed one minute (Unix seconds of its start) to every rule; the alerts whose state
        changed. ``point``: rps, error_rate, p50_ms, p95_ms, p99_ms (None: no data).
        ``release``: the release live (None: unknown, e.g. down; leak baselines reset when
        it changes). ``up``: the scrape and /readyz succeeded. ``drift``: PSI per feature
        over the last ``drift_window_minutes`` (None or a missing feature: not computed,
        e.g. fewer than ``drift_min_records`` records). ``accuracy``: (live, offline).
        ``samples``: a metric's values finer than the minute, in time order (the trend test
        uses them). ``history``: the environment's past (core.alerts.seasonal); without it
        the regression rule holds no opinion and the leak rules use the release's start.

        Rules of one cause (:attr:`Rule.group`) page once: a rule that starts firing while
        another of its group fires for the same release is a transition ``grouped_with``
        that one, and so is its resolution; a store keeps them, a pager announces neither.

        The open alerts whose line changed without a change of state (a new value, a new
        worst) are left in :attr:`refreshed`, dated ``minute``: a store that keeps each
        alert's latest line updates them (a refresh announces nothing)."""
        self.refreshed = []
        if self.last_minute is not None and minute <= self.last_minute:
            return []
        self.last_minute = minute
        if release is not None:
            if self.release is not None and release != self.release:
                # A new release replaced one seen live: the minutes before this one are
                # what the environment did before it.
                self.release_start = minute
                self._release_runs = {}
            self.release = release
        if drift:
            for feature in drift:
                self._drift_rule(feature)
        expected = self._expectations(minute, history)
        # The leak rule's level follows today's (:meth:`_today`); the others compare with
        # the past as it was.
        anchored: dict[str, Expectation] = {}
        leaks = self._leak_metrics
        for (name, recent), found in expected.items():
            if recent or name not in leaks or found.season not in ("daily", "weekly"):
                continue  # "before the release" is today's level already
            today = self._today(name, minute, point.get(name), found)
            if today != 1.0:
                anchored[name] = found.on_today(today)
        out: list[Transition] = []
        for rule in self._rules.values():
            metric = rule.metric
            if rule.kind == "leak" and metric in anchored:
                past: Expectation | None = anchored[metric]
            else:
                past = expected.get((metric, rule.kind == "regression")) if metric else None
            if past is not None and metric and rule.name in self._drops:
                past = self._as_release_runs(metric, minute, point.get(metric), past)
            verdict = rule.verdict(
                minute,
                point,
                release,
                up=up,
                drift=drift,
                accuracy=accuracy,
                policy=self.policy,
                expected=past,
                samples=samples.get(metric) if samples and metric else None,
            )
            if not verdict.breaching and rule.alert.status not in ("pending", "firing"):
                continue  # nothing open, nothing opens: the alert holds (AlertState.step)
            before = rule.alert.detail
            transition = self._step(rule, verdict, minute, release)
            if transition is not None:
                out.append(self._grouped(rule, transition))
            elif rule.alert.status in ("pending", "firing") and rule.alert.detail != before:
                self.refreshed.append(self._open_alert(rule, minute))
        return out

    def _expectations(
        self, minute: int, history: History | None
    ) -> dict[tuple[str, bool], Expectation]:
        """What the environment's past expects of each metric a baseline rule reads, by
        (metric, whether the recent level may serve: for the regression rules, not for the
        trend and leak rules, whose baseline must not follow a leak)."""
        if history is None:
            return {}
        out: dict[tuple[str, bool], Expectation] = {}
        for key in self._baselines:
            metric, recent = key
            # The same expectation serves both, but for the recent level (regression only).
            shared = out.get((metric, not recent))
            if shared is not None and shared.season != "recent":
                out[key] = shared
                continue
            found = self._seasonal.expect(
                history, metric, minute, release_start=self.release_start, recent=recent
            )
            if found is not None:
                out[key] = found
        return out

    @property
    def _baselines(self) -> list[tuple[str, bool]]:
        """(metric, regression rule) of every rule with a baseline from the past, once."""
        if self._baseline_keys is None:
            keys = {
                (rule.metric, rule.kind == "regression"): None
                for rule in self._rules.values()
                if rule.kind in ("regression", "trend", "leak") and rule.metric
            }
            self._baseline_keys = list(keys)
        return self._baseline_keys

    def _as_release_runs(
        self, metric: str, minute: int, value: float | None, past: Expectation
    ) -> Expectation:
        """``past`` scaled down to how the release live now runs against it: the median
        ratio of its values to their expectations over its first RELEASE_RUNS seconds (so
        far), at most 1. A release that answers faster from its start is a release, not a
        drop (the error rules watch one that fails fast); a drop later in its life is."""
        if self.release_start is None:
            return past  # no release change seen: the past is this release's
        runs = self._release_runs.setdefault(metric, [])
        if minute < self.release_start + RELEASE_RUNS and value is not None and past.level > 0:
            bisect.insort(runs, value / past.level)
        if not runs:
            return past
        n = len(runs)
        median = runs[n // 2] if n % 2 else (runs[n // 2 - 1] + runs[n // 2]) / 2
        return past.as_release_runs(median) if median < 1.0 else past

    def _today(self, metric: str, minute: int, value: float | None, past: Expectation) -> float:
        """How today runs against the past (:data:`TODAY_WINDOW`): the median ratio of the
        values to their expectations between 3 hours and 30 minutes ago, at least 1, and 1
        with fewer than a third of those points. The leak rule's level is scaled by it, so
        that a busier day, or a week of growth, is not a creep, while a creep of the last
        half hour is."""
        window = self._ratios.get(metric)
        if window is None:
            window = self._ratios[metric] = _Ratios()
        if value is not None and past.level > 0 and past.season in ("daily", "weekly"):
            window.add(minute, value / past.level)
        window.move(minute - TODAY_WINDOW[0], minute - TODAY_WINDOW[1])
        if window.count * self.interval * 3 < TODAY_WINDOW[0] - TODAY_WINDOW[1]:
            return 1.0
        # Upward only: the rule looks for a rise, and a quiet morning scaled down would
        # read the return to an ordinary afternoon as one.
        return max(1.0, window.median())

    def _grouped(self, rule: Rule, transition: Transition) -> Transition:
        """``transition`` marked ``grouped_with`` the rule that paged for its incident: a
        rule that starts firing while another of its group fires for the same release
        joins that one's incident; its resolution, later, is grouped as its firing was.
        The rule that paged resolves under its own name (its page is answered)."""
        alert = rule.alert
        if transition.state == "pending":
            alert.grouped_with = None  # a new episode: grouped when it fires, if at all
        if transition.state == "firing":
            alert.grouped_with = None  # a re-opening too: the one it joined may be over
            for other in self._rules.values():
                paged = other.alert.status == "firing" and not other.alert.grouped_with
                same = other.group == rule.group and other.alert.release == alert.release
                if other is not rule and same and paged:
                    alert.grouped_with = other.name
                    break
        grouped = alert.grouped_with if transition.state in ("firing", "resolved") else None
        if grouped != transition.grouped_with:
            return replace(transition, grouped_with=grouped)
        return transition

    def _step(
        self, rule: Rule, verdict: Verdict, minute: int, release: str | None
    ) -> Transition | None:
        """The rule's alert moved on by its verdict; the transition, when its state changed."""
        moved = rule.alert.step(
            verdict,
            minute,
            opening_release=release if release is not None else self.release,
            resolve_for=self._resolve_for,
            cooldown_minutes=int(self.policy["cooldown_minutes"]),
            interval=self.interval,
        )
        if moved is None:
            return None
        state, detail, reopened = moved
        return self._emit(rule, state, minute, verdict, detail, release, reopened=reopened)

    def _emit(
        self,
        rule: Rule,
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
            rollback=alert.action or rollback_command(self.service, self.env, rule.name, detail),
            service=self.service,
            env=self.env,
            metric=rule.metric,
            opened_minute=alert.opened if alert.opened is not None else minute,
            reopened=reopened,
        )

    def current(self) -> list[Transition]:
        """The open alerts (pending or firing) as of the last minute, with their latest
        detail and values (for a pane that says why it fires *now*)."""
        return [
            self._open_alert(rule, rule.alert.since)
            for rule in self._rules.values()
            if rule.alert.status in ("pending", "firing") and rule.alert.since is not None
        ]

    def _open_alert(self, rule: Rule, minute: int) -> Transition:
        """The rule's open alert as it reads now, dated ``minute``."""
        a = rule.alert
        state: State = "firing" if a.status == "firing" else "pending"
        return Transition(
            rule=rule.name,
            kind=rule.kind,
            state=state,
            since_minute=minute,
            detail=a.detail,
            value=a.value,
            threshold=a.threshold,
            baseline=a.baseline,
            release=a.release,
            rollback=a.action or rollback_command(self.service, self.env, rule.name, a.detail),
            service=self.service,
            env=self.env,
            metric=rule.metric,
            opened_minute=a.opened if a.opened is not None else minute,
        )

    def acted(self, transition: Transition, line: str) -> Transition:
        """Say what was done about ``transition``'s alert (``rolled back automatically to
        ...``, or ``not rolled back: ...``): ``line`` replaces the rollback command in its
        documents, this one (returned) and the next ones of the episode."""
        self._rules[transition.rule].alert.action = line
        return replace(transition, rollback=line)

    # -- persistence --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything needed to resume (JSON-compatible)."""
        return {
            "version": 1,
            "service": self.service,
            "env": self.env,
            "policy": dict(self.policy),
            "only": sorted(self.only) if self.only is not None else None,
            "interval": self.interval,
            "last_minute": self.last_minute,
            "release": self.release,
            "release_start": self.release_start,
            # How today ran against the past (the leak rule's scale), so that a restart
            # does not forget it for three hours.
            "today": {metric: window.to_list() for metric, window in self._ratios.items()},
            # How the release live now ran against the past in its first hour (the drop
            # rule's scale).
            "release_runs": self._release_runs,
            "rules": {
                name: {
                    "metric": rule.metric,
                    "detector": rule.detector.to_dict(),
                    "alert": rule.alert.to_dict(),
                }
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
            interval=int(data.get("interval", 60)),
        )
        start = data.get("release_start")
        rules.release_start = int(start) if start is not None else None
        for metric, saved in dict(data.get("today") or {}).items():
            rules._ratios[str(metric)] = _Ratios.from_list(saved)
        for metric, runs in dict(data.get("release_runs") or {}).items():
            rules._release_runs[str(metric)] = sorted(float(r) for r in runs)
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
            # A detector that learned another series (a new leak_metric) starts afresh.
            if saved.get("metric", rule.metric) == rule.metric:
                rule.detector.load_state(saved.get("detector", {}))
            rule.alert = AlertState.from_dict(saved.get("alert", {}))
        return rules


class _Ratios:
    """Ratios in time order: those waiting to enter the window, and the window's own kept
    sorted for its median (each ratio enters and leaves once: a month replays in a blink)."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[int, float]] = deque()
        self.inside: deque[tuple[int, float]] = deque()
        self.ordered: list[float] = []

    @property
    def count(self) -> int:
        return len(self.ordered)

    def add(self, t: int, ratio: float) -> None:
        self.waiting.append((t, ratio))

    def move(self, oldest: int, newest: int) -> None:
        """The window becomes [oldest, newest]."""
        while self.waiting and self.waiting[0][0] <= newest:
            t, ratio = self.waiting.popleft()
            self.inside.append((t, ratio))
            bisect.insort(self.ordered, ratio)
        while self.inside and self.inside[0][0] < oldest:
            _, ratio = self.inside.popleft()
            del self.ordered[bisect.bisect_left(self.ordered, ratio)]

    def to_list(self) -> list[list[float]]:
        return [[t, r] for t, r in [*self.inside, *self.waiting]]

    @classmethod
    def from_list(cls, saved: Any) -> _Ratios:
        window = cls()
        for t, r in sorted((int(t), float(r)) for t, r in saved):
            window.add(t, r)
        return window

    def median(self) -> float:
        ordered, n = self.ordered, len(self.ordered)
        return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2

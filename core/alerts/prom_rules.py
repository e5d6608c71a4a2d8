"""Monitoring policies compiled into Prometheus rules (`relman policy export --format
prometheus`): recording rules over BentoML's own metrics per service and environment, and
the alerting rules of each effective policy that PromQL can express, with relman's limits,
``for`` durations, labels, one-line explanation and rollback command. Pure: relman.toml in,
rule data out (core.alerts.prom_yaml writes it). docs/prometheus.md ("Policies as Prometheus
rules") says what is exported as relman evaluates it, what is approximated, what is not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from core.alerts.alert_rules import SEVERITY, Rule, standard_rules
from core.alerts.alert_state import rollback_command
from core.alerts.alerting import check_policy
from core.alerts.detect import METRIC_LABELS, Threshold, format_value
from core.alerts.policies import EffectivePolicy, resolve
from core.alerts.regression import Regression
from core.alerts.seasonal import Seasonal
from core.config.model import PrometheusLabels, RelmanConfig
from core.errors import ConfigError

# BentoML's metrics (core/monitoring/scrape.py reads the same ones from /metrics).
REQUESTS = "bentoml_service_request_total"
BUCKETS = "bentoml_service_request_duration_seconds_bucket"
# BentoML's own endpoints, not the service's API (the docs too: /docs, /docs.json, ...);
# tests/unit/test_prom_rules.py checks these against core.monitoring.scrape's.
INFRA_ENDPOINTS = ("/readyz", "/livez", "/healthz", "/metrics")
DOCS_PREFIX = "/docs"
# Rates over one minute, as relman's rollups are per minute: the scrape interval must leave
# two samples in it (30 s or less; 15 s is Prometheus' usual).
WINDOW = "1m"
# The window of a read at this instant (this_instant): shorter than any evaluation interval.
SAME_INSTANT = "1ms"

BY_CODE = "relman:requests_by_code:rate1m"
REQUEST_RATE = "relman:requests:rate1m"
ERROR_RATE = "relman:errors:rate1m"
ERROR_RATIO = "relman:error_ratio:rate1m"
BUCKET_RATE = "relman:request_duration_seconds_bucket:rate1m"
QUANTILES = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}

# How far back the seasonal baselines look (core.alerts.seasonal's own defaults).
_SEASONAL = Seasonal("auto")
SEASON_LAGS = {"daily": (_SEASONAL.max_days, 1440), "weekly": (_SEASONAL.max_weeks, 10080)}
HALF_WINDOW_MINUTES = _SEASONAL.half_window // 60

ALERT_NAMES = {
    "latency_p99": "RelmanLatencyP99",
    "error_rate": "RelmanErrorRate",
    "latency_regression": "RelmanLatencyRegression",
    "down": "RelmanDown",
}
# The parameters each exported rule reads, named in its ``policy`` annotation.
READS = {
    "latency_p99": ("latency_p99_ms", "latency_for_minutes"),
    "error_rate": ("error_rate_max", "error_for_minutes"),
    "latency_regression": (
        "leak_metric",
        "season",
        "regression_ratio",
        "regression_z",
        "regression_for_minutes",
        "leak_min_sigma_ms",
    ),
    "down": ("down_for_minutes",),
}
# What an approximated rule does differently from relman's (its `approximation` annotation).
APPROXIMATED = {
    "latency_regression": "the median of the same 10 minutes on earlier days (or weeks) "
    "from Prometheus' own history, by regression_ratio and the spread's floors only (not "
    "the spread measured from the history)",
    "down": "up == 0: Prometheus' scrape of /metrics failed; relman also counts /readyz "
    "answering other than 200",
}
# Rules PromQL cannot express, left to relman's collector (the file's header says so).
LEFT = {
    "latency_trend": "the Mann-Kendall test of a rise since the release's start",
    "latency_leak": "the CUSUM against the environment's past or the release's first "
    "minutes (its state spans hours and releases)",
    "error_leak": "the same CUSUM on the error rate",
    "drift": "the PSI of each feature (drift:FEATURE) against the training data (DVC)",
    "performance": "live accuracy against the labels `relman feedback` stores",
}
# Stand-ins: the selector of the services an alerting rule covers (core: _merged), and
# the service and environment of relman's rollback line (no character the shell quotes).
WHERE, MATCHERS = "\x00where\x00", "\x00matchers\x00"
ALERTS = "ALERTS"  # Prometheus' series of its pending and firing alerts
SERVICE, ENV = "__service__", "__env__"
SEASONLESS = "the hour before the release (season = none): Prometheus has no release start"


class RecordingRule(NamedTuple):
    """``record: NAME`` = ``expr``, with ``labels`` added to each series; ``help`` is the
    comment line written above it."""

    record: str
    expr: str
    help: str
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AlertingRule:
    """One alert of relman's ``rule`` for the ``services`` of ``env`` whose effective values
    (and the layers that set them) are the same: one rule, their series selected by label.
    ``exact`` when Prometheus evaluates it as relman does (up to the rate window), else an
    approximation. The service and environment labels come with the series."""

    alert: str
    expr: str
    for_minutes: int
    keep_firing_minutes: int
    labels: dict[str, str]
    annotations: dict[str, str]
    rule: str
    exact: bool
    env: str = ""
    services: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[RecordingRule | AlertingRule, ...]
    interval: str | None = None


@dataclass(frozen=True)
class PairRules:
    """What became of the rules of one (service, env): exported (exactly or approximated)
    or left to relman's collector."""

    service: str
    env: str
    exported: tuple[str, ...]
    approximated: tuple[str, ...]
    left: tuple[str, ...]


@dataclass(frozen=True)
class RuleFile:
    """The rule file of a project: its groups, and per (service, env) what it holds."""

    project: str
    labels: PrometheusLabels
    groups: tuple[RuleGroup, ...]
    pairs: tuple[PairRules, ...]
    seasonless: tuple[str, ...] = field(default=())  # "service/env" left without regression

    @property
    def recording(self) -> int:
        return sum(isinstance(r, RecordingRule) for g in self.groups for r in g.rules)

    @property
    def alerting(self) -> int:
        return sum(isinstance(r, AlertingRule) for g in self.groups for r in g.rules)


def compile_rules(config: RelmanConfig) -> RuleFile:
    """The Prometheus rules of every (service, env) of ``config``'s effective policies: the
    recording rules, then per environment its alerting rules (one per rule and set of
    services that share every value of it), and the baselines the regressions read."""
    labels = config.monitoring.labels
    if labels.service == labels.env:
        raise ConfigError(
            f"[monitoring.labels] service and env are both {labels.service!r}; give the "
            "environment's label another name"
        )
    pairs: list[PairRules] = []
    seasonless: list[str] = []
    # (leak metric, season), in order: the (service, env) whose regression reads it
    baselines: dict[tuple[str, str], list[tuple[str, str]]] = {}
    by_env: dict[str, list[AlertingRule]] = {env: [] for env in config.environments}
    for service in config.services:
        for env in config.environments:
            effective = resolve(config, service, env)
            found = _pair_alerts(effective, labels)
            by_env[env] += found
            regression = any(a.rule == "latency_regression" for a in found)
            if not regression:
                seasonless.append(f"{service}/{env}")
            else:
                baselines.setdefault(_baseline_of(effective), []).append((service, env))
            pairs.append(
                PairRules(
                    service,
                    env,
                    exported=tuple(a.rule for a in found),
                    approximated=tuple(a.rule for a in found if not a.exact),
                    left=tuple(LEFT) + (() if regression else ("latency_regression",)),
                )
            )
    # One group: Prometheus runs a group's rules in order, each reading what the ones before
    # recorded at the same instant; an alert in another group would read the last
    # evaluation's (a step late, and which one depends on the order the groups ran in).
    rules: list[RecordingRule | AlertingRule] = [*recording_rules(config)]
    for alerts in by_env.values():
        rules += _merged(alerts, labels)
    groups = [RuleGroup("relman", tuple(rules))]
    if baselines:
        # Baselines move little within a minute: evaluated once a minute (the regressions
        # read the last one). Each only for the pairs whose regression reads it.
        metrics: dict[str, list[tuple[str, str]]] = {}
        for (metric, _), using in baselines.items():
            metrics.setdefault(metric, []).extend(using)
        levels = [window_rule(metric, using, labels) for metric, using in metrics.items()]
        for (metric, season), using in baselines.items():
            levels += baseline_rules(metric, season, using, labels)
        groups.append(RuleGroup("relman-baselines", tuple(levels), interval="1m"))
    return RuleFile(config.project.name, labels, tuple(groups), tuple(pairs), tuple(seasonless))


def _merged(alerts: list[AlertingRule], labels: PrometheusLabels) -> list[AlertingRule]:
    """One rule per rule name and values among the services of one environment (fewer rules
    to evaluate: Prometheus' cost is mostly per rule), in the order first met, with the
    selector of those services put in."""
    shared: dict[tuple[Any, ...], list[AlertingRule]] = {}
    for alert in alerts:
        key = (
            alert.rule,
            alert.expr,
            alert.for_minutes,
            alert.keep_firing_minutes,
            tuple(alert.labels.items()),
            tuple(alert.annotations.items()),
        )
        shared.setdefault(key, []).append(alert)
    out = []
    for same in shared.values():
        services = tuple(a for alert in same for a in alert.services)
        first = same[0]
        matchers = f"{_matcher(labels.service, services)}, {labels.env}={_quote(first.env)}"
        expr = first.expr.replace(WHERE, f"{{{matchers}}}").replace(MATCHERS, matchers)
        out.append(replace(first, expr=expr, services=services))
    return out


# -- recording rules ------------------------------------------------------------------------


def api_selector(config: RelmanConfig) -> str:
    """The matchers of the series relman reads: the service's API endpoints (not BentoML's
    own), of the services and environments relman.toml declares (names are ``[a-z0-9_-]``:
    no regular-expression character to escape)."""
    labels = config.monitoring.labels
    infra = "|".join([*INFRA_ENDPOINTS, f"{DOCS_PREFIX}.*"])
    return ", ".join(
        [
            f"endpoint!~{_quote(infra)}",
            'endpoint!=""',
            f"{labels.service}=~{_quote('|'.join(config.services))}",
            f"{labels.env}=~{_quote('|'.join(config.environments))}",
        ]
    )


def latency_record(metric: str) -> str:
    """The recording rule of a latency quantile (``p95_ms``), in seconds."""
    return f"relman:latency_seconds:{metric.removesuffix('_ms')}_rate1m"


def baseline_record(metric: str, season: str) -> str:
    return f"relman:latency_seconds:{metric.removesuffix('_ms')}_{season}"


def this_instant(selector: str) -> str:
    """``selector`` (a series an earlier rule of the same group recorded at this evaluation)
    read at this instant only. Prometheus runs a group's rules in order at one timestamp,
    so the 1 ms window holds the sample just written, or nothing where the series ended
    (Prometheus marks it stale then): what the bare selector reads, without decoding every
    sample of the 5-minute lookback an instant selector searches (300 per series at one
    evaluation a second; docs/prometheus.md, "Cost")."""
    return f"last_over_time({selector}[{SAME_INSTANT}])"


def recording_rules(config: RelmanConfig) -> list[RecordingRule]:
    """Request rate, error rate and ratio, p50/p95/p99 per service and environment; the raw
    series are read once (by code, by bucket), the rest from those, at this instant."""
    labels = config.monitoring.labels
    by = f"{labels.service}, {labels.env}"
    api = api_selector(config)
    errors = f'{BY_CODE}{{http_response_code!~"2.*", http_response_code!=""}}'
    return [
        RecordingRule(
            BY_CODE,
            f"sum by ({by}, http_response_code) (rate({REQUESTS}{{{api}}}[{WINDOW}]))",
            "requests per second to the service's API over the last minute, by HTTP code",
        ),
        RecordingRule(
            REQUEST_RATE,
            f"sum by ({by}) ({this_instant(BY_CODE)})",
            "requests per second to the service's API",
        ),
        RecordingRule(
            ERROR_RATE,
            # A sample without a code is no error (core/monitoring/scrape.py), nor is a 2xx;
            # 0 where every answer was a 2xx.
            f"sum by ({by}) ({this_instant(errors)})\nor 0 * {this_instant(REQUEST_RATE)}",
            "answers outside 2xx per second",
        ),
        RecordingRule(
            ERROR_RATIO,
            f"{this_instant(ERROR_RATE)} / {this_instant(REQUEST_RATE)}",
            "relman's error rate: the fraction of answers outside 2xx (none without requests)",
        ),
        RecordingRule(
            BUCKET_RATE,
            f"sum by ({by}, le) (rate({BUCKETS}{{{api}}}[{WINDOW}]))",
            "the latency histogram's buckets per second, the other labels summed away",
        ),
        *(
            RecordingRule(
                latency_record(metric),
                f"histogram_quantile({q}, {this_instant(BUCKET_RATE)})",
                f"{METRIC_LABELS[metric]} latency (seconds), interpolated in BentoML's buckets",
            )
            for metric, q in QUANTILES.items()
        ),
    ]


def window_record(metric: str) -> str:
    """The recording rule of a latency quantile's median over the last 10 minutes."""
    return f"relman:latency_seconds:{metric.removesuffix('_ms')}_median{2 * HALF_WINDOW_MINUTES}m"


def lags_record(metric: str, season: str) -> str:
    """The recording rule of the 10-minute medians of earlier days (or weeks), label lag."""
    return f"{baseline_record(metric, season)}_lags"


def window_rule(
    metric: str, pairs: list[tuple[str, str]], labels: PrometheusLabels
) -> RecordingRule:
    """Each minute, the median of the quantile over the last 10 minutes, of the ``pairs``
    whose regression reads it: one earlier day's level at this time, read back at an
    offset by :func:`baseline_rules` (cheaper, at every evaluation, than the windows of
    seven days read again)."""
    window = 2 * HALF_WINDOW_MINUTES
    return RecordingRule(
        window_record(metric),
        "\nor ".join(
            f"quantile_over_time(0.5, {latency_record(metric)}{{{matchers}}}[{window}m])"
            for matchers in pair_matchers(pairs, labels)
        ),
        f"{METRIC_LABELS[metric]} latency (seconds), the median of the last {window} minutes",
    )


def baseline_rules(
    metric: str, season: str, pairs: list[tuple[str, str]], labels: PrometheusLabels
) -> list[RecordingRule]:
    """The median over earlier days (or weeks) of the median of the same 10 minutes of each:
    core.alerts.seasonal's level of the ``daily`` (``auto``) or ``weekly`` season, for the
    ``pairs`` whose regression reads it. Each earlier day is read by a rule of its own
    (label ``lag``): Prometheus 2 looks a selector up in every block of its query's time
    range, which for seven offsets in one expression spans a week of blocks; the last rule
    takes the median of what the others recorded at this evaluation."""
    lags, period = SEASON_LAGS[season]
    unit = "day" if season == "daily" else "week"
    window = 2 * HALF_WINDOW_MINUTES
    out = [
        RecordingRule(
            lags_record(metric, season),
            "\nor ".join(
                f"{window_record(metric)}{{{matchers}}} offset "
                f"{_duration(k * period - HALF_WINDOW_MINUTES)}"
                for matchers in pair_matchers(pairs, labels)
            ),
            f"{METRIC_LABELS[metric]}'s {window}-minute median at this time {k} {unit}"
            f"{'s' if k > 1 else ''} ago",
            (("lag", str(k)),),
        )
        for k in range(1, lags + 1)
    ]
    out.append(
        RecordingRule(
            baseline_record(metric, season),
            f"quantile without (lag) (0.5, {lags_record(metric, season)})",
            f"{METRIC_LABELS[metric]} at this time on the last {lags} {unit}s (median of medians)",
        )
    )
    return out


def pair_matchers(pairs: list[tuple[str, str]], labels: PrometheusLabels) -> list[str]:
    """Matchers selecting exactly ``pairs`` (service, env): one set per group of environments
    that hold the same services (one set where every environment does)."""
    by_env: dict[str, list[str]] = {}
    for service, env in pairs:
        by_env.setdefault(env, []).append(service)
    envs: dict[tuple[str, ...], list[str]] = {}
    for env, services in by_env.items():
        envs.setdefault(tuple(services), []).append(env)
    return [
        f"{_matcher(labels.service, services)}, {_matcher(labels.env, tuple(names))}"
        for services, names in envs.items()
    ]


def _matcher(label: str, values: tuple[str, ...]) -> str:
    """``label="a"``, or ``label=~"a|b"`` (names are [a-z0-9_-]: nothing to escape)."""
    if len(values) == 1:
        return f"{label}={_quote(values[0])}"
    return f"{label}=~{_quote('|'.join(values))}"


def _baseline_of(policy: EffectivePolicy) -> tuple[str, str]:
    season = "weekly" if policy.values["season"] == "weekly" else "daily"
    return str(policy.values["leak_metric"]), season


# -- alerting rules -------------------------------------------------------------------------


def _pair_alerts(effective: EffectivePolicy, labels: PrometheusLabels) -> list[AlertingRule]:
    """The alerting rules of one (service, env), from the rules relman builds of its policy,
    their selector left as :data:`WHERE` and the service and environment named in their
    annotations by the series' labels (so that pairs with the same values share a rule)."""
    policy = check_policy(effective.values)
    rules = {rule.name: rule for rule in standard_rules(policy)}
    keep = int(policy["resolve_for_minutes"])
    service, env = _label(labels.service), _label(labels.env)
    out: list[AlertingRule] = []

    def add(
        rule: Rule,
        expr: str,
        for_minutes: int,
        detail: str,
        extra: dict[str, str] | None = None,
        *,
        exact: bool,
    ) -> None:
        # relman's own rollback line, its service and environment filled in by Prometheus
        # (names are [a-z0-9_-], which the shell quoting leaves as they are).
        rollback = rollback_command(SERVICE, ENV, rule.name, detail)
        explain = f"relman policy explain {service} {env}"
        annotations = {
            "summary": f"{service}/{env}: {detail}",
            "rollback": rollback.replace(SERVICE, service).replace(ENV, env),
            "policy": f"{_policy_line(effective, READS[rule.name])}; {explain}",
            **(extra or {}),
        }
        if not exact:
            annotations["approximation"] = (
                f"approximates relman's {rule.name}: {APPROXIMATED[rule.name]} (docs/prometheus.md)"
            )
        out.append(
            AlertingRule(
                alert=ALERT_NAMES[rule.name],
                expr=expr,
                for_minutes=for_minutes,
                keep_firing_minutes=keep,
                labels={
                    labels.env: effective.env,
                    "severity": SEVERITY[rule.kind],
                    "rule": rule.name,
                    "set_by": _set_by(effective, READS[rule.name]),
                },
                annotations=annotations,
                rule=rule.name,
                exact=exact,
                env=effective.env,
                services=(effective.service,),
            )
        )

    p99 = _threshold(rules["latency_p99"])
    add(
        rules["latency_p99"],
        f"{this_instant(latency_record('p99_ms') + WHERE)} * 1000 > {_number(p99.threshold)}",
        p99.for_minutes,
        f"p99 {_ms('$value')} > {format_value(p99.threshold, 'ms')} for {p99.for_minutes} min",
        exact=True,
    )
    errors = _threshold(rules["error_rate"])
    add(
        rules["error_rate"],
        f"{this_instant(ERROR_RATIO + WHERE)} > {_number(errors.threshold)}",
        errors.for_minutes,
        f"error rate {{{{ $value | humanizePercentage }}}} > "
        f"{format_value(errors.threshold, '%')} for {errors.for_minutes} min",
        exact=True,
    )
    if policy["season"] != "none":
        add(*_regression(rules["latency_regression"], effective, labels), exact=False)
    down = _threshold(rules["down"])
    add(
        rules["down"],
        f"up{WHERE} == 0",
        down.for_minutes,
        f"down for {down.for_minutes} min: scrape failed (up == 0)",
        exact=False,
    )
    return out


def _regression(
    rule: Rule, effective: EffectivePolicy, labels: PrometheusLabels
) -> tuple[Rule, str, int, str, dict[str, str]]:
    """(rule, expr, for, detail, the ``baseline`` annotation: the query of the level it
    compared with) of the latency regression against the seasonal baseline."""
    detector = rule.detector
    if not isinstance(detector, Regression):
        raise TypeError(f"{rule.name}: expected a regression detector")
    metric, season = _baseline_of(effective)
    current = this_instant(latency_record(metric) + WHERE)
    baseline = f"{baseline_record(metric, season)}{WHERE}"
    # relman's test, value >= ratio * level and value - level >= z * spread, with the spread
    # at its floors (min_spread of the level, min_sigma in ms); once open (pending or
    # firing: ALERTS, Prometheus' own series of them) half of each holds it, as relman's
    # hysteresis does.
    opened = f"{ALERTS}{{alertname={_quote(ALERT_NAMES[rule.name])}, {MATCHERS}}}"
    opening = _beyond(current, baseline, detector.ratio, detector.z, detector)
    holding = _beyond(current, baseline, 1 + (detector.ratio - 1) / 2, detector.z / 2, detector)
    on = f"on ({labels.service}, {labels.env})"
    expr = f"{opening}\nor\n(\n  {holding}\n  and {on} {opened}\n)"
    ratio = max(detector.ratio, 1 + detector.z * detector.min_spread)
    lags, _ = SEASON_LAGS[season]
    # The baseline is not looked up in the line: a template's query runs at every evaluation
    # of every open alert, the most costly part of a rule file (benchmarks/bench_prom_rules.py).
    words = f"this hour on up to {lags} earlier {'days' if season == 'daily' else 'weeks'}"
    detail = (
        f"{METRIC_LABELS[metric]} {_ms('$value')}, x{_number(ratio)} or more of its level {words}"
    )
    pair = f'{labels.service}="{_label(labels.service)}", {labels.env}="{_label(labels.env)}"'
    level = {"baseline": f"{baseline_record(metric, season)}{{{pair}}} * 1000"}
    return rule, expr, detector.for_points, detail, level


def _beyond(current: str, baseline: str, ratio: float, z: float, detector: Regression) -> str:
    """``current`` (the metric's recording rule, ms) at least ``ratio`` times ``baseline``
    and ``z`` spreads at the detector's floors above it."""
    need = max(ratio, 1 + z * detector.min_spread)
    expr = f"{current} * 1000 >= {_number(need)} * ({baseline} * 1000)"
    floor = z * detector.min_sigma
    if floor > 0:
        expr += f" and ({current} - {baseline}) * 1000 >= {_number(floor)}"
    return expr


def _label(name: str) -> str:
    """The value of label ``name`` of the alert's series, in a Prometheus template."""
    return f"{{{{ $labels.{name} }}}}"


def _threshold(rule: Rule) -> Threshold:
    if not isinstance(rule.detector, Threshold):
        raise TypeError(f"{rule.name}: expected a threshold detector")
    return rule.detector


def _ms(value: str) -> str:
    """A Prometheus template printing ``value`` (ms) as relman does: ``212 ms``, ``3.4 ms``."""
    return (
        f'{{{{ if lt {value} 10.0 }}}}{{{{ printf "%.1f" {value} }}}}'
        f'{{{{ else }}}}{{{{ printf "%.0f" {value} }}}}{{{{ end }}}} ms'
    )


def _policy_line(effective: EffectivePolicy, names: tuple[str, ...]) -> str:
    """``error_rate_max 0.02 (assign #1 -> template strict), ...``: the values a rule reads
    (and resolve_for_minutes) and the layer that set each."""
    return ", ".join(
        f"{name} {_shown(effective.values[name])} ({effective.sources[name]})"
        for name in (*names, "resolve_for_minutes")
    )


def _set_by(effective: EffectivePolicy, names: tuple[str, ...]) -> str:
    """The layers of relman.toml that set what a rule reads, lowest first: within one
    environment they decide the values, so services whose rule shares them share the rule,
    and the label tells its variants apart (promtool's duplicate check)."""
    found = {effective.sources[name] for name in (*names, "resolve_for_minutes")}
    return ", ".join(layer for layer in effective.layers if layer in found)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _number(value: float) -> str:
    """A PromQL number: ``0.05``, ``250``, exact (``repr`` where ``g`` would round)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def _duration(minutes: int) -> str:
    """``1d23h55m``: a Prometheus duration of whole minutes."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "m")) if n]
    return "".join(parts) or "0m"


def _quote(text: str) -> str:
    """A PromQL (Go) double-quoted string."""
    return json.dumps(text)


def pair_summary(pairs: tuple[PairRules, ...]) -> list[dict[str, Any]]:
    """Each (service, env) of the JSON document: exported, approximated and left rules."""
    return [
        {
            "service": p.service,
            "env": p.env,
            "exported": list(p.exported),
            "approximated": list(p.approximated),
            "left_to_collector": list(p.left),
        }
        for p in pairs
    ]


def left_lines(rule_file: RuleFile) -> list[str]:
    """The rules left to relman's collector, one line each (the file's header)."""
    out = [f"{name}: {why}" for name, why in LEFT.items()]
    if rule_file.seasonless:
        out.append(f"latency_regression of {', '.join(rule_file.seasonless)}: {SEASONLESS}")
    return out

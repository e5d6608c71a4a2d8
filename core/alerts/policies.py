"""Monitoring policies: the effective parameters of one (service, env), and who set each.

Parameters cascade, lowest first; a later layer overrides an earlier one, key by key:

1. ``built-in``: :data:`core.alerts.alerting.DEFAULTS`
   and the collection defaults of ``[monitoring]`` (scrape_interval 5 s, raw_retention_hours
   6, rollup_retention_days 28, no webhook), and the collector's actions
   (:data:`ACTION_DEFAULTS`: ``auto_rollback`` off);
2. ``[monitoring]``: project-wide values;
3. templates attached by assignment rules, rule by rule in file order, each rule's templates
   in the order it lists them (``assign #1 -> template strict``);
4. ``[environments.ENV.monitoring]``;
5. ``[services.NAME.monitoring]``.

Every layer may carry conditional values, ``[[...when]]`` entries applied in file order just
after the layer's own values (so they override them, but never a higher layer)::

    [monitoring]
    scrape_interval = 5.0
    webhook = "http://127.0.0.1:9000/hook"

    [monitoring.templates.strict]
    latency_p99_ms = 400
    error_rate_max = 0.02

    [[monitoring.templates.strict.when]]
    match = { env = "prod" }
    latency_p99_ms = 300

    [[monitoring.assign]]
    match = { env = "prod*" }          # every service in prod, named or not
    templates = ["strict"]

    [[monitoring.assign]]
    match = { service = "iris", env = ["staging", "prod"] }
    templates = ["strict", "quiet"]

    [environments.prod.monitoring]
    cooldown_minutes = 10

    [services.iris.monitoring]
    drift_psi_max = 0.25

    [[services.iris.monitoring.when]]
    match = { target = "local" }
    down_for_minutes = 2

A ``match`` holds ``service``, ``env`` and/or ``target`` (the environment's target); each is
a glob (``prod*``, fnmatch, case-sensitive) or a list of globs (any of them); every key given
must match; ``match = {}`` matches everything. The parameter models, and the checks that
name ``file:line`` for an unknown parameter, a wrong type, an assign rule naming an
undeclared template or an env/target pattern that matches no environment, are in
core/config/model.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from core.config.model import (
    COLLECTION_DEFAULTS,
    FLOAT_PARAMETERS,
    PARAMETER_NAMES,
    MonitoringParameters,
    PolicyLayer,
    Project,
    RelmanConfig,
)

Value = float | int | str | bool | None

COLLECTION_KEYS = ("scrape_interval", "raw_retention_hours", "rollup_retention_days", "webhook")

# What the collector does itself when an alert fires (core/delivery/auto_rollback.py), off
# unless a layer turns it on.
ACTION_DEFAULTS: dict[str, Value] = {"auto_rollback": False}

BUILT_IN = "built-in"

_FLOATS = FLOAT_PARAMETERS


@dataclass(frozen=True)
class EffectivePolicy:
    """The monitoring parameters of ``service`` in ``env`` and the layer that set each."""

    service: str
    env: str
    values: dict[str, Value]
    sources: dict[str, str]
    # Every layer that applies to this (service, env), lowest first, even one whose values
    # were all overridden: "why is my template not used" is answered here.
    layers: list[str]

    def parameters(self) -> list[dict[str, Any]]:
        from core.alerts.alerting import DESCRIPTIONS

        return [
            {
                "name": name,
                "value": value,
                "source": self.sources[name],
                "description": DESCRIPTIONS.get(name, ""),
            }
            for name, value in self.values.items()
        ]


def builtin_defaults() -> dict[str, Value]:
    """The built-in layer: the alert rules' defaults, the collection defaults and the
    collector's actions."""
    from core.alerts.alerting import DEFAULTS

    values: dict[str, Value] = {
        **DEFAULTS,
        **{key: COLLECTION_DEFAULTS[key] for key in COLLECTION_KEYS},
        **ACTION_DEFAULTS,
    }
    return _normalise(values)


def _normalise(values: dict[str, Value]) -> dict[str, Value]:
    """One type per parameter: a float parameter written as an integer is a float."""
    return {
        name: float(value)
        if name in _FLOATS and isinstance(value, int) and not isinstance(value, bool)
        else value
        for name, value in values.items()
    }


def _layers(config: RelmanConfig, service: str, env: str) -> Iterator[tuple[str, PolicyLayer]]:
    """The layers above the built-in one that apply, lowest first, with their names."""
    monitoring = config.monitoring
    yield "[monitoring]", monitoring
    for index, rule in enumerate(monitoring.assign, start=1):
        if rule.match.matches(service=service, env=env, target=config.environments[env].target):
            for name in rule.templates:
                yield f"assign #{index} -> template {name}", monitoring.templates[name]
    yield f"[environments.{env}.monitoring]", config.environments[env].monitoring
    yield f"[services.{service}.monitoring]", config.services[service].monitoring


def resolve(config: RelmanConfig, service: str, env: str) -> EffectivePolicy:
    """The effective policy of a declared ``service`` in a declared ``env``."""
    config.check_names(service=service, env=env)
    target = config.environments[env].target
    values = builtin_defaults()
    sources = dict.fromkeys(values, BUILT_IN)
    applied = [BUILT_IN]

    def apply(source: str, layer: MonitoringParameters) -> None:
        for name, value in _normalise(layer.parameters()).items():
            values[name] = value
            sources[name] = source

    for source, layer in _layers(config, service, env):
        applied.append(source)
        apply(source, layer)
        for conditional in layer.when:
            if conditional.match.matches(service=service, env=env, target=target):
                conditional_source = f"{source} (when {conditional.match.describe()})"
                applied.append(conditional_source)
                apply(conditional_source, conditional)
    order = [name for name in PARAMETER_NAMES if name in values]
    order += [name for name in values if name not in order]
    return EffectivePolicy(
        service=service,
        env=env,
        values={name: values[name] for name in order},
        sources={name: sources[name] for name in order},
        layers=applied,
    )


def effective_policy(project: Project, service: str, env: str) -> EffectivePolicy:
    """The effective monitoring parameters of ``service`` in ``env`` (UsageError when either
    is not declared in relman.toml)."""
    return resolve(project.config, service, env)


def explain(project: Project, service: str, env: str) -> dict[str, Any]:
    """The JSON document of ``relman policy explain``: each parameter, its value, its layer."""
    policy = effective_policy(project, service, env)
    return {
        "ok": True,
        "service": service,
        "env": env,
        "parameters": policy.parameters(),
        "layers": policy.layers,
    }

"""What a pipeline is for one service: its steps with their effective values, and who set each.

Parameters (``timeout``, ``retries``, ``strategy``) cascade onto each step, lowest first, as
monitoring policies do (core/alerts/policies.py); a later layer overrides an earlier one:

1. ``built-in``: a timeout per kind of step (:data:`BUILT_IN_TIMEOUTS`), no retries; a deploy
   step's strategy from ``[environments.ENV.rollout]``;
2. ``[pipelines]`` and its ``[[pipelines.when]]`` values;
3. ``[pipelines.NAME]`` and its ``[[pipelines.NAME.when]]`` values;
4. the step's own table (``{ step = "run", cmd = "...", retries = 2 }``).

A ``when`` matches the service, and the step's environment (``env``, for deploy, approve and
soak steps) and its target. Services get their pipelines from ``[[pipelines.assign]]`` rules
(by service name); a service no rule names gets the built-in ``release`` pipeline: test, gate,
build, deploy to the first environment, as `relman release` does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from core.config.durations import format_duration, parse_duration
from core.config.model import RelmanConfig
from core.config.pipelines import (
    DEFAULT_SOAK,
    RELEASE_KINDS,
    PipelineConfig,
    PipelineParameters,
    StepDecl,
    steps_of,
)
from core.errors import UsageError

BUILT_IN = "built-in"
BUILT_IN_NAME = "release"
BUILT_IN_TIMEOUTS: dict[str, str] = {
    "repro": "2h",
    "commit": "10m",
    "test": "1h",
    "gate": "10m",
    "build": "30m",
    "deploy": "30m",
    "approve": "7d",  # how long a run may wait for its approval before it fails
    "soak": "1m",  # the soak's duration, plus this
    "run": "30m",
}
# Steps that need the release fixed: the candidate is verified (clean tree, no lineage
# problems) before the first of them runs.
NEEDS_RELEASE = RELEASE_KINDS


@dataclass(frozen=True)
class ResolvedStep:
    position: int
    decl: StepDecl
    timeout: float
    retries: int
    strategy: str | None
    duration: float | None
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.decl.name

    @property
    def kind(self) -> str:
        return self.decl.kind

    @property
    def env(self) -> str | None:
        return self.decl.env

    def to_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "env": self.env,
            "timeout": format_duration(self.timeout),
            "retries": self.retries,
        }
        if self.kind == "deploy":
            values["strategy"] = self.strategy
        if self.duration is not None:
            values["duration"] = format_duration(self.duration)
        if self.decl.cmd is not None:
            values["cmd"] = self.decl.cmd
        values["sources"] = dict(self.sources)
        return values


@dataclass(frozen=True)
class ResolvedPipeline:
    name: str
    service: str
    steps: list[ResolvedStep]
    on: list[str]
    description: str
    built_in: bool
    layers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.name,
            "service": self.service,
            "built_in": self.built_in,
            "on": list(self.on),
            "description": self.description,
            "steps": [step.to_dict() for step in self.steps],
            "layers": list(self.layers),
        }


def built_in_pipeline(config: RelmanConfig) -> PipelineConfig:
    """Today's `relman release` as data: test, gate, build, deploy to the first environment."""
    first = config.environment_order[0]
    return PipelineConfig(
        steps=["test", "gate", "build", f"deploy:{first}"],
        description=f"the built-in release: test, gate, build, deploy to {first}",
    )


def declared(config: RelmanConfig) -> dict[str, PipelineConfig]:
    """Every pipeline by name: the built-in ``release`` unless relman.toml defines its own."""
    named = dict(config.pipelines.named)
    if BUILT_IN_NAME not in named:
        named = {BUILT_IN_NAME: built_in_pipeline(config), **named}
    return named


def assigned(config: RelmanConfig, service: str) -> list[str]:
    """The pipelines ``[[pipelines.assign]]`` attaches to ``service`` (file order, no
    repeats); the built-in ``release`` when no rule names it."""
    found: list[str] = []
    for rule in config.pipelines.assign:
        patterns = rule.match.patterns().get("service")
        if patterns is None or any(fnmatch.fnmatchcase(service, p) for p in patterns):
            found += [name for name in rule.pipelines if name not in found]
    return found or [BUILT_IN_NAME]


def resolve(config: RelmanConfig, name: str, service: str) -> ResolvedPipeline:
    """Pipeline ``name`` for ``service``, every step's values resolved (UsageError when the
    pipeline or the service is not declared)."""
    config.check_names(service=service)
    pipelines = declared(config)
    if name not in pipelines:
        raise UsageError(
            f"no pipeline {name!r} in relman.toml (pipelines: {', '.join(pipelines)}); "
            "`relman pipeline list` shows them"
        )
    pipeline = pipelines[name]
    built_in = name not in config.pipelines.named
    steps = [
        _resolve_step(config, name, pipeline, service, position, decl)
        for position, decl in enumerate(steps_of(pipeline))
    ]
    layers = [BUILT_IN, "[pipelines]"] + ([] if built_in else [f"[pipelines.{name}]"])
    return ResolvedPipeline(
        name=name,
        service=service,
        steps=steps,
        on=list(pipeline.on),
        description=pipeline.description or "",
        built_in=built_in,
        layers=layers,
    )


def _resolve_step(
    config: RelmanConfig,
    name: str,
    pipeline: PipelineConfig,
    service: str,
    position: int,
    decl: StepDecl,
) -> ResolvedStep:
    values: dict[str, Any] = {"timeout": BUILT_IN_TIMEOUTS[decl.kind], "retries": 0}
    sources = {"timeout": BUILT_IN, "retries": BUILT_IN}
    if decl.kind == "deploy" and decl.env is not None:
        rollout = config.environments[decl.env].rollout
        values["strategy"] = rollout.strategy
        sources["strategy"] = f"[environments.{decl.env}.rollout]"
    target = config.environments[decl.env].target if decl.env else ""

    def apply(source: str, layer: PipelineParameters) -> None:
        for key, value in layer.parameters().items():
            if key == "strategy" and decl.kind != "deploy":
                continue
            values[key], sources[key] = value, source

    layers: list[tuple[str, PipelineParameters, list[Any]]] = [
        ("[pipelines]", config.pipelines, config.pipelines.when)
    ]
    if name in config.pipelines.named:
        layers.append((f"[pipelines.{name}]", pipeline, pipeline.when))
    for source, layer, conditionals in layers:
        apply(source, layer)
        for conditional in conditionals:
            match = conditional.match
            env_patterns = match.patterns().get("env")
            if env_patterns is not None and decl.env is None:
                continue  # a value for an environment's steps: this one has none
            if match.matches(service=service, env=decl.env or "", target=target):
                apply(f"{source} (when {match.describe()})", conditional)
    if decl.own is not None:
        apply(f"[pipelines.{name}] steps #{position + 1}", decl.own)
    duration = None
    if decl.kind == "soak":
        duration = parse_duration(decl.duration or DEFAULT_SOAK)
        sources["duration"] = (
            f"[pipelines.{name}] steps #{position + 1}" if decl.duration else BUILT_IN
        )
    timeout = parse_duration(str(values["timeout"]))
    if decl.kind == "soak" and duration is not None:
        timeout += duration
    return ResolvedStep(
        position=position,
        decl=decl,
        timeout=timeout,
        retries=int(values["retries"]),
        strategy=values.get("strategy"),
        duration=duration,
        sources=sources,
    )


def listing(config: RelmanConfig) -> dict[str, Any]:
    """The document of `relman pipeline list`: every pipeline, its steps and triggers, and
    the services it is assigned to."""
    pipelines = declared(config)
    by_service = {service: assigned(config, service) for service in config.services}
    rows = []
    for name, pipeline in pipelines.items():
        rows.append(
            {
                "name": name,
                "built_in": name not in config.pipelines.named,
                "steps": [decl.name for decl in steps_of(pipeline)],
                "on": list(pipeline.on),
                "services": [s for s, names in by_service.items() if name in names],
                "description": pipeline.description or "",
            }
        )
    return {"ok": True, "pipelines": rows, "assigned": by_service}


def explain(config: RelmanConfig, name: str, service: str) -> dict[str, Any]:
    """The document of `relman pipeline explain NAME --service S`."""
    return {"ok": True, **resolve(config, name, service).to_dict()}

"""The plan a rollout runs: the strategy in force and its steps, resolved from relman.toml
(``[environments.ENV.rollout]``, ``[analysis.NAME]``) or built in (docs/rollouts.md).

A configured step ``{ weight = 10, pause = "1m" }`` is two plan steps (set the weight, then
wait), so each step the driver records does one thing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from core.config.common import STRATEGIES, Strategy
from core.config.durations import format_duration, parse_duration
from core.config.model import AnalysisConfig, Project, RolloutStepConfig
from core.errors import UsageError

StepKind = Literal["weight", "pause", "analysis"]

# Built in: finishes within about 4 minutes when traffic is enough to conclude (a few
# requests a second), within 5 when one extra measurement is needed.
BUILTIN_CANARY = (
    RolloutStepConfig(weight=20, pause="30s"),
    RolloutStepConfig(analysis="default"),
    RolloutStepConfig(weight=50, pause="20s"),
    RolloutStepConfig(analysis="default"),
)
BUILTIN_SHADOW = (
    RolloutStepConfig(weight=100, pause="30s"),
    RolloutStepConfig(analysis="default"),
)
BUILTIN_ANALYSIS = AnalysisConfig(interval="30s", count=2, min_requests=50)


@dataclass(frozen=True)
class PlanStep:
    kind: StepKind
    weight: int | None = None
    seconds: float | None = None  # a pause's length; None: until `relman rollout resume`
    analysis: str | None = None
    # Set by plan_for where the same step comes twice: run steps are recorded by name.
    label: str | None = None

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        if self.kind == "weight":
            return f"weight {self.weight}%"
        if self.kind == "pause":
            return (
                "pause (manual)"
                if self.seconds is None
                else f"pause {format_duration(self.seconds)}"
            )
        return f"analysis {self.analysis}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "weight": self.weight,
            "seconds": self.seconds,
            "analysis": self.analysis,
            "label": self.label,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanStep:
        return cls(
            cast(StepKind, data["kind"]),
            data.get("weight"),
            data.get("seconds"),
            data.get("analysis"),
            data.get("label"),
        )


def strategy_for(project: Project, env: str, flag: str | None) -> Strategy:
    """``--strategy`` when given, else the environment's ``[rollout] strategy``."""
    if flag is None:
        return project.config.environments[env].rollout.strategy
    if flag not in STRATEGIES:
        raise UsageError(f"--strategy {flag}: not a strategy (strategies: {', '.join(STRATEGIES)})")
    return cast(Strategy, flag)


def plan_for(project: Project, env: str, strategy: Strategy) -> list[PlanStep]:
    """The steps of ``strategy`` in ``env``: the configured ones when relman.toml has them
    for this strategy, else the built-in ones."""
    rollout = project.config.environments[env].rollout
    configured = rollout.steps if rollout.strategy == strategy else []
    if configured:
        chosen: tuple[RolloutStepConfig, ...] | list[RolloutStepConfig] = configured
    elif strategy == "canary":
        chosen = BUILTIN_CANARY
    elif strategy == "shadow":
        chosen = BUILTIN_SHADOW
    else:
        return []
    plan: list[PlanStep] = []
    for item in chosen:
        if item.weight is not None:
            plan.append(PlanStep("weight", weight=item.weight))
        if item.analysis is not None:
            plan.append(PlanStep("analysis", analysis=item.analysis))
        if item.pause is not None:
            seconds = None if item.pause == "manual" else parse_duration(item.pause)
            plan.append(PlanStep("pause", seconds=seconds))
    return _unique(plan)


def _unique(plan: list[PlanStep]) -> list[PlanStep]:
    """Each step named once: an analysis says the weight it judges (``analysis default at
    20%``), and a name still repeated gets its ordinal (``pause 30s (2)``)."""
    weight, named, seen = 0, [], dict[str, int]()
    for step in plan:
        if step.kind == "weight" and step.weight is not None:
            weight = step.weight
        name = step.name
        if step.kind == "analysis":
            name = f"{name} at {weight}%"
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        named.append(replace(step, label=name) if name != step.name else step)
    return named


def analysis_config(project: Project, name: str) -> AnalysisConfig:
    """``[analysis.NAME]``; ``default`` is built in unless declared."""
    declared = project.config.analysis.get(name)
    if declared is not None:
        return declared
    if name == "default":
        return BUILTIN_ANALYSIS
    raise UsageError(f"no [analysis.{name}] in relman.toml")  # checked at load: a bug


def describe_plan(plan: list[PlanStep]) -> str:
    return ", ".join(step.name for step in plan)

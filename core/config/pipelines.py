"""Pipeline steps as relman.toml writes them, read into one shape and checked (docs/pipelines.md).

A step is a string (``"repro"``, ``"deploy:prod"``, ``"soak:staging"``) or a table
(``{ step = "deploy", env = "prod", strategy = "canary" }``). :func:`step_of` reads either
into a :class:`StepDecl`; :func:`check_pipelines` refuses, with ``relman.toml:LINE`` and one
line, what could not run: an unknown step, a deploy out of the environments' order, an
approval for an environment that needs none, a soak of an environment the pipeline never
deployed, a duration that is not one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from core.config.common import _NAME_MESSAGE, NAME_PATTERN, PolicyMatch, Strategy
from core.config.durations import parse_duration
from core.config.schema import Model, toml_table
from core.errors import ConfigError

# ------------------------------------------------------------------- pipelines and triggers
# docs/pipelines.md; what a pipeline resolves to for a service is core/pipelines/definition.py's
# business; the checks below refuse what could not run.

STEP_KINDS = ("repro", "commit", "test", "gate", "build", "deploy", "approve", "soak", "run")
StepKind = Literal["repro", "commit", "test", "gate", "build", "deploy", "approve", "soak", "run"]
Trigger = Literal["commit", "data"]
_DURATION = {"min_length": 1}


@toml_table
class PipelineParameters(Model):
    """What cascades onto each step (None: not set in this layer): how long it may take, how
    often a failure is tried again, and the rollout strategy of a deploy step."""

    timeout: str | None = field(default=None, metadata=_DURATION)
    retries: int | None = field(default=None, metadata={"ge": 0, "le": 10})
    strategy: Strategy | None = None
    fields_set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def parameters(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in PIPELINE_PARAMETERS
            if name in self.fields_set and getattr(self, name) is not None
        }


PIPELINE_PARAMETERS = ("timeout", "retries", "strategy")


@toml_table
class PipelineStepConfig(PipelineParameters):
    """A step written as a table: ``{ step = "soak", env = "staging", duration = "10m" }``,
    ``{ step = "run", cmd = "python check.py", retries = 2 }``."""

    step: StepKind
    env: str | None = field(default=None, metadata={"min_length": 1})
    duration: str | None = field(default=None, metadata=_DURATION)
    cmd: str | None = field(default=None, metadata={"min_length": 1})
    # The name the run shows (default: "deploy:prod", "run", ...).
    name: str | None = field(default=None, metadata={"min_length": 1})


@toml_table
class ConditionalPipelineParameters(PipelineParameters):
    """``[[pipelines.NAME.when]]``: parameters where ``match`` does (``env`` is the step's)."""

    match: PolicyMatch


@toml_table
class PipelineConfig(PipelineParameters):
    """``[pipelines.NAME]``: its ordered steps, what starts it under `relman watch`, and its
    own parameters (above ``[pipelines]``, below a step's own)."""

    steps: list[str | PipelineStepConfig] = field(metadata={"min_length": 1})
    on: list[Trigger] = field(default_factory=list)
    description: str | None = None
    when: list[ConditionalPipelineParameters] = field(default_factory=list)


@toml_table
class PipelineAssign(Model):
    """``[[pipelines.assign]]``: attach pipelines to every matching service."""

    match: PolicyMatch
    pipelines: list[str] = field(metadata={"min_length": 1})


@toml_table
class PipelinesConfig(PipelineParameters):
    """``[pipelines]``: project-wide parameters, conditional values, assign rules; every
    other key is a pipeline (``[pipelines.NAME]``)."""

    assign: list[PipelineAssign] = field(default_factory=list)
    when: list[ConditionalPipelineParameters] = field(default_factory=list)
    named: dict[str, PipelineConfig] = field(
        default_factory=dict,
        metadata={
            "rest": True,
            "key_pattern": NAME_PATTERN,
            "key_message": "pipeline " + _NAME_MESSAGE,
        },
    )


@toml_table
class WatchConfig(Model):
    """``[watch]``: what `relman watch` polls and how long a change must settle."""

    # The branch whose new commits start `on = ["commit"]` pipelines (default: the one
    # checked out when the watcher starts).
    branch: str | None = field(default=None, metadata={"min_length": 1})
    poll: str = "5s"
    # A data file must stay unchanged this long before a run starts (a copy in progress).
    debounce: str = "10s"


# Kinds that act on one environment, and those that take none.
_ENV_KINDS = ("deploy", "approve", "soak")
DEFAULT_SOAK = "10m"
VOCABULARY = "repro, commit, test, gate, build, deploy:ENV, approve:ENV, soak:ENV, run"
# The steps that need the release fixed (relman verifies the candidate before the first).
RELEASE_KINDS = ("test", "gate", "build", "deploy", "approve", "soak")


@dataclass(frozen=True)
class StepDecl:
    """One step of a pipeline as declared: its kind, environment, own values and name."""

    kind: str
    env: str | None = None
    duration: str | None = None
    cmd: str | None = None
    own: PipelineParameters | None = None  # the step's own timeout / retries / strategy
    label: str | None = None

    @property
    def name(self) -> str:
        """What a run shows: ``deploy:prod``, ``soak:staging``, ``run``, or the given name."""
        if self.label:
            return self.label
        return f"{self.kind}:{self.env}" if self.env else self.kind


def step_of(item: str | PipelineStepConfig) -> StepDecl:
    """The declared step ``item``; ValueError saying what is wrong with a string one."""
    if isinstance(item, PipelineStepConfig):
        return StepDecl(
            kind=item.step,
            env=item.env,
            duration=item.duration,
            cmd=item.cmd,
            own=item,
            label=item.name,
        )
    kind, _, env = item.partition(":")
    if kind not in STEP_KINDS:
        raise ValueError(f"unknown step {item!r}; steps are {VOCABULARY}")
    if kind in _ENV_KINDS and not env:
        raise ValueError(f"step {item!r} needs an environment: write '{kind}:ENV'")
    if kind not in _ENV_KINDS and env:
        raise ValueError(f"step {kind!r} takes no environment; write {kind!r}")
    if kind == "run":
        raise ValueError('a run step needs its command: write { step = "run", cmd = "..." }')
    return StepDecl(kind=kind, env=env or None)


def steps_of(pipeline: PipelineConfig) -> list[StepDecl]:
    """The pipeline's steps, read (the config was checked at load)."""
    return [step_of(item) for item in pipeline.steps]


LineOf = Callable[[tuple[str, ...]], int]


def check_pipelines(
    pipelines: PipelinesConfig,
    order: list[str],
    approvals: Mapping[str, int],
    line_of: LineOf,
    shown: str,
) -> None:
    """Every pipeline can run as written (``order``: the environments in promotion order,
    ``approvals``: how many each needs); assign rules name pipelines that exist."""
    layers: list[tuple[tuple[str, ...], PipelineParameters]] = [(("pipelines",), pipelines)]
    for name, pipeline in pipelines.named.items():
        _check_steps(order, approvals, name, pipeline, line_of, shown)
        layers.append((("pipelines", name), pipeline))
        layers += [(("pipelines", name, "when", str(i)), w) for i, w in enumerate(pipeline.when)]
    layers += [(("pipelines", "when", str(i)), w) for i, w in enumerate(pipelines.when)]
    for loc, layer in layers:
        if layer.timeout is not None:
            _duration(
                layer.timeout, (*loc, "timeout"), f"[{'.'.join(loc)}] timeout", line_of, shown
            )
    known = {*pipelines.named, "release"}
    for index, rule in enumerate(pipelines.assign):
        for name in rule.pipelines:
            if name not in known:
                line = line_of(("pipelines", "assign", str(index), "pipelines"))
                choices = ", ".join(sorted(known))
                raise ConfigError(
                    f"{shown}:{line}: [[pipelines.assign]] #{index + 1} pipelines names "
                    f"{name!r}, which is not a [pipelines.*] table ({choices})"
                )
    matches: list[tuple[tuple[str, ...], str, PolicyMatch]] = [
        (("pipelines", "when", str(i)), f"[[pipelines.when]] #{i + 1}", w.match)
        for i, w in enumerate(pipelines.when)
    ]
    for name, pipeline in pipelines.named.items():
        matches += [
            (("pipelines", name, "when", str(i)), f"[[pipelines.{name}.when]] #{i + 1}", w.match)
            for i, w in enumerate(pipeline.when)
        ]
    for loc, where, match in matches:
        for pattern in match.patterns().get("env", []):
            if not any(fnmatch.fnmatchcase(env, pattern) for env in order):
                raise ConfigError(
                    f"{shown}:{line_of((*loc, 'match', 'env'))}: {where} match env = "
                    f"{pattern!r} matches no environment ({', '.join(order)})"
                )


def check_watch(watch: WatchConfig, line_of: LineOf, shown: str) -> None:
    """[watch] poll and debounce are durations, the poll above zero."""
    for key in ("poll", "debounce"):
        seconds = _duration(getattr(watch, key), ("watch", key), f"[watch] {key}", line_of, shown)
        if key == "poll" and seconds <= 0:
            raise ConfigError(f"{shown}:{line_of(('watch', key))}: [watch] poll must be above 0")


def _check_steps(
    order: list[str],
    approvals: Mapping[str, int],
    name: str,
    pipeline: PipelineConfig,
    line_of: LineOf,
    shown: str,
) -> None:
    where = f"[pipelines.{name}]"
    loc = ("pipelines", name, "steps")
    deployed: list[str] = []
    approved: list[str] = []
    released = False  # a step that needs the release has come (verify runs before it)
    reproduced = False  # a repro not committed yet
    for index, item in enumerate(pipeline.steps):

        def fail(problem: str, index: int = index) -> ConfigError:
            return ConfigError(f"{shown}:{line_of(loc)}: {where} steps #{index + 1}: {problem}")

        try:
            step = step_of(item)
        except ValueError as exc:
            raise fail(str(exc)) from None
        if isinstance(item, PipelineStepConfig):
            problem = _table_problem(item)
            if problem:
                raise fail(problem)
        if step.env is not None and step.env not in order:
            raise fail(
                f"no environment {step.env!r} in relman.toml (environments: {', '.join(order)})"
            )
        for text in (step.duration, step.own.timeout if step.own else None):
            if text is not None:
                try:
                    seconds = parse_duration(text)
                except ValueError as exc:
                    raise fail(str(exc)) from None
                if seconds <= 0:
                    raise fail(f"{text!r} is no time at all; give a duration above 0")
        if step.kind in ("repro", "commit") and released:
            raise fail(
                f"{step.kind} after a step that needs the release: the run would deploy the "
                "release from before it; put repro and commit first"
            )
        if step.kind == "repro":
            reproduced = True
        elif step.kind == "commit":
            reproduced = False
        elif step.kind in RELEASE_KINDS:
            if reproduced:
                raise fail(
                    f"{step.name} after repro with no commit between: what repro changed is "
                    "no release until it is committed; put commit after repro"
                )
            released = True
        if step.kind == "deploy":
            assert step.env is not None
            if deployed and order.index(step.env) <= order.index(deployed[-1]):
                raise fail(
                    f"deploy:{step.env} after deploy:{deployed[-1]} is out of order; "
                    f"environments are promoted {' -> '.join(order)}"
                )
            needed = approvals.get(step.env, 0)
            if needed and step.env not in approved:
                raise fail(
                    f"deploy:{step.env} with no approve:{step.env} before it, and {step.env} "
                    f"needs {needed} approval{'s' if needed > 1 else ''}; add "
                    f'"approve:{step.env}" before it'
                )
            deployed.append(step.env)
        elif step.kind == "approve":
            assert step.env is not None
            if approvals.get(step.env, 0) == 0:
                raise fail(
                    f"approve:{step.env}, but {step.env} needs no approval (approvals = 0 in "
                    f"[environments.{step.env}]); remove the step or set approvals"
                )
            approved.append(step.env)
        elif step.kind == "soak":
            assert step.env is not None
            if step.env not in deployed:
                raise fail(
                    f"soak:{step.env} before any deploy:{step.env}; a soak watches what this "
                    "pipeline deployed"
                )
    missing = [env for env in approved if env not in deployed]
    if missing:
        raise ConfigError(
            f"{shown}:{line_of(loc)}: {where} approve:{missing[0]} has no deploy:{missing[0]} "
            "after it; an approval lets a deploy go on"
        )


def _table_problem(item: PipelineStepConfig) -> str | None:
    """What a step table sets that its kind does not take, or lacks that it needs."""
    kind = item.step
    if kind in _ENV_KINDS and item.env is None:
        return f'a {kind} step needs env = "ENV"'
    if kind not in _ENV_KINDS and item.env is not None:
        return f"a {kind} step takes no env"
    if kind == "run" and item.cmd is None:
        return 'a run step needs cmd = "..."'
    if kind != "run" and item.cmd is not None:
        return f"cmd belongs to run steps, not {kind}"
    if kind != "soak" and item.duration is not None:
        return f"duration belongs to soak steps, not {kind}"
    if kind != "deploy" and item.strategy is not None:
        return f"strategy belongs to deploy steps, not {kind}"
    return None


def _duration(text: str, loc: tuple[str, ...], where: str, line_of: LineOf, shown: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{shown}:{line_of(loc)}: {where}: {exc}") from None
    if seconds <= 0 and not loc[-1] == "debounce":
        raise ConfigError(
            f"{shown}:{line_of(loc)}: {where}: {text!r} is no time at all; give a duration above 0"
        )
    return seconds

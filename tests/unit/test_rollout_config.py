"""relman.toml's rollouts and analyses: what a rollout runs, and every bad value refused in
one line that names the file, the line and what to write instead (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.durations import format_duration, parse_duration
from core.config.model import Project, parse_config
from core.delivery.rollout_plan import (
    BUILTIN_ANALYSIS,
    PlanStep,
    analysis_config,
    plan_for,
    strategy_for,
)
from core.errors import ConfigError, UsageError

BASE = """[project]
name = "demo"

[services.iris]
bento = "service:Iris"
model = ["model"]

[environments.dev]
port = 3000
"""


def _project(text: str) -> Project:
    path = Path("/nowhere/relman.toml")
    return Project(path.parent, path, parse_config(BASE + text, path))


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _project(text)
    return str(caught.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30.0), ("2m", 120.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1x", "m", "1m x", "-1s"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_configured_steps_become_one_action_each() -> None:
    project = _project(
        """
[environments.dev.rollout]
strategy = "canary"
steps = [ { weight = 10, pause = "1m" }, { analysis = "health" }, { pause = "manual" },
          { weight = 50 } ]

[analysis.health]
interval = "20s"
"""
    )
    plan = plan_for(project, "dev", "canary")
    assert [step.name for step in plan] == [
        "weight 10%",
        "pause 1m",
        "analysis health at 10%",
        "pause (manual)",
        "weight 50%",
    ]
    assert plan[3].seconds is None
    assert [PlanStep.from_json(step.to_json()) for step in plan] == plan
    assert strategy_for(project, "dev", None) == "canary"
    assert analysis_config(project, "health").interval == "20s"


def test_builtin_steps_when_none_are_configured_finish_within_five_minutes() -> None:
    project = _project("")
    assert strategy_for(project, "dev", None) == "all-at-once"
    assert plan_for(project, "dev", "all-at-once") == []
    for strategy in ("canary", "shadow"):
        plan = plan_for(project, "dev", strategy)  # type: ignore[arg-type]
        assert any(step.kind == "analysis" for step in plan)
        interval = parse_duration(BUILTIN_ANALYSIS.interval)
        # Each analysis may measure twice its count when the first are inconclusive.
        worst = sum(step.seconds or 0.0 if step.kind == "pause" else 0.0 for step in plan) + sum(
            2 * BUILTIN_ANALYSIS.count * interval for step in plan if step.kind == "analysis"
        )
        assert worst <= 300, (strategy, worst)
    assert analysis_config(project, "default") == BUILTIN_ANALYSIS
    with pytest.raises(UsageError, match="--strategy linear: not a strategy"):
        strategy_for(project, "dev", "linear")


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("{ weight = 50 }, { weight = 10 }", "steps #2: weights must rise: 10 after 50"),
        ("{ weight = 0 }", "steps #1: a weight must be above 0"),
        ("{ weight = 120 }", "120"),
        ('{ weight = 10, pause = "soon" }', "steps #1: pause: 'soon' is not a duration"),
        ('{ analysis = "nope" }', "analysis 'nope' is not an [analysis.*] table"),
        ('{ weight = 10, analysis = "default" }', "sets weight or analysis, not both"),
        ("{ }", "a step needs weight, pause or analysis"),
        ('{ analysis = "default", pause = "1m" }', "an analysis step takes no pause"),
    ],
)
def test_bad_steps_are_one_line_with_file_and_line(steps: str, message: str) -> None:
    line = _error(f'\n[environments.dev.rollout]\nstrategy = "canary"\nsteps = [ {steps} ]\n')
    assert message in line, line
    assert line.startswith("/nowhere/relman.toml:"), line
    assert "\n" not in line


def test_steps_without_a_strategy_that_takes_them() -> None:
    line = _error("\n[environments.dev.rollout]\nsteps = [ { weight = 10 } ]\n")
    assert 'steps need strategy = "canary" or "shadow"' in line


def test_bad_analysis_values() -> None:
    assert "interval: 'often' is not a duration" in _error('\n[analysis.a]\ninterval = "often"\n')
    assert "unknown key" in _error("\n[analysis.a]\nbogus = 1\n")
    assert "checks" in _error('\n[analysis.a]\nchecks = ["vibes"]\n')
    assert "inconclusive" in _error('\n[analysis.a]\ninconclusive = "shrug"\n')

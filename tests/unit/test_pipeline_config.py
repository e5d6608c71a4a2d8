"""relman.toml's pipelines: steps read into one shape, values that cascade onto each step
with the layer that set them, assignment to services, and every bad pipeline refused in one
line that names the file and the line (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config.model import RelmanConfig, parse_config
from core.errors import ConfigError, UsageError
from core.pipelines.definition import assigned, declared, explain, listing, resolve
from core.pipelines.runner import plan

BASE = """[project]
name = "demo"

[services.iris]
bento = "service:Iris"
model = ["model"]

[services.roses]
bento = "service:Roses"
model = ["roses-model"]

[environments.dev]
port = 3000

[environments.staging]
port = 3001

[environments.prod]
port = 3002
approvals = 1

[environments.prod.rollout]
strategy = "canary"
"""


def _config(text: str = "") -> RelmanConfig:
    return parse_config(BASE + text, Path("relman.toml"))


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _config(text)
    return str(caught.value)


def test_a_project_without_pipelines_has_the_built_in_release_for_every_service() -> None:
    config = _config()
    assert list(declared(config)) == ["release"]
    assert assigned(config, "iris") == assigned(config, "roses") == ["release"]
    pipeline = resolve(config, "release", "iris")
    assert [step.name for step in pipeline.steps] == ["test", "gate", "build", "deploy:dev"]
    assert pipeline.built_in
    # verify comes before the first step that needs the release fixed
    assert [step.name for step in plan(pipeline)][:2] == ["verify", "test"]


def test_steps_values_cascade_with_their_sources() -> None:
    config = _config(
        """
[pipelines]
retries = 1
timeout = "20m"

[[pipelines.when]]
match = { env = "prod" }
retries = 0

[pipelines.ship]
steps = ["repro", "commit", "test", "deploy:dev", { step = "soak", env = "dev", duration = "2m" },
         "approve:prod", "deploy:prod", { step = "run", cmd = "true", retries = 3 }]
on = ["data"]
timeout = "45m"

[[pipelines.ship.when]]
match = { service = "iris", env = "dev" }
timeout = "5m"

[[pipelines.assign]]
match = { service = "ir*" }
pipelines = ["ship"]
"""
    )
    assert assigned(config, "iris") == ["ship"] and assigned(config, "roses") == ["release"]
    steps = {step.name: step for step in resolve(config, "ship", "iris").steps}
    assert (
        steps["repro"].timeout == 45 * 60
        and steps["repro"].sources["timeout"] == "[pipelines.ship]"
    )
    assert steps["repro"].retries == 1 and steps["repro"].sources["retries"] == "[pipelines]"
    assert steps["deploy:dev"].timeout == 5 * 60
    assert steps["deploy:dev"].sources["timeout"] == "[pipelines.ship] (when service=iris, env=dev)"
    assert steps["deploy:prod"].retries == 0
    assert steps["deploy:prod"].sources["retries"] == "[pipelines] (when env=prod)"
    assert steps["deploy:prod"].strategy == "canary"
    assert steps["deploy:prod"].sources["strategy"] == "[environments.prod.rollout]"
    assert steps["soak:dev"].duration == 120 and steps["soak:dev"].timeout == 5 * 60 + 120
    assert (
        steps["run"].retries == 3 and steps["run"].sources["retries"] == "[pipelines.ship] steps #8"
    )
    # the same pipeline for another service: the service's conditional does not apply
    other = {s.name: s for s in resolve(config, "ship", "roses").steps}
    assert other["deploy:dev"].timeout == 45 * 60
    document = explain(config, "ship", "iris")
    assert document["on"] == ["data"] and document["steps"][0]["sources"]["timeout"]
    rows = {row["name"]: row for row in listing(config)["pipelines"]}
    assert rows["ship"]["services"] == ["iris"] and rows["release"]["services"] == ["roses"]


def test_a_project_may_redefine_release() -> None:
    config = _config('[pipelines.release]\nsteps = ["test", "deploy:dev"]\n')
    assert list(declared(config)) == ["release"]
    assert not resolve(config, "release", "iris").built_in


def test_unknown_pipeline_or_service_is_a_usage_error() -> None:
    config = _config()
    with pytest.raises(UsageError, match=r"no pipeline 'nope'.*pipelines: release"):
        resolve(config, "nope", "iris")
    with pytest.raises(UsageError, match="no service 'tulip'"):
        resolve(config, "release", "tulip")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[pipelines.x]\nsteps = ["test", "deplooy:dev"]\n',
            "relman.toml:26: [pipelines.x] steps #2: unknown step 'deplooy:dev'; steps are repro",
        ),
        (
            '[pipelines.x]\nsteps = ["deploy:staging", "deploy:dev"]\n',
            "steps #2: deploy:dev after deploy:staging is out of order; environments are promoted "
            "dev -> staging -> prod",
        ),
        (
            '[pipelines.x]\nsteps = ["approve:dev", "deploy:dev"]\n',
            "steps #1: approve:dev, but dev needs no approval (approvals = 0 in "
            "[environments.dev])",
        ),
        (
            '[pipelines.x]\nsteps = ["deploy:prod", "approve:prod"]\n',
            "steps #1: deploy:prod with no approve:prod before it, and prod needs 1 approval; "
            'add "approve:prod" before it',
        ),
        (
            '[pipelines.x]\nsteps = ["repro", "test", "commit"]\n',
            "steps #2: test after repro with no commit between",
        ),
        (
            '[pipelines.x]\nsteps = ["test", "repro", "commit"]\n',
            "steps #2: repro after a step that needs the release",
        ),
        (
            '[pipelines.x]\nsteps = [{ step = "run", cmd = "true", timeout = "0s" }]\n',
            "'0s' is no time at all",
        ),
        (
            '[pipelines]\ntimeout = "0s"\n[pipelines.x]\nsteps = ["test"]\n',
            "[pipelines] timeout: '0s' is no time at all",
        ),
        ('[pipelines.x]\nsteps = ["approve:prod"]\n', "approve:prod has no deploy:prod after it"),
        ('[pipelines.x]\nsteps = ["soak:dev"]\n', "soak:dev before any deploy:dev"),
        ('[pipelines.x]\nsteps = ["deploy:qa"]\n', "no environment 'qa' in relman.toml"),
        ('[pipelines.x]\nsteps = ["deploy"]\n', "step 'deploy' needs an environment"),
        ('[pipelines.x]\nsteps = ["test:dev"]\n', "step 'test' takes no environment"),
        ('[pipelines.x]\nsteps = [{ step = "run" }]\n', 'a run step needs cmd = "..."'),
        (
            '[pipelines.x]\nsteps = [{ step = "test", duration = "1m" }]\n',
            "duration belongs to soak steps, not test",
        ),
        (
            '[pipelines.x]\nsteps = [{ step = "test", timeout = "soon" }]\n',
            "'soon' is not a duration",
        ),
        (
            '[pipelines.x]\nsteps = ["test"]\non = ["push"]\n',
            "bad value for item 1 of 'on' in [pipelines.x]",
        ),
        ('[pipelines.x]\nsteps = ["test"]\nbogus = 1\n', "unknown key 'bogus' in [pipelines.x]"),
        ("[pipelines.x]\nsteps = []\n", "at least 1"),
        (
            '[[pipelines.assign]]\nmatch = {}\npipelines = ["nope"]\n',
            "[[pipelines.assign]] #1 pipelines names 'nope', which is not a [pipelines.*] table",
        ),
        (
            '[pipelines.x]\nsteps = ["test"]\n[[pipelines.x.when]]\nmatch = { env = "qa*" }\n'
            "retries = 1\n",
            "[[pipelines.x.when]] #1 match env = 'qa*' matches no environment",
        ),
        ('[watch]\npoll = "fast"\n', "[watch] poll: 'fast' is not a duration"),
    ],
)
def test_bad_pipelines_are_one_line_with_file_and_line(text: str, message: str) -> None:
    error = _error("\n" + text)
    assert error.startswith("relman.toml:") and "\n" not in error
    assert message in error

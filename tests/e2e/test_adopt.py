"""A repository relman did not write (tests/e2e/adopted.py): read before configuring, then
`relman init` without a BentoML service, through the CLI as a new user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.adopted import Adopted, adopted_in, build_shapes
from tests.e2e.conftest import isolate_user

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adopted]:
    with adopted_in(tmp_path_factory.mktemp("adopted")) as built:
        yield built


def relman(root: Path, *args: str) -> tuple[int, str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def gto_show(root: Path) -> dict[str, str]:
    """{stage: version} of churn, as GTO's own `gto show` reads the tags."""
    import gto.api

    shown = gto.api.show(str(root))  # {artifact: {"version", "stage": {stage: version}}}
    return dict(shown["churn"]["stage"])


def test_status_history_and_diff_read_a_repository_without_relman_toml(
    adopted: Adopted,
) -> None:
    root = adopted.root
    code, out, err = relman(root, "--json", "status")
    assert code == 0, err
    status = json.loads(out)
    assert status["inferred"] is True
    assert "relman init" in status["reading"]
    services = {service["name"]: service for service in status["services"]}
    assert sorted(services) == ["churn", "sub-encoder"]

    churn = services["churn"]["candidate"]
    [model] = churn["model"]
    assert model["name"] == "churn" and model["md5"] == adopted.model_md5
    assert model["in_cache"] is True
    [data] = churn["data"]
    assert data["path"] == "data/raw.csv" and data["md5"] == adopted.data_md5
    assert data["in_cache"] is False
    assert churn["params"]["params.yaml"]["train"]["seed"] == 3
    assert churn["metrics"]["metrics.json"]["auc"] == pytest.approx(0.83)
    # The nested dvc.yaml: its model, its data upstream.
    encoder = services["sub-encoder"]["candidate"]
    assert [m["name"] for m in encoder["model"]] == ["sub:encoder"]
    assert [d["path"] for d in encoder["data"]] == ["data/raw.csv"]

    # The versions and stages GTO shows, as environments relman reads and does not serve.
    registry = services["churn"]["registry"]["churn"]
    assert registry == gto_show(root) == {"dev": "v0.3.0", "staging": "v0.2.0", "prod": "v0.1.0"}
    envs = services["churn"]["environments"]
    assert list(envs) == ["dev", "staging", "prod"]
    assert {env: entry["version"] for env, entry in envs.items()} == registry
    assert all(entry["url"] is None for entry in envs.values())

    code, out, err = relman(root, "status")
    assert code == 0, err
    assert out.splitlines()[0].startswith("reading without a relman.toml")

    code, out, err = relman(root, "--json", "history")
    assert code == 0, err
    summaries = [entry["summary"] for entry in json.loads(out)["entries"]]
    assert any("v0.3.0" in line for line in summaries), summaries

    code, out, err = relman(root, "--read-only", "--json", "history", "--at", "2100-01-01")
    assert code == 0, err

    assert not (root / "relman.toml").exists()
    assert not (root / ".relman").exists()  # read, never written


def test_init_without_a_bentoml_service_then_build_says_what_to_add(
    adopted: Adopted, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(adopted.root, root, symlinks=True)
    code, out, err = relman(root, "init")
    assert code == 0, err
    assert "no BentoML service here yet" in out
    text = (root / "relman.toml").read_text()
    assert "[services.churn]" in text and "[services.sub-encoder]" in text
    assert '# bento = "service:MyService"' in text

    code, out, err = relman(root, "--json", "status")
    assert code == 0, err
    assert json.loads(out)["inferred"] is False

    code, out, err = relman(root, "build")
    assert code == 2
    assert "has no BentoML service to build" in err and "bento =" in err
    assert len(err.strip().splitlines()) == 1

    code, out, err = relman(root, "release", "--to", "dev")
    assert code == 2, err
    assert "has no BentoML service to build" in err


def test_matrix_stages_vars_and_nested_yaml_metrics_read_as_they_are(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, tmp_path)
        root = build_shapes(tmp_path)
        code, out, err = relman(root, "--json", "status")
        assert code == 0, err
        services = {s["name"]: s for s in json.loads(out)["services"]}
        assert sorted(services) == ["large", "small"]
        small = services["small"]["candidate"]
        assert [m["path"] for m in small["model"]] == ["models/small-adam.pkl"]
        assert [d["path"] for d in small["data"]] == ["data/raw.csv"]
        assert small["problems"] == []  # frozen and always_changed stages stop nothing here
        assert small["metrics"] == {
            "metrics.json": {"acc": 0.9},
            "eval.yaml": {"loss": {"val": 0.2}},
        }
        assert small["params"]["params.yaml"]["train"]["lr"] == 0.1
        assert services["small"]["environments"] == {}  # no GTO tag assigns a stage

        code, out, err = relman(root, "status")
        assert code == 0, err
        assert "metrics acc 0.9, loss.val 0.2" in out
        assert "environments: none" in out

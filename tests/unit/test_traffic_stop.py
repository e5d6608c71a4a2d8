"""`relman traffic SERVICE --env ENV --stop` ends the background load `--detach` started on
that environment (the command the palette's Stop traffic shows), and only that one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.host.processes import TAG_VARIABLE
from core.traffic.load import traffic_tag
from tui.cli import run

TOML = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["model.pkl"]

[environments.dev]
port = 3100

[environments.prod]
port = 3102
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "relman.toml").write_text(TOML, encoding="utf-8")
    return tmp_path


@pytest.fixture
def loads(project: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """A stand-in for a detached load on dev and one on prod, tagged as relman tags them."""
    from core.config.model import load_project

    loaded = load_project(project)
    started = {
        env: subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)"],
            env={**os.environ, TAG_VARIABLE: traffic_tag(loaded, "shop", env)},
            start_new_session=True,
        )
        for env in ("dev", "prod")
    }
    yield started
    for process in started.values():
        process.kill()
        process.wait()


def test_stop_ends_the_load_of_that_environment_only(
    project: Path,
    loads: dict[str, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run(["--project", str(project), "traffic", "shop", "--env", "dev", "--stop"])
    assert code == 0
    assert capsys.readouterr().out.strip() == "stopped the background traffic on shop in dev"
    assert loads["dev"].wait(timeout=30) is not None
    assert loads["prod"].poll() is None
    run(["--project", str(project), "traffic", "shop", "--env", "dev", "--stop"])
    assert capsys.readouterr().out.strip() == "no background traffic ran on shop in dev"


def test_stop_is_refused_in_read_only_mode(
    project: Path,
    loads: dict[str, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["--project", str(project), "--read-only", "traffic", "shop", "--env", "dev", "--stop"]
    assert run(args) != 0
    assert "read-only" in capsys.readouterr().err
    assert loads["dev"].poll() is None

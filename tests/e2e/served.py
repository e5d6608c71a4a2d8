"""Helpers of the end-to-end tests that serve real Bentos: a private copy of the demo on
free ports, the relman CLI as a process, second releases, and the check that nothing a test
started is left running."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.host.processes import end_processes, processes_mentioning
from tests.e2e.conftest import Demo
from tests.ports import worker_ports
from tests.waiting import wait_for

BIN = str(Path(sys.executable).parent)


def relman(
    root: Path, *args: str, user: str = "alice", timeout: float = 180, **env: str
) -> subprocess.CompletedProcess[str]:
    """``relman --project ROOT ARGS`` as a user runs it, as ``user``."""
    return subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "RELMAN_USER": user, **env},
    )


def relman_json(root: Path, *args: str, user: str = "alice", **env: str) -> dict:
    done = relman(root, "--batch", "--json", *args, user=user, **env)
    assert done.stdout, done.stderr
    document: dict = json.loads(done.stdout)
    document["_exit"] = done.returncode
    document["_stderr"] = done.stderr
    return document


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def ports_of(root: Path) -> dict[str, int]:
    text = (root / "relman.toml").read_text()
    found = re.findall(r"\[environments\.(\w+)\]\nport = (\d+)", text)
    return {env: int(port) for env, port in found}


def use_worker_ports(root: Path) -> str:
    """relman.toml's environments moved to ports of this test worker's own band, free right
    now; the file's new text."""
    config = root / "relman.toml"
    text = config.read_text()
    old = ports_of(root)
    for (env, port), fresh in zip(old.items(), worker_ports(len(old)), strict=True):
        text = text.replace(
            f"[environments.{env}]\nport = {port}", f"[environments.{env}]\nport = {fresh}"
        )
    config.write_text(text)
    return text


def copy_demo(demo: Demo, root: Path) -> Path:
    """A private copy of the demo whose environments listen on ports free right now."""
    shutil.copytree(demo.root, root, symlinks=True)
    use_worker_ports(root)
    git(root, "commit", "-qam", "ports of this test")
    return root


def second_release(root: Path, c: str = "0.5") -> None:
    """Change the model's params, reproduce the pipeline and commit: a new release."""
    params = root / "params.yaml"
    params.write_text(re.sub(r"  C: [0-9.]+", f"  C: {c}", params.read_text()))
    env = {**os.environ, "PATH": os.pathsep.join([BIN, os.environ.get("PATH", "")])}
    subprocess.run(
        [str(Path(BIN) / "dvc"), "repro", "-q"], cwd=root, env=env, check=True, capture_output=True
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", f"C {c}")


def predict(port: int) -> list[str]:
    body = (
        Path(__file__).resolve().parents[2] / "core/scaffold/demo_template/sample_request.json"
    ).read_bytes()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        result: list[str] = json.loads(answer.read())
    return result


def environments(root: Path) -> dict[str, dict]:
    status = relman_json(root, "status")
    envs: dict[str, dict] = status["services"][0]["environments"]
    return envs


def processes_of(root: Path) -> list[tuple[int, str]]:
    """Live processes started for ``root``: tagged with one of its instance folders, or
    naming its folder on their command line (the proxies)."""
    return processes_mentioning(root)


def served_count(root: Path) -> int:
    """How many `bentoml serve` servers run for ``root``."""
    return sum(1 for _, cmd in processes_of(root) if "bentoml serve" in cmd)


@pytest.fixture
def served(demo: Demo, tmp_path: Path) -> Iterator[Path]:
    """A private demo copy; afterwards `relman down`, and nothing of it may still run."""
    root = copy_demo(demo, tmp_path / "iris-demo")
    try:
        yield root
    finally:
        down_and_check(root)


def down_and_check(root: Path) -> None:
    """`relman down` in ``root``; then nothing of it may still run (what does is ended by
    pid, and the test fails naming it)."""
    relman(root, "--batch", "down", timeout=120)
    # Servers take a moment to exit after the signal: wait for that, and fail below with
    # what is left if it never comes.
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not processes_of(root), "the processes relman down stops to end")
    left = processes_of(root)
    end_processes([pid for pid, _ in left], 2.0)  # clean up by pid, then fail
    assert not left, f"processes left behind after relman down: {left}"

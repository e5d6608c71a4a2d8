"""`relman test` and `relman gate` as CI runs them: real processes on a copy of the demo."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from core.delivery.gates import format_value
from tests.e2e.conftest import Demo

pytestmark = pytest.mark.e2e


def relman(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def project(demo: Demo, tmp_path: Path) -> Path:
    root = tmp_path / "iris-demo"
    shutil.copytree(demo.root, root, symlinks=True)
    return root


def collected(root: Path) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"(\d+) tests? collected", done.stdout)
    assert found, done.stdout
    return int(found.group(1))


def junit_cases(path: Path) -> list[ET.Element]:
    return list(ET.parse(path).getroot().iter("testcase"))


def test_test_writes_junit_and_exits_1_on_a_failing_test(project: Path, tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    done = relman(project, "--batch", "test", "--junit", str(junit))
    assert done.returncode == 0, done.stderr
    assert len(junit_cases(junit)) == collected(project)
    assert "unit" in done.stderr and "passed" in done.stderr  # progress on stderr

    (project / "tests" / "unit" / "test_broken.py").write_text(
        "def test_broken():\n    assert 1 + 1 == 3\n"
    )
    commit(project, "a broken test")
    done = relman(project, "--batch", "--json", "test", "--junit", str(junit))
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["recorded"] is True
    unit = next(s for s in document["steps"] if s["name"] == "unit")
    assert unit["status"] == "failed" and "1 failed" in unit["detail"]
    broken = [case for case in junit_cases(junit) if case.get("name") == "test_broken"]
    assert len(broken) == 1
    assert broken[0].find("failure") is not None


def test_gate_names_the_accuracy_of_scrambled_data(project: Path) -> None:
    data = project / "data" / "iris.csv"
    header, *rows = data.read_text().splitlines()
    species = [row.rsplit(",", 1)[1] for row in rows]
    random.Random(7).shuffle(species)
    scrambled = [
        f"{row.rsplit(',', 1)[0]},{label}" for row, label in zip(rows, species, strict=True)
    ]
    data.write_text("\n".join([header, *scrambled]) + "\n")
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    }
    for command in (["add", "data/iris.csv"], ["repro"]):
        subprocess.run(
            [sys.executable, "-m", "dvc", *command],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
        )
    commit(project, "scrambled data")
    accuracy = json.loads((project / "metrics.json").read_text())["accuracy"]
    assert accuracy < 0.9

    done = relman(project, "--batch", "--json", "gate", "iris", "--env", "dev")
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is False and document["env"] == "dev"
    failed = [s for s in document["steps"] if s["status"] == "failed"]
    assert any(
        "accuracy" in s["detail"] and format_value(accuracy) in s["detail"] for s in failed
    ), failed

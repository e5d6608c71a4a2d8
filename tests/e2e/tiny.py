"""A tiny relman project whose one test suite hangs: git, DVC, a relman.toml and a test that
writes its own pid and its child's to the file ``RELMAN_TEST_PIDS`` names, then sleeps far
longer than any test waits. Gone by then means relman stopped them, not that they ended."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil

from store.errors import SchemaTooOld, StoreBusy
from store.ledger.snapshot import open_runs
from tests.waiting import wait_for

PIDS_VARIABLE = "RELMAN_TEST_PIDS"

RELMAN_TOML = """\
[project]
name = "tiny"
python = "{python}"

[services.svc]
bento = "service:Svc"
build = "bentofile.yaml"
model = ["tiny-model"]
data = ["tiny-data"]

[environments.dev]
port = 39111
suites = ["slow"]

[suites.slow]
paths = ["tests"]
"""

DVC_YAML = """\
artifacts:
  tiny-model:
    path: model.bin
    type: model
  tiny-data:
    path: data.csv
    type: dataset
"""

HANGING_TEST = """\
import os
import subprocess
import sys
import time
from pathlib import Path


def test_hangs():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(os.environ["RELMAN_TEST_PIDS"]).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(600)
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_tiny_project(root: Path) -> Path:
    """The project in ``root``, committed: its candidate is clean, so a test run is recorded."""
    from dvc.repo import Repo

    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    files = {
        "relman.toml": RELMAN_TOML.format(python=sys.executable),
        "dvc.yaml": DVC_YAML,
        "model.bin": "model\n",
        "data.csv": "a,b\n1,2\n",
        "bentofile.yaml": 'service: "service:Svc"\n',
        "tests/test_hangs.py": HANGING_TEST,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    cwd = os.getcwd()
    os.chdir(root)  # DVC takes targets relative to the current folder
    try:
        with Repo.init(str(root)) as repo:
            repo.add(["model.bin", "data.csv"])
    finally:
        os.chdir(cwd)
    with (root / ".gitignore").open("a") as ignore:
        ignore.write(".relman/\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "a tiny project with a test that hangs")
    return root


def start_relman(root: Path, pids: Path, *args: str) -> subprocess.Popen[str]:
    """``relman --project ROOT ARGS`` as a process of its own group (stdout and stderr in
    files next to ``pids``, read with :func:`output`)."""
    env = {**os.environ, PIDS_VARIABLE: str(pids), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with (pids.parent / "stdout").open("w") as out, (pids.parent / "stderr").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "tui", "--project", str(root), *args],
            stdout=out,
            stderr=err,
            text=True,
            env=env,
            start_new_session=True,
        )


def output(pids: Path) -> tuple[str, str]:
    return (pids.parent / "stdout").read_text(), (pids.parent / "stderr").read_text()


def running_test_pids(root: Path, relman: subprocess.Popen[str] | int, pids: Path) -> list[int]:
    """Wait until the ledger records the test run ``running`` and the test hangs; the pids of
    its pytest process and of the child that test started. ``relman``: its process, or pid."""

    def started() -> list[int] | None:
        if isinstance(relman, int):
            assert not gone(relman), "relman ended"
        else:
            assert relman.poll() is None, output(pids)
        try:
            runs = open_runs(root / ".relman" / "ledger.db")
        except (SchemaTooOld, StoreBusy):  # relman is creating it: its migrations run
            return None
        if not any(run.kind == "test" and run.status == "running" for run, _version in runs):
            return None
        text = pids.read_text() if pids.exists() else ""
        return [int(pid) for pid in text.split()] if len(text.split()) == 2 else None

    return wait_for(started, "the test run to be recorded running, its test hanging")


def gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie not reaped yet has ended too)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def ended_after(pids: Path) -> Iterator[None]:
    """Whatever the test asserts, the hanging test's processes never outlive it."""
    try:
        yield
    finally:
        for pid in [int(pid) for pid in (pids.read_text().split() if pids.exists() else [])]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()

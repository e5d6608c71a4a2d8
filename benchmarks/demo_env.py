"""What the benchmarks that serve the demo share: an isolated environment for relman and
its tools, running a command or relman's --json, and cleaning up every process by pid.

Imported by the benchmark scripts, which run as `python benchmarks/bench_*.py` (so this
folder is on sys.path); relman's own packages are found through the installed venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from core.host.processes import end_processes, processes_mentioning

BIN = Path(sys.executable).parent
RELMAN = str(BIN / "relman")


def environment(tmp: Path, marker: str, user: str = "bench") -> dict[str, str]:
    """relman's environment for a benchmark living in ``tmp``: its own BentoML home, the
    venv's bin on PATH (the demo's dvc stages run `python`), no analytics, a marker."""
    return {
        **os.environ,
        "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        "RELMAN_USER": user,
        "BENTOML_HOME": str(tmp / "bentoml"),
        "DVC_NO_ANALYTICS": "1",
        "BENTOML_DO_NOT_TRACK": "True",
        marker: str(tmp),
    }


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; a failure ends the benchmark with its last lines."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {' | '.join(tail)}")
    return done


def relman_json(args: list[str], demo: Path, env: dict[str, str]) -> dict:
    """``relman --batch --json ARGS``'s document; one that is not ok ends the benchmark."""
    done = run([RELMAN, "--batch", "--json", *args], demo, env)
    document: dict = json.loads(done.stdout)
    if not document.get("ok"):
        raise SystemExit(f"relman {' '.join(args)}: {document.get('error')}")
    return document


def leftovers(tmp: Path) -> list[int]:
    """Live bentoml / core.targets.proxy processes naming ``tmp`` in their command line or
    environment."""
    return [
        pid
        for pid, command in processes_mentioning(tmp)
        if "bentoml" in command or "core.targets.proxy" in command
    ]


def clean_up(demo: Path, env: dict[str, str], tmp: Path) -> None:
    """`relman down`, then stop by pid whatever still names ``tmp``; print what was left."""
    if (demo / "relman.toml").exists():
        subprocess.run(
            [RELMAN, "--batch", "down"], cwd=demo, env=env, capture_output=True, check=False
        )
    found = [pid for pid, _command in processes_mentioning(tmp)]
    end_processes(found, 10)
    print(
        f"processes left after relman down: {len(found)} {found} (stopped by pid); "
        f"{len(processes_mentioning(tmp))} remain"
    )

"""How long relman takes to build every candidate, against `dvc status` + `git status`.

Both sides run as fresh processes, as a user would: relman's side is one ``python -c`` that
imports core.lineage.candidate and builds the candidate of every service; the baseline is
``dvc status`` followed by ``git status --porcelain``, each its own process. Each side runs
``--runs`` times after one warm-up; the medians and their ratio are printed. Goal: <= 1.3.

    python benchmarks/bench_status.py            # builds a small DVC repo in a temp dir
    python benchmarks/bench_status.py DIR        # measures an existing repo (its artifacts)

When DIR holds a relman.toml (e.g. a `relman demo` project), the whole command
`relman --json status` (CLI start-up, config, ledger, lineage, GTO tags, JSON) is measured
too, against the same baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc") if (BIN / "dvc").exists() else "dvc"

TRAIN = """\
import json, os
os.makedirs("models", exist_ok=True); os.makedirs("data/features", exist_ok=True)
rows = open("data/iris.csv").read().splitlines()
open("models/model.pkl", "w").write(open("params.yaml").read() + str(len(rows)))
for i in range(20):
    open(f"data/features/f{i}.txt", "w").write(str(i) * 100)
json.dump({"accuracy": 0.95}, open("metrics.json", "w"))
"""


def _run(root: Path, *cmd: str) -> None:
    subprocess.run(cmd, cwd=root, check=True, capture_output=True)


def build_repo(root: Path) -> None:
    """A git + DVC repo: a .dvc-tracked dataset, one stage, a model, a 20-file directory."""
    root.mkdir(parents=True)
    _run(root, "git", "init", "-q", "-b", "main")
    _run(root, DVC, "init", "-q")
    (root / "data").mkdir()
    (root / "data/iris.csv").write_text("a,b,label\n" + "1.0,2.0,x\n" * 150)
    (root / "params.yaml").write_text("lr: 0.1\nepochs: 3\n")
    (root / "train.py").write_text(TRAIN)
    cmd = json.dumps(f"{shlex.quote(sys.executable)} train.py")
    (root / "dvc.yaml").write_text(
        f"stages:\n  train:\n    cmd: {cmd}\n    deps: [train.py, data/iris.csv]\n"
        "    params: [lr, epochs]\n    outs: [models/model.pkl, data/features]\n"
        "    metrics: [{metrics.json: {cache: false}}]\n"
        "artifacts:\n  clf: {path: models/model.pkl, type: model}\n"
        "  iris: {path: data/iris.csv, type: dataset}\n"
    )
    _run(root, DVC, "add", "-q", "data/iris.csv")
    _run(root, DVC, "repro", "-q")
    _run(root, "git", "add", "-A")
    ident = ("-c", "user.name=relman bench", "-c", "user.email=bench@relman.invalid")
    _run(root, "git", *ident, "commit", "-q", "-m", "bench")


def services_of(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """One service per model artifact of dvc.yaml, with every dataset as its data."""
    import yaml

    artifacts = (yaml.safe_load((root / "dvc.yaml").read_text()) or {}).get("artifacts", {})
    models = [n for n, a in artifacts.items() if a.get("type") == "model"]
    data = [n for n, a in artifacts.items() if a.get("type") == "dataset"]
    return {name: ([name], data) for name in models}


def timed(commands: list[list[str]], root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    for cmd in commands:
        subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", type=Path, help="an existing git + DVC repository")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="relman-bench-") as tmp:
        root = args.repo.resolve() if args.repo else Path(tmp) / "repo"
        if not args.repo:
            build_repo(root)
        services = services_of(root)
        code = (
            "from pathlib import Path; from core.lineage.candidate import candidates; "
            f"r = candidates(Path({str(root)!r}), {services!r}); "
            "assert all(not c.problems for c in r.values()), [c.problems for c in r.values()]"
        )
        ours = [[sys.executable, "-c", code]]
        baseline = [[DVC, "status"], ["git", "status", "--porcelain"]]
        cli = [[str(BIN / "relman"), "--project", str(root), "--json", "status"]]
        with_cli = (root / "relman.toml").exists()
        timed(ours, root, env), timed(baseline, root, env)  # warm caches and DVC's state db
        ours_t, base_t, cli_t = [], [], []
        for _ in range(args.runs):  # interleaved, so drift in machine load hits both sides
            ours_t.append(timed(ours, root, env))
            base_t.append(timed(baseline, root, env))
            if with_cli:
                cli_t.append(timed(cli, root, env))
    ours_m, base_m = statistics.median(ours_t), statistics.median(base_t)
    if cli_t:
        cli_m = statistics.median(cli_t)
        print(f"relman --json status (CLI):     {cli_m * 1000:7.1f} ms  (median of {args.runs})")
        print(f"CLI ratio:                      {cli_m / base_m:7.2f}  (goal <= 1.30)")
    print(f"services:                       {len(services)} ({', '.join(services)})")
    print(f"relman candidates (1 process):  {ours_m * 1000:7.1f} ms  (median of {args.runs})")
    print(f"dvc status + git status:        {base_m * 1000:7.1f} ms  (median of {args.runs})")
    print(f"ratio:                          {ours_m / base_m:7.2f}  (goal <= 1.30)")


if __name__ == "__main__":
    main()

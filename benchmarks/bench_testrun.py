"""relman's overhead when running a test suite, against the same pytest command run directly.

relman's side is ``core.testing.pytest_child.run_suite`` in this process (the plugin, the event
pipe, the
bounded output tail, the process group); the baseline is ``subprocess.run`` of ``python -m
pytest PATHS -q -p no:cacheprovider`` with its output captured, in the same folder. The two
alternate, round by round, after one warm-up each; the medians and their ratio are printed.
Goal: <= 1.10.

    python benchmarks/bench_testrun.py                 # 200 generated tests in a temp dir
    python benchmarks/bench_testrun.py --demo DIR      # also the suites of the demo in DIR
                                                       # (created there with `relman demo`
                                                       # first when DIR has no relman.toml)
    python benchmarks/bench_testrun.py --no-autoload   # pytest without entry-point plugins:
                                                       # a leaner child, so a harsher ratio
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config.model import SuiteConfig  # noqa: E402
from core.testing.pytest_child import run_suite  # noqa: E402

TEST_FILE = """\
import pytest

@pytest.fixture
def numbers():
    return list(range(10))

{tests}
"""


def generate(root: Path, files: int = 10, per_file: int = 20) -> Path:
    """``files * per_file`` small tests: assertions, a fixture, a parametrized one each file."""
    tests = root / "tests"
    tests.mkdir(parents=True)
    for index in range(files):
        body = []
        for number in range(per_file - 3):
            body.append(
                f"def test_{number}(numbers):\n    assert sum(numbers) + {number} > {number}\n"
            )
        body.append(
            "@pytest.mark.parametrize('n', [1, 2, 3])\ndef test_param(n):\n    assert n > 0\n"
        )
        (tests / f"test_gen_{index}.py").write_text(TEST_FILE.format(tests="\n".join(body)))
    return root


def direct(root: Path, python: str, suite: SuiteConfig) -> float:
    command = [python, "-m", "pytest", *suite.paths, *suite.args, "-q", "-p", "no:cacheprovider"]
    env = {**os.environ, **suite.env}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"pytest failed directly (exit {done.returncode}): {done.stdout[-500:]!r}")
    return seconds


def relman(root: Path, python: str, name: str, suite: SuiteConfig) -> float:
    start = time.perf_counter()
    result = run_suite(root, name, suite, python=python, on_event=lambda _event: None)
    seconds = time.perf_counter() - start
    if not result.collected:
        raise SystemExit(f"relman ran nothing in {name}: {result.detail}")
    return seconds


def compare(label: str, root: Path, python: str, name: str, suite: SuiteConfig, runs: int) -> float:
    direct(root, python, suite)  # warm-up: imports and .pyc files for both sides
    relman(root, python, name, suite)
    base: list[float] = []
    ours: list[float] = []
    for round_number in range(runs):
        # Alternate which side goes first, so neither always runs on a warmer machine.
        if round_number % 2:
            ours.append(relman(root, python, name, suite))
            base.append(direct(root, python, suite))
        else:
            base.append(direct(root, python, suite))
            ours.append(relman(root, python, name, suite))
    base_median, our_median = statistics.median(base), statistics.median(ours)
    ratio = our_median / base_median
    print(
        f"{label:<28} pytest {base_median * 1000:8.1f} ms   relman {our_median * 1000:8.1f} ms"
        f"   ratio {ratio:.3f}   ({runs} rounds)"
    )
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--demo", type=Path, help="a demo project (created when absent)")
    parser.add_argument(
        "--no-autoload", action="store_true", help="PYTEST_DISABLE_PLUGIN_AUTOLOAD=1"
    )
    args = parser.parse_args()
    if args.no_autoload:
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    ratios = []
    with tempfile.TemporaryDirectory(prefix="relman-bench-") as tmp:
        root = generate(Path(tmp) / "proj")
        suite = SuiteConfig(paths=["tests"])
        ratios.append(
            compare("generated (200 tests)", root, sys.executable, "gen", suite, args.runs)
        )
    if args.demo is not None:
        from core.config.model import load_project
        from core.scaffold.demo import create_demo

        demo = args.demo.resolve()
        if not (demo / "relman.toml").is_file():
            print(f"creating the demo in {demo} ...", file=sys.stderr)
            create_demo(demo)
        project = load_project(demo)
        for name, demo_suite in project.config.suites.items():
            ratios.append(
                compare(
                    f"demo suite {name!r}",
                    project.root,
                    project.python(),
                    name,
                    demo_suite,
                    args.runs,
                )
            )
    worst = max(ratios)
    print(f"worst ratio {worst:.3f} (goal <= 1.10): {'ok' if worst <= 1.10 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

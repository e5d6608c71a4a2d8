"""core.testrun: real pytest runs, in subprocesses, on throwaway projects in tmp_path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from core.config import SuiteConfig
from core.errors import ConfigError, ProjectError
from core.junit import write_junit
from core.testrun import SuiteResult, TestEvent, progress_line, run_suite, run_suites

PYTHON = sys.executable

MIXED = """\
import pytest

def test_pass():
    pass

def test_fail():
    assert 1 == 2

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

def test_setup_error(broken):
    pass

def test_skip():
    pytest.skip("not today")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert 0

@pytest.mark.xfail(reason="lucky")
def test_xpass():
    pass

@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass

@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown broke")

def test_pass_then_teardown_error(bad_teardown):
    pass

def test_fail_then_teardown_error(bad_teardown):
    assert 0

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n

def deep(n):
    return deep(n - 1) if n else 1 / 0

def test_deep():
    deep(40)
"""


@pytest.fixture(autouse=True)
def _fast_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    # The dev environment's pytest plugins take ~1.5 s to import in each child; these tests
    # are about relman's runner, and `-p relman_pytest_plugin` loads with autoload off too.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def make_project(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def suite(*paths: str, **kwargs: object) -> SuiteConfig:
    return SuiteConfig.from_data({"paths": list(paths), **kwargs})


def pytest_summary(output: str) -> dict[str, int]:
    """Counts from the last line of pytest's own summary, e.g. '3 failed, 2 passed in 0.1s'."""
    last = output.strip().splitlines()[-1]
    found = re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?)", last)
    return {("error" if word.startswith("error") else word): int(n) for n, word in found}


def test_counts_and_junit_equal_pytest_own(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", {"tests/unit/test_mixed.py": MIXED})
    result = run_suite(root, "unit", suite("tests/unit"), python=PYTHON)
    ours = tmp_path / "ours.xml"
    write_junit(ours, [result])

    theirs = tmp_path / "theirs.xml"
    direct = subprocess.run(
        [
            PYTHON,
            "-m",
            "pytest",
            "tests/unit",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={theirs}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
    )
    expected = pytest_summary(direct.stdout)
    assert {k: v for k, v in result.counts.items() if v} == expected
    assert result.status == "failed"
    assert result.exit_code == direct.returncode == 1
    assert result.collected == 12
    assert result.detail.startswith(
        "4 passed, 4 failed, 3 errors, 1 skipped, 1 xfailed, 1 xpassed in "
    )

    keys = ("tests", "failures", "errors", "skipped")
    pytest_suite = ET.parse(theirs).getroot().find("testsuite")
    our_suite = ET.parse(ours).getroot().find("testsuite")
    assert pytest_suite is not None and our_suite is not None
    assert {k: our_suite.get(k) for k in keys} == {k: pytest_suite.get(k) for k in keys}
    assert our_suite.get("name") == "unit"
    names = {(c.get("classname"), c.get("name")) for c in our_suite.iter("testcase")}
    assert names == {(c.get("classname"), c.get("name")) for c in pytest_suite.iter("testcase")}

    by_id = {(c.nodeid, c.when): c for c in result.cases}
    fail = by_id[("tests/unit/test_mixed.py::test_fail", "call")]
    assert fail.outcome == "failed" and fail.message == "assert 1 == 2"
    assert "assert 1 == 2" in fail.traceback
    assert by_id[("tests/unit/test_mixed.py::test_setup_error", "setup")].outcome == "error"
    assert by_id[("tests/unit/test_mixed.py::test_skip", "call")].message == "not today"
    assert by_id[("tests/unit/test_mixed.py::test_xfail", "call")].message == "known bug"
    deep = by_id[("tests/unit/test_mixed.py::test_deep", "call")]
    assert deep.message == "ZeroDivisionError: division by zero"
    assert len(deep.traceback.splitlines()) <= 30
    assert "ZeroDivisionError" in deep.traceback.splitlines()[-1] + deep.traceback
    param = by_id[("tests/unit/test_mixed.py::test_param[2]", "call")]
    assert (param.classname, param.name) == ("tests.unit.test_mixed", "test_param[2]")


def test_events_arrive_live_and_in_order(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "tests/test_live.py": """\
            import time
            def test_first(): pass
            def test_second(): pass
            def test_slow(): time.sleep(1.0)
            """
        },
    )
    seen: list[tuple[float, TestEvent]] = []
    result = run_suite(
        root,
        "unit",
        suite("tests"),
        python=PYTHON,
        on_event=lambda e: seen.append((time.monotonic(), e)),
    )
    kinds = [e.kind for _, e in seen]
    assert kinds == ["collected", "result", "result", "result", "finished"]
    assert [e.done for _, e in seen] == [0, 1, 2, 3, 3]
    assert all(e.total == 3 for _, e in seen)
    assert [e.case.name for _, e in seen if e.case] == ["test_first", "test_second", "test_slow"]
    # Live: the first results came a second before the slow test ended, not in one batch.
    assert seen[-1][0] - seen[1][0] > 0.8
    assert seen[-1][1].detail == result.detail
    assert result.status == "passed" and result.detail.startswith("3 passed in ")
    assert result.to_step()["status"] == "passed"


def test_progress_line_text() -> None:
    counts = {"passed": 41, "failed": 1, "error": 0, "skipped": 2, "xfailed": 0, "xpassed": 0}
    assert progress_line(TestEvent("result", "unit", 57, 44, counts)) == (
        "unit 41/57 passed, 1 failed, 2 skipped"
    )
    assert progress_line(TestEvent("collected", "data", None, 0, {})) == "data 0/? passed"
    two_errors = {"passed": 3, "error": 2}
    result = SuiteResult("model", "failed", 1.0, 5, two_errors, [], "", "", 1)
    assert progress_line(result) == "model 3/5 passed, 2 errors"


def test_collection_error_is_a_failure_naming_it(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "tests/test_ok.py": "def test_ok(): pass\n",
            "tests/test_x.py": "import foo_not_installed\n\ndef test_x(): pass\n",
        },
    )
    result = run_suite(root, "unit", suite("tests"), python=PYTHON)
    assert result.status == "failed"
    assert result.detail == (
        "collection error: tests/test_x.py: ModuleNotFoundError: "
        "No module named 'foo_not_installed'"
    )
    [case] = result.cases
    assert (case.outcome, case.when) == ("error", "collect")
    assert "foo_not_installed" in case.traceback


def test_hang_past_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_hang.py": f"""\
            import os, subprocess, time
            def test_done(): pass
            def test_hang():
                child = subprocess.Popen(["sleep", "60"])
                open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
                time.sleep(60)
            """
        },
    )
    started = time.monotonic()
    first, second = run_suites(
        root,
        {"slow": suite("tests", timeout=2), "after": suite("tests/test_hang.py::test_done")},
        None,
        python=PYTHON,
    )
    assert time.monotonic() - started < 15
    assert first.status == "failed"
    assert first.detail == "timed out after 2 s (1 of 2 done)"
    assert [(c.name, c.outcome) for c in first.cases] == [
        ("test_done", "passed"),
        ("test_hang", "error"),
    ]
    assert first.cases[-1].message == first.detail
    # The run went on with the next suite.
    assert (second.status, second.counts["passed"]) == ("passed", 1)
    for pid in map(int, pids.read_text().split()):
        assert not _alive(pid), f"process {pid} of the timed-out suite is still running"


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            return False
        time.sleep(0.05)
    return True


def test_test_that_kills_pytest_is_recorded(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "tests/unit/test_x.py": """\
            import os
            def test_before(): pass
            def test_boom(): os.kill(os.getpid(), 9)
            def test_after(): pass
            """
        },
    )
    result = run_suite(root, "unit", suite("tests/unit"), python=PYTHON)
    assert result.status == "failed"
    assert result.detail == "pytest died (signal 9) during tests/unit/test_x.py::test_boom"
    assert result.exit_code == -9
    assert [(c.name, c.outcome) for c in result.cases] == [
        ("test_before", "passed"),
        ("test_boom", "error"),
    ]


def test_megabytes_of_output_are_bounded(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "tests/test_loud.py": """\
            import sys
            def test_loud():
                line = "x" * 99 + "\\n"
                for _ in range(200):
                    sys.stdout.write(line * 1000)  # 20 MB in all
                print("the end")
            """
        },
    )
    tracemalloc.start()
    try:
        result = run_suite(root, "loud", suite("tests", args=["-s"]), python=PYTHON)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "passed", result.detail
    assert len(result.output_tail.encode()) <= 64 * 1024
    assert len(result.output_tail.splitlines()) <= 200
    assert "the end" in result.output_tail
    assert peak < 4 * 1024 * 1024, f"runner held {peak} bytes for 20 MB of output"


def test_nonexistent_path_is_a_config_error_before_running(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = make_project(
        tmp_path / "proj",
        {"tests/test_ok.py": f"def test_ok(): open({str(marker)!r}, 'w')\n"},
    )
    suites = {"unit": suite("tests"), "data": suite("tests/data", "tests")}
    with pytest.raises(ConfigError) as caught:
        run_suites(root, suites, None, python=PYTHON)
    message = str(caught.value)
    assert "'data'" in message and "'tests/data'" in message and "\n" not in message
    assert caught.value.exit_code == 2
    assert not marker.exists()


def test_unknown_suite_name_lists_the_declared_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown suite 'nope'.*: unit, data"):
        run_suites(tmp_path, {"unit": suite("."), "data": suite(".")}, ["nope"], python=PYTHON)


def test_pytest_missing_from_the_project_python(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=False)
    python = str(tmp_path / "venv" / "bin" / "python")
    root = make_project(tmp_path / "proj", {"tests/test_ok.py": "def test_ok(): pass\n"})
    with pytest.raises(ProjectError, match="pytest is not installed") as caught:
        run_suite(root, "unit", suite("tests"), python=python)
    assert python in str(caught.value) and caught.value.exit_code == 2


def test_bad_pytest_arguments_show_pytest_error_line(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"tests/test_ok.py": "def test_ok(): pass\n"})
    result = run_suite(root, "unit", suite("tests", args=["--no-such-flag"]), python=PYTHON)
    assert result.status == "failed"
    assert result.detail.startswith("pytest failed (exit 4): ")
    assert "unrecognized arguments: --no-such-flag" in result.detail


def test_suite_env_reaches_the_tests(tmp_path: Path) -> None:
    root = make_project(
        tmp_path,
        {
            "tests/test_env.py": """\
            import os, sys
            def test_env():
                assert os.environ["MODEL_STAGE"] == "staging"
                assert "RELMAN_EVENTS_FD" not in os.environ
                assert os.environ["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
            """
        },
    )
    result = run_suite(root, "unit", suite("tests", env={"MODEL_STAGE": "staging"}), python=PYTHON)
    assert result.status == "passed", result.output_tail
    assert not (root / ".pytest_cache").exists()
    assert os.environ.get("MODEL_STAGE") is None

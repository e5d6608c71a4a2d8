"""core.testing.runner and core.testing.pytest_child: real pytest runs, in subprocesses, on
throwaway projects
in tmp_path."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

from core.config.model import SuiteConfig
from core.errors import ConfigError, ProjectError
from core.testing.junit import write_junit
from core.testing.pytest_child import run_suite
from core.testing.results import SuiteResult, TestEvent, progress_line
from core.testing.runner import run_suites
from tests.core.conftest import DvcRepo
from tests.waiting import wait_for

PYTHON = sys.executable
# The hanging test and its child sleep far longer than wait_for waits: gone by then means
# relman stopped them, not that they ended on their own.
HANG_SECONDS = 600

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
    """Live, not in one batch at the end: the last test ends only once relman has passed
    on the second one's result (it fails if that never comes while it runs)."""
    go = tmp_path / "second-result-seen"
    root = make_project(
        tmp_path / "proj",
        {
            "tests/test_live.py": f"""\
            import os, time
            def test_first(): pass
            def test_second(): pass
            def test_last():
                deadline = time.monotonic() + 60
                while not os.path.exists({str(go)!r}):
                    assert time.monotonic() < deadline, "no event for test_second yet"
                    time.sleep(0.02)
            """
        },
    )
    seen: list[TestEvent] = []

    def on_event(event: TestEvent) -> None:
        seen.append(event)
        if event.kind == "result" and event.done == 2:
            go.touch()

    result = run_suite(root, "unit", suite("tests"), python=PYTHON, on_event=on_event)
    kinds = [e.kind for e in seen]
    assert kinds == ["collected", "result", "result", "result", "finished"]
    assert [e.done for e in seen] == [0, 1, 2, 3, 3]
    assert all(e.total == 3 for e in seen)
    assert [e.case.name for e in seen if e.case] == ["test_first", "test_second", "test_last"]
    assert seen[-1].detail == result.detail
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
                child = subprocess.Popen(["sleep", "{HANG_SECONDS}"])
                open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
                time.sleep({HANG_SECONDS})
            """
        },
    )
    # The timeout is what is under test; 5 s leaves pytest room to start on a loaded machine.
    first, second = run_suites(
        root,
        {"slow": suite("tests", timeout=5), "after": suite("tests/test_hang.py::test_done")},
        None,
        python=PYTHON,
    )
    assert first.status == "failed"
    assert first.detail == "timed out after 5 s (1 of 2 done)"
    assert [(c.name, c.outcome) for c in first.cases] == [
        ("test_done", "passed"),
        ("test_hang", "error"),
    ]
    assert first.cases[-1].message == first.detail
    # The run went on with the next suite.
    assert (second.status, second.counts["passed"]) == ("passed", 1)
    for pid in map(int, pids.read_text().split()):
        wait_for(lambda pid=pid: not running(pid), f"process {pid} of the timed-out suite to end")


def running(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


# ------------------------------------------------------------------------------ cancelling

HANG = """\
import os, subprocess, time
def test_done(): pass
def test_hang():
    child = subprocess.Popen(["sleep", "{seconds}"])
    open({pids!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
    time.sleep({seconds})
"""


def hang(pids: Path) -> str:
    """The HANG test module, writing its pids to ``pids``."""
    return HANG.format(pids=str(pids), seconds=HANG_SECONDS)


def cancel_when_written(
    path: Path, cancel: threading.Event, also: threading.Event | None = None
) -> threading.Thread:
    """Set ``cancel`` once ``path`` holds both pids (the hanging test started) and ``also``
    is set, from another thread, as the TUI's cancel key does."""

    def written() -> bool:
        with contextlib.suppress(FileNotFoundError):
            return len(path.read_text().split()) == 2  # opened is not yet written
        return False

    def watch() -> None:
        try:
            wait_for(lambda: written() and (also is None or also.is_set()), "the hanging test")
        finally:  # cancel all the same: the test then fails on what is missing, not hangs
            cancel.set()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def wait_group_gone(pgid: int) -> None:
    """Wait until no process is left in the process group ``pgid`` (zombies aside)."""

    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        members = [p for p in psutil.process_iter(["status"]) if _pgid(p.pid) == pgid]
        return all(p.info["status"] == psutil.STATUS_ZOMBIE for p in members)

    wait_for(gone, f"the cancelled suite's process group {pgid} to end")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def test_cancel_ends_a_hung_suite_with_its_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    root = make_project(tmp_path / "proj", {"tests/test_hang.py": hang(pids)})
    cancel = threading.Event()
    events: list[TestEvent] = []
    cancel_when_written(pids, cancel)
    # One suite after another (a single suite runs in the calling thread): the second one
    # never starts once the first is cancelled.
    (hung,) = run_suites(
        root, {"hang": suite("tests")}, None, python=PYTHON, on_event=events.append, cancel=cancel
    )
    later = run_suite(root, "later", suite("tests"), python=PYTHON, cancel=cancel)
    assert hung.cancelled and hung.status == "failed"
    assert re.fullmatch(r"cancelled after \d+\.\d s \(1 of 2 done\)", hung.detail)
    # The test that was running was stopped, not failed: only the one that finished counts.
    assert [(c.name, c.outcome) for c in hung.cases] == [("test_done", "passed")]
    assert hung.to_step()["cancelled"] is True
    assert (events[-1].kind, events[-1].status) == ("finished", "cancelled")
    pytest_pid, sleep_pid = map(int, pids.read_text().split())
    # pytest led its own process group: the group is gone, with the grandchild in it.
    wait_group_gone(pytest_pid)
    wait_for(lambda: not running(sleep_pid), "the hanging test's child to end")
    assert (later.cancelled, later.status, later.detail) == (
        True,
        "skipped",
        "cancelled before it started",
    )


def test_cancel_reaches_suites_running_side_by_side(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    root = make_project(tmp_path / "proj", {"tests/test_hang.py": hang(pids)})
    cancel, quick_done = threading.Event(), threading.Event()
    cancel_when_written(pids, cancel, quick_done)

    def on_event(event: TestEvent) -> None:
        if event.kind == "finished" and event.suite == "quick":
            quick_done.set()

    done, hung = run_suites(
        root,
        {"quick": suite("tests/test_hang.py::test_done"), "hang": suite("tests")},
        None,
        python=PYTHON,
        on_event=on_event,
        cancel=cancel,
    )
    assert (done.status, done.cancelled) == ("passed", False)
    assert hung.cancelled and hung.detail.startswith("cancelled after ")
    wait_group_gone(int(pids.read_text().split()[0]))


RECORDED_TOML = """\
[project]
name = "cancelling"

[services.svc]
bento = "service:Svc"
model = ["clf"]
data = ["iris"]

[environments.dev]
port = 18001

[suites.quick]
paths = ["tests/test_hang.py::test_done"]

[suites.hang]
paths = ["tests/test_hang.py"]
"""


def test_a_cancelled_test_run_is_recorded_interrupted(
    dvc_repo: DvcRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TUI's cancel, end to end in the engine: the group is stopped, the ledger says
    the run was cancelled, and a partial suite leaves no result a gate could take."""
    from core.cancel import Cancelled
    from core.config.model import load_project
    from core.ledger.releases import open_ledger
    from core.testing.suites import run_tests

    monkeypatch.setenv("RELMAN_USER", "tester@example.invalid")
    pids = tmp_path / "pids"
    dvc_repo.write("relman.toml", RECORDED_TOML)
    dvc_repo.write("tests/test_hang.py", textwrap.dedent(hang(pids)))
    dvc_repo.write(".gitignore", ".relman/\n")
    dvc_repo.commit("a suite that hangs")
    project = load_project(dvc_repo.root)
    cancel, quick_done = threading.Event(), threading.Event()
    cancel_when_written(pids, cancel, quick_done)

    def on_event(event: TestEvent) -> None:
        if event.kind == "finished" and event.suite == "quick":
            quick_done.set()

    with pytest.raises(Cancelled) as caught:
        run_tests(project, ["quick", "hang"], cancel=cancel, on_event=on_event)
    error = caught.value
    assert error.exit_code == 1
    assert re.fullmatch(
        r"tests cancelled: quick passed, hang cancelled after \d+\.\d s \(1 of 2 done\); "
        r"recorded as interrupted \(run #\d+\)",
        str(error),
    )
    assert [(s["name"], s["status"], s.get("cancelled", False)) for s in error.steps] == [
        ("quick", "passed", False),
        ("hang", "failed", True),
    ]
    wait_group_gone(int(pids.read_text().split()[0]))
    with open_ledger(project, read_only=True) as ledger:
        run = ledger.latest_run("test", service="svc")
        assert run is not None
        steps = ledger.steps(run.id)
        results = ledger.test_results(str(run.release_id))
    assert run.status == "interrupted" and run.details["cancelled"] is True
    assert run.reason.startswith("cancelled: quick passed: 1 passed in ")
    assert "; hang cancelled after " in run.reason
    assert [(s.name, s.status) for s in steps] == [("quick", "passed"), ("hang", "failed")]
    assert steps[1].detail.startswith("cancelled after ")
    # Only the suite that ran to its end left results.
    assert [(r.suite, r.outcome) for r in results] == [("quick", "passed")]


def test_a_cancelled_release_pipeline_stops_in_its_tests(
    dvc_repo: DvcRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`relman release`'s pipeline: cancelled during its tests, it stops there (nothing is
    gated, built or promoted) and its document says it was cancelled."""
    from core.config.model import load_project
    from core.delivery.release import release

    monkeypatch.setenv("RELMAN_USER", "tester@example.invalid")
    pids = tmp_path / "pids"
    dvc_repo.write("relman.toml", RECORDED_TOML)
    dvc_repo.write("tests/test_hang.py", textwrap.dedent(hang(pids)))
    dvc_repo.write(".gitignore", ".relman/\n")
    dvc_repo.commit("a suite that hangs")
    project = load_project(dvc_repo.root)
    already = threading.Event()
    already.set()
    document = release(project, cancel=already)
    assert (document["ok"], document["cancelled"], document["exit_code"]) == (False, True, 1)
    assert [(s["name"], s["status"]) for s in document["steps"]] == [
        ("verify", "passed"),
        ("test", "failed"),
    ]
    assert document["steps"][-1]["detail"] == "cancelled before test started"
    assert document["error"] == "release cancelled before test: verify passed"

    cancel = threading.Event()
    cancel_when_written(pids, cancel)
    document = release(project, cancel=cancel)
    assert (document["ok"], document["cancelled"], document["exit_code"]) == (False, True, 1)
    names = [(s["name"], s["status"], s.get("cancelled", False)) for s in document["steps"]]
    assert names[0] == ("verify", "passed", False)
    assert names[-1] == ("test hang", "failed", True)
    assert "gate" not in [name for name, _status, _cancelled in names]
    assert document["error"].startswith("tests cancelled: ")
    wait_group_gone(int(pids.read_text().split()[0]))

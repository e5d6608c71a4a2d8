"""`relman gate`'s report over a real git + DVC repository and a ledger written directly."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from core.config.model import Project, load_project
from core.delivery.gating import gate_report, suite_outcomes
from core.errors import UsageError
from core.ledger.releases import ledger_path, open_ledger, record_candidate
from core.lineage.candidate import candidates
from core.testing.results import TestEvent
from core.testing.suites import SUITE_NODEID_PREFIX, ProgressThrottle, run_tests
from store import Ledger, ReleaseNotFound, TestResultRecord
from tests.core.conftest import DvcRepo, git
from tests.ports import worker_ports

RELMAN_TOML = """\
[project]
name = "gating"

[services.svc]
bento = "service:Svc"
model = ["clf"]
data = ["iris"]

[environments.dev]
port = 18001
suites = ["unit"]
gates = ["floor"]

[environments.staging]
port = 18002
suites = ["unit", "model"]
gates = ["floor", "no-regression"]
approvals = 1

[suites.unit]
paths = ["tests"]

[suites.model]
paths = ["tests"]

[gates.floor]
metric = "accuracy"
file = "metrics.json"
min = 0.9

[gates.no-regression]
metric = "accuracy"
file = "metrics.json"
baseline = true
min_absolute_change = -0.01
"""


@pytest.fixture
def project(dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch) -> Project:
    monkeypatch.setenv("RELMAN_USER", "promoter@example.invalid")
    # The gate checks the environments' ports: ones free now, not whatever 18001 holds.
    dev, staging = worker_ports(2)
    ports = RELMAN_TOML.replace("18001", str(dev)).replace("18002", str(staging))
    dvc_repo.write("relman.toml", ports)
    dvc_repo.write("tests/test_nothing.py", "def test_nothing():\n    pass\n")
    dvc_repo.write(".gitignore", ".relman/\n")
    dvc_repo.commit("configure relman")
    return load_project(dvc_repo.root)


def _record(project: Project) -> str:
    """Record the candidate as a release; return its id."""
    cand = candidates(project.root, {"svc": (["clf"], ["iris"])})["svc"]
    with open_ledger(project, read_only=False) as ledger:
        return record_candidate(ledger, project, "svc", cand).id


def _results(ledger: Ledger, release: str, outcomes: dict[str, list[str]]) -> None:
    """A finished test run of ``release`` with ``{suite: [outcome, ...]}``."""
    run = ledger.start_run("test", service="svc", release_id=release)
    records = [
        TestResultRecord(suite, f"tests/test_{suite}.py::test_{i}", outcome)  # type: ignore[arg-type]
        for suite, listed in outcomes.items()
        for i, outcome in enumerate(listed)
    ]
    ledger.record_test_results(run.id, records)
    ledger.finish_run(run.id, "passed")


def _go_live(ledger: Ledger, env: str, release: str) -> None:
    promotion = ledger.begin_promotion("svc", env, release)
    ledger.finish_promotion(promotion.id, "done")


def _steps(project: Project, env: str) -> dict[str, tuple[str, str]]:
    report = gate_report(project, "svc", env)
    steps = report.to_dict()["steps"]
    assert report.ok == all(s["status"] != "failed" for s in steps)
    return {s["name"]: (s["status"], s["detail"]) for s in steps}


def test_a_tested_release_passes_into_the_first_environment(project: Project) -> None:
    release = _record(project)
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, release, {"unit": ["passed", "passed", "skipped"]})
    report = gate_report(project, "svc", "dev")
    assert report.ok and report.release == release
    names = [r.name for r in report.results]
    assert names == ["order", "data and model", "suite unit", "floor", "approvals", "port"]
    steps = _steps(project, "dev")
    assert steps["order"] == ("skipped", "dev is the first environment")
    assert steps["suite unit"][0] == "passed"
    assert "2 passed, 1 skipped" in steps["suite unit"][1]
    assert steps["floor"] == ("passed", "accuracy 0.950 >= 0.900")


def test_untested_and_failed_suites_block(project: Project) -> None:
    release = _record(project)
    steps = _steps(project, "dev")
    assert steps["suite unit"][0] == "failed"
    assert f"has not run for release {release}" in steps["suite unit"][1]
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, release, {"unit": ["passed", "failed"]})
    assert _steps(project, "dev")["suite unit"] == (
        "failed",
        "suite unit failed for this release: 1 failed, 1 passed",
    )
    # A later run that passes is what counts.
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, release, {"unit": ["passed", "passed"]})
    assert _steps(project, "dev")["suite unit"][0] == "passed"


def test_a_suite_that_failed_without_a_failing_test_blocks() -> None:
    records = [
        TestResultRecord("unit", f"{SUITE_NODEID_PREFIX}unit>", "error", message="timed out")
    ]
    outcome = suite_outcomes(records, "r1")["unit"]
    assert outcome is not None
    assert outcome.status == "failed" and outcome.note == "timed out"


def test_staging_needs_order_no_regression_and_approval(project: Project) -> None:
    release = _record(project)
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, release, {"unit": ["passed"], "model": ["passed"]})
        # The release live in staging had a better accuracy: 0.97.
        old = ledger.record_release(
            "0ld0ld0ld0ld",
            service="svc",
            git_commit="0" * 40,
            metrics={"metrics.json": {"accuracy": 0.97}},
        )
        _go_live(ledger, "staging", old.id)
    steps = _steps(project, "staging")
    assert steps["order"] == ("failed", "not yet healthy in dev (staging comes after dev)")
    assert steps["floor"][0] == "passed"
    status, detail = steps["no-regression vs staging"]
    assert status == "failed"
    assert "accuracy 0.950" in detail and "staging baseline 0.970" in detail
    assert steps["approvals"][0] == "failed"
    assert "promoter@example.invalid" in steps["approvals"][1]

    with open_ledger(project, read_only=False) as ledger:
        _go_live(ledger, "dev", release)
        ledger.approve(release, "staging", actor="promoter@example.invalid")
    steps = _steps(project, "staging")
    assert steps["order"] == ("passed", "healthy in dev")
    assert steps["approvals"][0] == "failed", "one's own approval must not count"
    with open_ledger(project, read_only=False) as ledger:
        ledger.approve(release, "staging", actor="reviewer@example.invalid")
    assert _steps(project, "staging")["approvals"][0] == "passed"


def test_a_release_live_elsewhere_is_not_healthy_in_dev(project: Project) -> None:
    release = _record(project)
    with open_ledger(project, read_only=False) as ledger:
        other = ledger.record_release("0th3r0th3r00", service="svc", git_commit="1" * 40)
        _go_live(ledger, "dev", other.id)
        _results(ledger, release, {"unit": ["passed"], "model": ["passed"]})
    assert _steps(project, "staging")["order"][0] == "failed"


def test_gate_never_creates_the_ledger(project: Project) -> None:
    assert not ledger_path(project).exists()
    report = gate_report(project, "svc", "dev")
    assert not report.ok  # the suite never ran
    assert not ledger_path(project).exists()


def test_unknown_service_or_env_lists_the_known_ones(project: Project) -> None:
    with pytest.raises(UsageError, match=r"no service .nope. .*\(services: svc\)$"):
        gate_report(project, "nope", "dev")
    with pytest.raises(UsageError, match=r"no environment .qa. .*\(environments: dev, staging\)$"):
        gate_report(project, "svc", "qa")


def test_dirty_tree_is_flagged_by_the_data_and_model_step(project: Project) -> None:
    (project.root / "params.yaml").write_text("lr: 0.2\n")
    steps = _steps(project, "dev")
    assert steps["data and model"][0] == "failed"


def test_unknown_suite_is_refused_before_anything_runs(project: Project) -> None:
    with pytest.raises(UsageError, match="unknown suite 'nope'"):
        run_tests(project, ["nope"])
    assert not ledger_path(project).exists()


def test_run_tests_records_per_release(project: Project, tmp_path: Path) -> None:
    report = run_tests(project, ["unit"], junit=tmp_path / "j.xml")
    assert report.ok and report.recorded
    release = report.releases["svc"]
    with open_ledger(project, read_only=True) as ledger:
        results = ledger.test_results(release)
        run = ledger.get_run(report.runs["svc"])
        steps = ledger.steps(run.id)
    assert [(r.suite, r.outcome) for r in results] == [("unit", "passed")]
    assert run.status == "passed" and [s.name for s in steps] == ["unit"]
    assert (tmp_path / "j.xml").read_text().count("<testcase") == 1
    assert _steps(project, "dev")["suite unit"][0] == "passed"


def test_run_tests_on_a_dirty_tree_runs_but_records_nothing(project: Project) -> None:
    (project.root / "tests" / "test_more.py").write_text("def test_bad():\n    assert False\n")
    lines: list[str] = []
    report = run_tests(project, ["unit"], log=lines.append)
    assert not report.ok and not report.recorded
    assert "uncommitted changes" in report.reason and len(lines) == 1
    assert report.to_dict()["reason"] == report.reason
    assert not ledger_path(project).exists()


def test_progress_is_throttled() -> None:
    now = [0.0]
    lines: list[str] = []
    throttle = ProgressThrottle(lines.append, interval=0.5, clock=lambda: now[0])

    def event(kind: str, done: int) -> TestEvent:
        return TestEvent(kind, "unit", 10, done, {"passed": done}, detail="10 passed")

    throttle(event("collected", 0))
    for done in range(1, 10):
        now[0] += 0.125
        throttle(event("result", done))
    throttle(event("finished", 10))
    assert lines[0] == "unit 0/10 passed (collected)"
    assert lines[-1] == "unit 10/10 passed: 10 passed"
    # 1.125 s of results, at most one line per 0.5 s: two lines in between.
    assert lines[1:-1] == ["unit 4/10 passed", "unit 8/10 passed"]


# ------------------------------------------------------------- the port, and --release ID


def test_a_port_taken_by_another_program_blocks_with_what_to_do(project: Project) -> None:
    dev = project.config.environments["dev"]
    assert _steps(project, "dev")["port"] == (
        "passed",
        f"127.0.0.1:{dev.port} is free, or served by relman's proxy of dev",
    )
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", dev.port))
        holder.listen()
        steps = _steps(project, "dev")
    assert steps["port"] == (
        "failed",
        f"127.0.0.1:{dev.port} (dev) is in use by another program; stop it, or change port "
        "in [environments.dev] of relman.toml",
    )


def test_the_port_of_relmans_own_proxy_counts_only_at_its_own_address(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """relman.toml moved dev: the proxy left on the old address does not make the new one,
    held by another program, ours."""
    import core.targets.proxy_control as proxy_control

    monkeypatch.setattr(proxy_control, "proxy_pid", lambda folder: 4242)  # a live proxy
    dev = project.config.environments["dev"]
    folder = project.state_dir / "envs" / "svc" / "dev"
    folder.mkdir(parents=True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", dev.port))
        holder.listen()
        (folder / "proxy.listen").write_text(f"127.0.0.1:{dev.port}\n")
        assert _steps(project, "dev")["port"][0] == "passed"  # the proxy holds it
        (folder / "proxy.listen").write_text(f"127.0.0.1:{dev.port + 1}\n")
        assert _steps(project, "dev")["port"][0] == "failed"


def test_gate_a_recorded_release_by_version_or_id_prefix(project: Project) -> None:
    first = _record(project)
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, first, {"unit": ["passed"]})
        version = ledger.get_release(first).version
    assert version
    (project.root / "src" / "serve.py").write_text("# new code: a new release\n")
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "new code")
    assert gate_report(project, "svc", "dev").release != first

    for ref in (version, first[:7], first):
        report = gate_report(project, "svc", "dev", release=ref)
        assert report.release == first
        steps = {r.name: (r.status, r.detail) for r in report.results}
        assert steps["suite unit"][0] == "passed"
        # no Bento of it here and the tree is another release: say how to get one
        assert steps["data and model"][0] == "failed"
        assert f"no Bento of svc {version}" in steps["data and model"][1]
        assert "relman build svc" in steps["data and model"][1]
    with pytest.raises(ReleaseNotFound):
        gate_report(project, "svc", "dev", release="feedfacecafe")


def test_environment_settings_apply_to_the_release_already_recorded(project: Project) -> None:
    """A commit that changes only relman.toml keeps the release: its tests still count, and
    the environment's new settings (here: an approval for dev) apply to it."""
    release = _record(project)
    with open_ledger(project, read_only=False) as ledger:
        _results(ledger, release, {"unit": ["passed"]})
    assert gate_report(project, "svc", "dev", release=release).ok
    config = project.root / "relman.toml"
    config.write_text(
        config.read_text().replace('gates = ["floor"]\n', 'gates = ["floor"]\napprovals = 1\n', 1)
    )
    git(project.root, "commit", "-qam", "dev needs an approval")
    project = load_project(project.root)

    report = gate_report(project, "svc", "dev")
    assert report.release == release
    steps = {r.name: r.status for r in report.results}
    assert (steps["suite unit"], steps["data and model"], steps["approvals"]) == (
        "passed",
        "passed",
        "failed",
    )

"""On-call signals first: with an alert firing in dev for the release, `relman status` names
it (text and JSON), `relman gate SERVICE --env staging` blocks with a line naming it (unless
`--force`), and the promote dialog says so. A real git + DVC repository, a ledger where the
candidate is recorded live in dev, and a metric store written through its own API: nothing
serves, nothing collects."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from core.config.model import Project, load_project
from core.delivery.gating import candidate_artifacts, evaluate_release
from core.host.processes import this_host
from core.ledger.releases import open_ledger, record_candidate
from core.lineage.candidate import project_candidates
from core.monitoring.collector_process import metrics_path
from screens.actions import Subject, plan_promote
from store.metrics.store import MetricStore
from tests.core.conftest import DvcRepo
from tests.ports import worker_ports
from tui.cli import run

LINE = "error rate 31.7% (worst 33.0%) > 5.0% for 4 min"
BLOCKED = "It will be blocked: order: dev has a firing alert for this release: error_rate: "


@pytest.fixture
def project(dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch) -> Project:
    """svc: dev, then staging (no suites, gates nor approvals: only the order can block)."""
    monkeypatch.setenv("RELMAN_USER", "oncall@example.invalid")
    dev, staging = worker_ports(2)  # the gate checks them: free ones, now
    dvc_repo.write(
        "relman.toml",
        f"""\
[project]
name = "signals"

[services.svc]
bento = "service:Svc"
model = ["clf"]
data = ["iris"]

[environments.dev]
port = {dev}

[environments.staging]
port = {staging}
""",
    )
    dvc_repo.write(".gitignore", ".relman/\n")
    dvc_repo.commit("configure relman")
    return load_project(dvc_repo.root)


def _live_in_dev(project: Project) -> str:
    """The candidate recorded and live in dev (a finished promotion); its release id."""
    cand = project_candidates(project, ["svc"])["svc"]
    with open_ledger(project, read_only=False) as ledger:
        release = record_candidate(ledger, project, "svc", cand).id
        promotion = ledger.begin_promotion("svc", "dev", release)
        ledger.finish_promotion(promotion.id, "done")
    return release


def _alert(project: Project, release: str, *, state: str = "firing") -> None:
    now = int(time.time()) // 60 * 60
    with MetricStore.open(metrics_path(project)) as store:
        row = store.open_alert(
            "error_rate", "sudden", "svc", "dev", t=now - 240, state="firing", value=0.317,
            detail=LINE, release=release, rollback="relman rollback svc --env dev",
        )  # fmt: skip
        if state == "resolved":
            store.update_alert(row.id, t=now, state="resolved", detail="error rate 0.0% <= 5.0%")


def _relman(capsys: pytest.CaptureFixture[str], project: Project, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = run(["--project", str(project.root), *args])
    return code, capsys.readouterr().out


def test_gate_blocks_while_an_alert_fires_for_the_release_in_the_previous_env(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _live_in_dev(project)
    assert _relman(capsys, project, "gate", "svc", "--env", "staging")[0] == 0
    _alert(project, release)
    code, out = _relman(capsys, project, "gate", "svc", "--env", "staging")
    assert code == 1
    expected = (
        f"order  dev has a firing alert for this release: error_rate: {LINE} (relman alerts); "
        "--force to promote anyway"
    )
    assert expected in out
    code, out = _relman(capsys, project, "--json", "gate", "svc", "--env", "staging")
    order = json.loads(out)["steps"][0]
    assert (code, order["name"], order["status"]) == (1, "order", "failed")


def test_force_passes_over_the_alert_and_says_so(project: Project) -> None:
    release = _live_in_dev(project)
    _alert(project, release)
    cand = project_candidates(project, ["svc"])["svc"]
    with open_ledger(project, read_only=True) as ledger:
        [order, *_] = evaluate_release(
            project, ledger, "svc", "staging", release, cand.metrics, candidate_artifacts(cand),
            forced=True,
        )  # fmt: skip
    assert order.status == "skipped"
    assert order.detail.endswith(f"error_rate: {LINE} (relman alerts); order check overridden")


@pytest.mark.parametrize("other", ["another release", "resolved"])
def test_an_alert_of_another_release_or_resolved_does_not_block(
    project: Project, capsys: pytest.CaptureFixture[str], other: str
) -> None:
    release = _live_in_dev(project)
    if other == "resolved":
        _alert(project, release, state="resolved")
    else:
        _alert(project, "0123456789ab")
    code, out = _relman(capsys, project, "gate", "svc", "--env", "staging")
    assert code == 0 and "healthy in dev" in out


def test_status_names_the_alert_in_text_and_json(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _live_in_dev(project)
    _alert(project, release)
    code, out = _relman(capsys, project, "status")
    assert code == 0
    said = [line.split() for line in out.splitlines() if "firing:" in line]
    assert said == [["dev", "1", "firing:", "error_rate:", *f"{LINE} (relman alerts)".split()]]
    [dev] = [line for line in out.splitlines() if line.startswith("dev ")]
    assert "live, 1 firing" in dev
    code, out = _relman(capsys, project, "--json", "status")
    environments = json.loads(out)["services"][0]["environments"]
    assert environments["dev"]["alerts"] == [
        {"name": "error_rate", "detail": LINE, "release": release}
    ]
    assert "alerts" not in environments["staging"]


def test_piped_status_prints_whole_values(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _live_in_dev(project)
    code, out = _relman(capsys, project, "status")
    document = json.loads(_relman(capsys, project, "--json", "status")[1])
    dev = document["services"][0]["environments"]["dev"]
    [row] = [line for line in out.splitlines() if line.startswith("dev ")]
    assert code == 0 and "…" not in out
    assert row.split() == ["dev", dev["release"], dev["version"], "live", dev["since"], dev["url"]]


def test_status_without_a_readable_metric_store_still_answers(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    _live_in_dev(project)
    metrics_path(project).write_bytes(b"not a database at all, but long enough to be read")
    code, out = _relman(capsys, project, "--json", "status")
    document = json.loads(out)
    assert code == 0 and "alerts" not in document["services"][0]["environments"]["dev"]
    assert any(w.startswith("firing alerts not shown: ") for w in document["warnings"])


def test_the_promote_dialog_says_the_alert_blocks(project: Project) -> None:
    release = _live_in_dev(project)
    _alert(project, release)
    assert f"{BLOCKED}{LINE}" in plan_promote(project, Subject("svc")).text


def test_the_promote_dialog_of_a_recorded_release_says_the_alert_too(
    project: Project, dvc_repo: DvcRepo
) -> None:
    older = "0123456789ab"  # recorded earlier, not the candidate: its gates run as it runs
    with open_ledger(project, read_only=False) as ledger:
        ledger.record_release(older, service="svc", git_commit=dvc_repo.git("rev-parse", "HEAD"))
        promotion = ledger.begin_promotion("svc", "dev", older)
        ledger.finish_promotion(promotion.id, "done")
    assert "It will be blocked" not in plan_promote(project, Subject("svc", release=older)).text
    _alert(project, older)
    text = plan_promote(project, Subject("svc", release=older)).text
    assert f"{BLOCKED}{LINE}" in text


def test_promote_says_blocked_and_names_the_alert(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _live_in_dev(project)
    _alert(project, release)
    code = run(["--project", str(project.root), "promote", "svc", "--to", "staging"])
    out, err = capsys.readouterr()
    said = f"blocked order  dev has a firing alert for this release: error_rate: {LINE}"
    assert code == 1
    assert said in out  # the answer, where the progress went elsewhere
    assert f"relman: {said}" in err  # the progress, as each step ended
    assert "failed  order" not in out + err


def test_the_run_screen_reads_a_blocked_step_as_its_failed_step() -> None:
    from screens.actions import ActionPlan
    from screens.runs import RunState

    state = RunState(ActionPlan("promote", "promote", "", (), lambda run: {}))
    state.add_line("order ...")
    state.add_line(f"blocked order  dev has a firing alert for this release: error_rate: {LINE}")
    [step] = state.steps
    assert (step.name, step.status) == ("order", "failed")
    assert step.detail == f"dev has a firing alert for this release: error_rate: {LINE}"


def test_status_text_gives_the_command_that_takes_an_interrupted_promotion_over(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    release = _live_in_dev(project)
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # the relman that held staging, killed mid-way
    with open_ledger(project, read_only=False) as ledger:
        ledger.begin_promotion("svc", "staging", release, pid=gone.pid, host=this_host())
    code, out = _relman(capsys, project, "status")
    [row] = [line for line in out.splitlines() if line.startswith("staging ")]
    [said] = [line.strip() for line in out.splitlines() if "was interrupted" in line]
    assert code == 0 and "interrupted" in row.split()
    assert said.startswith(f"staging  promote of {release} by oncall@example.invalid")
    assert said.endswith(f"; run: relman promote svc --to staging --release {release}")


def test_status_says_when_another_program_holds_an_environments_port(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before anyone asks for approvals: the overview and `relman status` show the port
    taken, the line the gate and the lock step would block with."""
    staging = project.config.environments["staging"]
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind((staging.host, staging.port))
        holder.listen()
        code, out = _relman(capsys, project, "--json", "status")
        environments = json.loads(out)["services"][0]["environments"]
        assert code == 0
        assert environments["staging"]["state"] == "not deployed"
        assert environments["staging"]["note"].startswith(
            f"{staging.host}:{staging.port} (staging) is in use by another program; "
        )
        assert "note" not in environments["dev"]
        code, out = _relman(capsys, project, "status")
        assert "(staging) is in use by another program" in out
    code, out = _relman(capsys, project, "--json", "status")
    assert "note" not in json.loads(out)["services"][0]["environments"]["staging"]

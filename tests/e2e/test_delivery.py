"""Promotion with real `bentoml serve` processes: dev -> staging -> prod, four-eyes
approvals, rollback, a broken Bento, a port taken by another program, read-only mode."""

from __future__ import annotations

import shutil
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.served import (
    environments,
    git,
    ports_of,
    predict,
    processes_of,
    relman,
    relman_json,
    second_release,
    served,
    served_count,
)
from tests.ports import worker_ports

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest


def test_release_to_staging_then_prod_with_someone_elses_approval(
    served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = served
    ports = ports_of(root)
    github = tmp_path / "step-summary.md"
    github.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(github))
    junit, summary = tmp_path / "release.xml", tmp_path / "summary.md"

    done = relman_json(
        root, "release", "--to", "staging", "--junit", str(junit), "--summary", str(summary)
    )
    assert done["_exit"] == 0, done["_stderr"]
    assert done["ok"] and done["environments"] == ["dev", "staging"]
    names = [step["name"] for step in done["steps"]]
    assert names[:2] == ["verify", "test unit"] and "build" in names
    assert "dev: switch" in names and "staging: switch" in names
    release = done["release"]

    envs = environments(root)
    assert envs["dev"]["release"] == envs["staging"]["release"] == release
    assert envs["dev"]["state"] == envs["staging"]["state"] == "live"
    assert envs["prod"]["state"] == "not deployed"
    assert predict(ports["staging"]) == ["setosa", "virginica"]
    assert served_count(root) == 2  # one Bento per environment, nothing else left running

    # A testcase per test of each suite, and one per other step.
    tests = [case for step in done["steps"] for case in step.get("cases", [])]
    others = [step for step in done["steps"] if "cases" not in step]
    cases = ET.parse(junit).getroot().findall(".//testcase")
    assert tests and len(cases) == len(tests) + len(others)
    assert summary.read_text().startswith("## ✅")
    assert (
        github.read_text().startswith("earlier step\n") and "staging: switch" in github.read_text()
    )

    # prod: the promoter's own approval does not count; someone else's does
    blocked = relman_json(root, "promote", "iris", "--to", "prod")
    assert blocked["_exit"] == 1 and not blocked["ok"]
    assert "prod needs 1 approval from someone other than alice" in blocked["error"]
    assert relman(root, "approve", release[:8], "--env", "prod").returncode == 0
    own = relman_json(root, "promote", "iris", "--to", "prod")
    assert own["_exit"] == 1 and "alice's own does not count" in own["error"]
    assert relman(root, "approve", release, "--env", "prod", user="bob").returncode == 0
    live = relman_json(root, "promote", "iris", "--to", "prod")
    assert live["_exit"] == 0, live["error"]
    assert environments(root)["prod"]["release"] == release
    assert predict(ports["prod"]) == ["setosa", "virginica"]
    assert "iris-model#prod#3" in git(root, "tag").split()

    # read-only mode refuses, and says so
    refused = relman(root, "--read-only", "rollback", "iris", "--env", "prod")
    assert refused.returncode == 1 and "read-only" in refused.stderr


def test_rollback_returns_the_previous_release(served: Path) -> None:
    root = served
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    second_release(root)
    second = relman_json(root, "release")
    assert second["_exit"] == 0, second["_stderr"]
    assert second["release"] != first["release"]
    assert environments(root)["dev"]["release"] == second["release"]
    assert served_count(root) == 1  # the first release's Bento was retired

    back = relman_json(root, "rollback", "iris", "--env", "dev", "--reason", "latency regression")
    assert back["_exit"] == 0, back["error"]
    assert back["release"] == first["release"]
    assert environments(root)["dev"]["release"] == first["release"]
    assert predict(ports_of(root)["dev"]) == ["setosa", "virginica"]
    history = relman(root, "history", "--env", "dev").stdout
    assert "rollback" in history and "latency regression" in history
    # a second rollback does not bring back the release the first one rolled back from
    again = relman(root, "--batch", "rollback", "iris", "--env", "dev")
    assert again.returncode == 1 and "no earlier release" in again.stderr


def test_a_bento_that_crashes_on_start_leaves_the_previous_release(served: Path) -> None:
    root = served
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    service = root / "service.py"
    service.write_text(
        service.read_text().replace(
            "    def __init__(self) -> None:\n",
            "    def __init__(self) -> None:\n"
            "        raise RuntimeError('model store unreachable')\n",
        )
    )
    git(root, "commit", "-qam", "break the service")
    assert relman(root, "--batch", "test").returncode == 0

    failed = relman_json(root, "promote", "iris", "--to", "dev")
    assert failed["_exit"] == 3
    assert "model store unreachable" in failed["error"]  # the Bento's log, in the error
    assert f"{first['release']} still serves dev" in failed["error"]
    validate = next(step for step in failed["steps"] if step["name"] == "validate")
    assert validate["status"] == "failed"
    assert environments(root)["dev"]["release"] == first["release"]
    assert predict(ports_of(root)["dev"]) == ["setosa", "virginica"]
    assert served_count(root) == 1


def test_a_smoke_answer_of_the_wrong_shape_is_refused(served: Path) -> None:
    root = served
    service = root / "service.py"
    service.write_text(service.read_text().replace("return predictions", "return predictions[:1]"))
    git(root, "commit", "-qam", "answer one row only")
    failed = relman_json(root, "release")
    assert failed["_exit"] == 3
    assert "sent 2 rows, the answer holds 1 items" in failed["error"]
    assert environments(root)["dev"]["state"] in ("not deployed", "down")
    assert served_count(root) == 0


def test_a_port_taken_by_another_program(served: Path) -> None:
    """Blocked at the gate, before any build or lock, with the port and what to do; `relman
    gate` says the same."""
    root = served
    port = ports_of(root)["dev"]
    taken = (
        f"127.0.0.1:{port} (dev) is in use by another program; stop it, or change port in "
        "[environments.dev] of relman.toml"
    )
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))
    holder.listen()
    try:
        failed = relman_json(root, "release")
        gate = relman(root, "gate", "iris", "--env", "dev")
    finally:
        holder.close()
    assert failed["_exit"] == 1
    assert failed["error"] == f"gate dev: port: {taken}"
    assert [step["name"] for step in failed["steps"]][-1] == "gate"
    assert gate.returncode == 1 and f"failed  port  {taken}" in gate.stdout.splitlines()
    assert served_count(root) == 0


def test_moved_port_and_deleted_state_folders(served: Path) -> None:
    """relman.toml moves dev to another port: the next promote serves it there. The state
    folders deleted by hand: `down` still finds and stops what relman served."""
    root = served
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    config = root / "relman.toml"
    old = ports_of(root)["dev"]
    new = worker_ports(1)[0]
    config.write_text(config.read_text().replace(f"port = {old}\n", f"port = {new}\n", 1))
    git(root, "commit", "-qam", "dev moves")
    assert relman(root, "--batch", "test").returncode == 0
    moved = relman_json(root, "promote", "iris", "--to", "dev")
    assert moved["_exit"] == 0, moved["error"]
    assert predict(new) == ["setosa", "virginica"]
    with pytest.raises(OSError):
        predict(old)
    shutil.rmtree(root / ".relman" / "envs")
    assert relman(root, "--batch", "down").returncode == 0
    assert processes_of(root) == []


def test_release_stops_at_the_gate_before_building(served: Path, tmp_path: Path) -> None:
    root = served
    config = root / "relman.toml"
    config.write_text(config.read_text().replace("min = 0.90", "min = 0.99"))
    git(root, "commit", "-qam", "a floor the model does not reach")
    bad_path = relman(root, "--batch", "release", "--junit", str(tmp_path / "no" / "r.xml"))
    assert bad_path.returncode == 2 and "does not exist" in bad_path.stderr
    blocked = relman_json(root, "release")
    assert blocked["_exit"] == 1
    assert [s["name"] for s in blocked["steps"]][-1] == "gate"
    assert "accuracy" in blocked["error"] and "0.99" in blocked["error"]
    assert served_count(root) == 0


def test_bad_input_is_one_line_with_the_right_code(served: Path) -> None:
    root = served
    unknown = relman(root, "promote", "iris", "--to", "dev", "--release", "feedfacecafe")
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "feedfacecafe" in unknown.stderr
    no_env = relman(root, "promote", "iris", "--to", "qa")
    assert no_env.returncode == 2 and "no environment 'qa'" in no_env.stderr
    nothing = relman(root, "rollback", "iris", "--env", "dev")
    assert nothing.returncode == 1 and "no earlier release" in nothing.stderr
    config = root / "relman.toml"
    config.write_text(config.read_text().replace('"sample_request.json"', '"missing.json"'))
    sample = relman(root, "promote", "iris", "--to", "dev")
    assert sample.returncode == 2
    assert "[services.iris] sample_request = 'missing.json': cannot read it" in sample.stderr

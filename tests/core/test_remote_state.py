"""Data that is only in a DVC remote, or nowhere, or behind a remote that does not answer:
each artifact's cache state names its remote, a silent remote costs a bounded wait once
per status, and the data-and-model gate says ``needs dvc pull`` (docs/json.md, status)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.delivery.gating import candidate_artifacts
from core.errors import UsageError
from core.lineage.candidate import Candidate, candidate
from core.lineage.dvc_remote import REMOTE_TIMEOUT, TIMEOUT_ENV, remote_timeout, why_unreachable
from tests.core.conftest import DvcRepo
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def status(repo: DvcRepo) -> Candidate:
    return candidate(repo.root, model=["clf"], data=["iris", "data/features"])


def lose_locally(repo: DvcRepo) -> None:
    """The model and one file of data/features leave the local cache (iris.csv stays)."""
    repo.cache_file(repo.lock_out("models/model.pkl")["md5"]).unlink()
    listing = json.loads(repo.cache_file(repo.lock_out("data/features")["md5"]).read_text())
    repo.cache_file(listing[0]["md5"]).unlink()


def use_remote(repo: DvcRepo, name: str, url: str) -> None:
    (repo.root / ".dvc/config").write_text(
        f"[core]\n    remote = {name}\n['remote \"{name}\"']\n    url = {url}\n"
    )
    repo.commit(f"data in remote {name}")


@pytest.fixture
def silent_server() -> Iterator[socket.socket]:
    """A TCP port that completes the handshake (the kernel does it for the backlog) but whose
    program never accepts nor reads: an HTTP client waits there for its whole read timeout."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server
    server.close()  # the blocked client gets a reset, and its worker thread ends


def remote_workers(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"relman-dvc-remote-{name}"]


# -------------------------------------------------------------------- a reachable remote


def test_data_only_in_the_remote_names_it_and_the_gate_says_pull(dvc_repo: DvcRepo) -> None:
    dvc_repo.dvc("push")
    lose_locally(dvc_repo)

    c = status(dvc_repo)

    [model] = c.model
    iris, features = c.data
    assert (model.cache, model.in_cache, model.remote, model.remote_error) == (
        "remote",
        False,
        "local",
        None,
    )
    assert (features.cache, features.remote) == ("remote", "local")
    assert (iris.cache, iris.remote) == ("local", None)  # local: its remote is not asked
    doc = json.loads(json.dumps(c.to_dict()))
    assert (
        doc["model"][0].items()
        >= {
            "path": "models/model.pkl",
            "in_cache": False,
            "cache": "remote",
            "remote": "local",
            "remote_error": None,
        }.items()
    )
    # Lineage still there: hashes from dvc.lock, params, metrics.
    assert model.md5 == dvc_repo.lock_out("models/model.pkl")["md5"]
    assert c.params == {"params.yaml": {"lr": 0.1}}
    assert c.metrics["metrics.json"]["accuracy"] == 0.95

    gate = candidate_artifacts(c)
    assert gate.status == "failed"
    assert gate.detail == (
        "models/model.pkl, data/features not in the local cache: needs dvc pull (in remote 'local')"
    )


def test_a_deleted_remote_directory_leaves_the_data_missing(dvc_repo: DvcRepo) -> None:
    dvc_repo.dvc("push")
    lose_locally(dvc_repo)
    shutil.rmtree(dvc_repo.remote)

    c = status(dvc_repo)

    assert (c.model[0].cache, c.model[0].remote, c.model[0].remote_error) == (
        "missing",
        "local",
        None,
    )
    assert (
        "models/model.pkl: not in the local cache, nor in the remote 'local' "
        "(rebuild it with 'dvc repro')"
    ) in c.problems
    gate = candidate_artifacts(c)
    assert gate.status == "failed"
    assert gate.detail.startswith(
        "models/model.pkl, data/features not in the local cache nor in the remote (run dvc repro)"
    )


# ---------------------------------------------------------------- remotes that cannot be asked


def test_a_remote_that_never_answers_is_unknown_after_the_bound(
    dvc_repo: DvcRepo, silent_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    port = silent_server.getsockname()[1]
    use_remote(dvc_repo, "web", f"http://127.0.0.1:{port}/store")
    lose_locally(dvc_repo)

    c = status(dvc_repo)

    for artifact in (c.model[0], c.data[1]):
        assert (artifact.cache, artifact.in_cache, artifact.remote, artifact.remote_error) == (
            "unknown",
            False,
            "web",
            "no answer within 0.5 s",
        )
    assert c.data[0].cache == "local"
    # One verdict for the remote: the second artifact did not wait on it again.
    assert len(remote_workers("web")) == 1
    assert (
        "models/model.pkl: not in the local cache, and remote 'web' could not be reached "
        "(no answer within 0.5 s): run 'dvc pull' once it can"
    ) in c.problems
    assert c.params == {"params.yaml": {"lr": 0.1}}
    gate = candidate_artifacts(c)
    assert gate.status == "failed"
    assert gate.detail == (
        "models/model.pkl, data/features not in the local cache: needs dvc pull, "
        "and remote 'web' could not be reached (no answer within 0.5 s)"
    )
    # Read again (the TUI does) while that thread still waits: the same answer, no new wait.
    again = status(dvc_repo)
    assert (again.model[0].cache, again.model[0].remote_error) == (
        "unknown",
        "no answer within 0.5 s",
    )
    assert len(remote_workers("web")) == 1


def test_once_the_waiting_thread_ends_the_remote_is_asked_again(
    dvc_repo: DvcRepo, silent_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    port = silent_server.getsockname()[1]
    use_remote(dvc_repo, "flaky", f"http://127.0.0.1:{port}/store")
    dvc_repo.cache_file(dvc_repo.lock_out("models/model.pkl")["md5"]).unlink()
    assert status(dvc_repo).model[0].cache == "unknown"

    silent_server.close()  # the server goes away: the blocked client gets a reset, and ends
    wait_for(lambda: not remote_workers("flaky"), "the blocked remote thread to end")

    model = status(dvc_repo).model[0]
    assert (model.cache, model.remote) == ("unknown", "flaky")
    assert model.remote_error is not None and "connect" in model.remote_error.lower()


def test_artifacts_in_the_local_cache_never_contact_the_remote(
    dvc_repo: DvcRepo, silent_server: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, "0.5")
    port = silent_server.getsockname()[1]
    use_remote(dvc_repo, "quiet", f"http://127.0.0.1:{port}/store")

    c = status(dvc_repo)

    assert [a.cache for a in [*c.model, *c.data]] == ["local", "local", "local"]
    assert c.problems == []
    assert candidate_artifacts(c).status == "passed"
    silent_server.setblocking(False)
    with pytest.raises(BlockingIOError):  # nobody knocked: no connection waits in the backlog
        silent_server.accept()
    assert remote_workers("quiet") == []


def test_a_refused_connection_is_unknown_not_missing(
    dvc_repo: DvcRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DVC's HTTP filesystem reports an object absent when the server cannot be reached.
    monkeypatch.setenv(TIMEOUT_ENV, "60")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        use_remote(dvc_repo, "down", f"http://127.0.0.1:{closed.getsockname()[1]}/store")
        lose_locally(dvc_repo)
        model = status(dvc_repo).model[0]
    finally:
        closed.close()

    assert (model.cache, model.remote) == ("unknown", "down")
    assert model.remote_error is not None and "connect" in model.remote_error.lower()


def test_a_remote_whose_plugin_is_absent_says_what_to_install(dvc_repo: DvcRepo) -> None:
    if importlib.util.find_spec("dvc_s3") is not None:
        pytest.skip("dvc-s3 is installed here; this checks a machine without it")
    use_remote(dvc_repo, "cloud", "s3://bucket/path")
    lose_locally(dvc_repo)

    c = status(dvc_repo)

    assert (c.model[0].cache, c.model[0].remote, c.model[0].remote_error) == (
        "unknown",
        "cloud",
        "DVC's s3 support is not installed (pip install dvc-s3)",
    )
    assert candidate_artifacts(c).detail.endswith(
        "needs dvc pull, and remote 'cloud' could not be reached "
        "(DVC's s3 support is not installed (pip install dvc-s3))"
    )


def test_a_thread_left_waiting_does_not_keep_the_process_alive(
    dvc_repo: DvcRepo, silent_server: socket.socket
) -> None:
    port = silent_server.getsockname()[1]
    use_remote(dvc_repo, "web", f"http://127.0.0.1:{port}/store")
    lose_locally(dvc_repo)
    script = (
        "import sys\n"
        "from core.lineage.candidate import candidate\n"
        "c = candidate(sys.argv[1], model=['clf'], data=['iris'])\n"
        "print(c.model[0].cache, c.model[0].remote_error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(dvc_repo.root)],
        cwd=ROOT,
        env={**os.environ, TIMEOUT_ENV: "0.5"},
        capture_output=True,
        text=True,
        timeout=120,  # the client's own retries would hold it for minutes
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "unknown no answer within 0.5 s\n"), done.stderr


# ------------------------------------------------------------------------ the bound itself


def test_the_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert remote_timeout() == REMOTE_TIMEOUT
    monkeypatch.setenv(TIMEOUT_ENV, "2.5")
    assert remote_timeout() == 2.5
    for bad in ("soon", "0", "-1", "inf"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(UsageError, match=TIMEOUT_ENV):
            remote_timeout()


def test_reasons_are_one_line() -> None:
    assert why_unreachable(
        ImportError("gs is supported, but requires 'dvc-gs' to be installed")
    ) == ("DVC's gs support is not installed (pip install dvc-gs)")
    assert why_unreachable(OSError("no route\n  to host")) == "no route to host"
    assert why_unreachable(TimeoutError()) == "TimeoutError"
    assert len(why_unreachable(RuntimeError("x" * 500))) == 160

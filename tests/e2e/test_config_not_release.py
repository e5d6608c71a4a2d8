"""Configuration is not a release: a commit that changes only a port in relman.toml keeps the
candidate's release id, and promoting it serves that same release on the new port."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.served import (
    git,
    ports_of,
    predict,
    relman,
    relman_json,
    served,
    served_count,
)
from tests.ports import worker_ports

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest


def test_a_committed_port_change_is_the_same_release_on_the_new_port(served: Path) -> None:
    root = served
    first = relman_json(root, "release")
    assert first["_exit"] == 0, first["_stderr"]
    release, version = first["release"], first["version"]
    ports = ports_of(root)
    old = ports["dev"]
    new = worker_ports(1, avoid=ports.values())[0]
    config = root / "relman.toml"
    config.write_text(config.read_text().replace(f"port = {old}\n", f"port = {new}\n", 1))

    # Uncommitted, relman.toml leaves the candidate releasable, under the same id.
    edited = relman_json(root, "status")["services"][0]["candidate"]
    assert edited["git"]["dirty"] and edited["git"]["dirty_files"] == ["relman.toml"]
    assert (edited["release"], edited["problems"]) == (release, [])

    git(root, "commit", "-qam", "dev moves to another port")
    status = relman_json(root, "status")
    [service] = status["services"]
    assert service["candidate"]["release"] == release
    # dev still serves where it was deployed, until the next promotion moves it
    assert service["environments"]["dev"]["url"] == f"http://127.0.0.1:{old}"

    # The release recorded before the commit, by version: nothing to run again.
    gate = relman(root, "gate", "iris", "--env", "dev", "--release", version)
    assert gate.returncode == 0, gate.stdout
    assert gate.stdout.splitlines()[0] == f"iris -> dev: release {release}"

    moved = relman_json(root, "promote", "iris", "--to", "dev")
    assert moved["_exit"] == 0, moved["error"]
    assert (moved["release"], moved["version"]) == (release, version)
    assert moved["url"] == f"http://127.0.0.1:{new}"
    assert "build" not in [step["name"] for step in moved["steps"]]  # its Bento, reused
    assert predict(new) == ["setosa", "virginica"]
    with pytest.raises(OSError):
        predict(old)
    assert served_count(root) == 1

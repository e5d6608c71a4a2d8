"""core/targets/logs.py through core.api: the last lines of an environment's logs, then what
was appended, whole lines only; another file, a rotation or a truncation starts over."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from core import api
from core.errors import UsageError

TOML = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["model.pkl"]

[environments.dev]
port = 3100
"""


@pytest.fixture
def project(tmp_path: Path) -> api.Project:
    (tmp_path / "relman.toml").write_text(TOML, encoding="utf-8")
    return api.load_project(tmp_path)


def env_dir(project: api.Project) -> Path:
    folder = project.state_dir / "envs" / "shop" / "dev"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def instance(project: api.Project, name: str, release: str) -> Path:
    """An instance folder whose process is gone (nothing serves: no proxy pid)."""
    folder = env_dir(project) / "instances" / name
    folder.mkdir(parents=True)
    (folder / "instance.json").write_text(json.dumps({"release": release, "address": "x:1"}))
    return folder / "serve.log"


def test_nothing_served_yet_says_so(project: api.Project) -> None:
    tail = api.serve_log(project, "shop", "dev")
    assert (tail.path, tail.lines, tail.position) == (None, [], None)
    assert tail.title == "nothing has been served in dev yet: no serve.log"
    assert api.access_log(project, "shop", "dev").title == (
        "no request has reached dev yet: no access.log"
    )


def test_last_lines_then_only_what_was_appended(project: api.Project) -> None:
    log = instance(project, "a1b2c3d4e5f6-41000", "a1b2c3d4e5f6")
    log.write_text("".join(f"line {n}\n" for n in range(10)))
    first = api.serve_log(project, "shop", "dev", lines=3)
    assert first.lines == ["line 7", "line 8", "line 9"] and first.reset
    assert first.title == "shop a1b2c3d4e5f6, not serving now (its last instance)"
    with log.open("a") as file:
        file.write("line 10\nline 1")  # the last one is still being written
    second = api.serve_log(project, "shop", "dev", after=first.position, lines=3)
    assert second.lines == ["line 10"] and not second.reset
    with log.open("a") as file:
        file.write("1\n")
    third = api.serve_log(project, "shop", "dev", after=second.position, lines=3)
    assert third.lines == ["line 11"] and not third.reset
    assert api.serve_log(project, "shop", "dev", after=third.position).lines == []


def test_a_newer_instance_starts_over(project: api.Project) -> None:
    old = instance(project, "old-41000", "0f9e8d7c6b5a")
    old.write_text("old 1\nold 2\n")
    first = api.serve_log(project, "shop", "dev")
    new = instance(project, "new-41001", "a1b2c3d4e5f6")
    new.write_text("new 1\n")
    later = old.stat().st_mtime + 10
    os.utime(new, (later, later))
    second = api.serve_log(project, "shop", "dev", after=first.position)
    assert second.reset and second.lines == ["new 1"]
    assert second.path == str(new)


def test_a_rotated_or_truncated_access_log_starts_over(project: api.Project) -> None:
    path = env_dir(project) / "access.log"
    path.write_text('{"n": 1}\n{"n": 2}\n')
    first = api.access_log(project, "shop", "dev")
    assert first.lines == ['{"n": 1}', '{"n": 2}'] and first.title == "requests to shop in dev"
    path.rename(path.with_name("access.log.1"))  # what AccessLog.flush does past its size
    path.write_text('{"n": 3}\n')
    rotated = api.access_log(project, "shop", "dev", after=first.position)
    assert rotated.reset and rotated.lines == ['{"n": 3}']
    path.write_text("")
    truncated = api.access_log(project, "shop", "dev", after=rotated.position)
    assert truncated.reset and truncated.lines == []


def test_an_unknown_environment_is_a_usage_error(project: api.Project) -> None:
    with pytest.raises(UsageError, match="no environment 'prod'"):
        api.serve_log(project, "shop", "prod")

"""What `relman release` and `relman test` print about failing tests: their names in the text,
GitHub's annotations on stderr (stdout keeps the one JSON document), and each step once on a
terminal where the progress already showed it. The engine's answers are canned."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
from collections.abc import Iterator
from typing import Any

import pytest

from core import api
from tests.core.failing_run import FAILING, MODEL_FILE, failing_release
from tui.cli import run

NAMED = f"FAILED {FAILING}: AssertionError: accuracy 0.889 < 0.9"


@pytest.fixture
def canned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`api.release` and `api.run_tests` answer a run stopped by the failing model test; the
    release logs each step as it ends, as the engine does."""
    document = failing_release()
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setattr(api, "load_project", lambda _dir: object())

    def release(_project: object, *, log: Any, **_kwargs: Any) -> dict[str, Any]:
        for step in document["steps"]:
            log(f"{step['status']:<7} {step['name']}  {step['detail']}")
        return document

    def run_tests(_project: object, _suites: object, **_kwargs: Any) -> dict[str, Any]:
        steps = [{**s, "name": s["name"].removeprefix("test ")} for s in document["steps"][1:]]
        return {"ok": False, "steps": steps, "recorded": True, "release": "3f2a9c0d11e4"}

    monkeypatch.setattr(api, "release", release)
    monkeypatch.setattr(api, "run_tests", run_tests)
    return document


def test_release_text_names_the_failing_test(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["release", "--to", "staging"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # stdout is not where stderr goes: the steps are the answer, then the failing test.
    assert lines[-2:] == ["failed  test model  1 passed, 1 failed, 1 skipped in 6.5 s", NAMED]
    assert "::error" not in err and err.splitlines()[-1] == f"relman: {canned['error']}"


def test_test_text_names_the_failing_test(
    canned: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["test"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == ["failed  model  1 passed, 1 failed, 1 skipped in 6.5 s", NAMED]


@pytest.mark.parametrize("verb", [["release"], ["test"]])
def test_github_annotations_on_stderr_json_alone_on_stdout(
    verb: list[str],
    canned: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert run(["--batch", "--json", *verb]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["ok"] is False
    annotations = [line for line in err.splitlines() if line.startswith("::error")]
    assert annotations == [
        f"::error file={MODEL_FILE},line=30,title=FAILED {FAILING.replace(':', '%3A')}"
        "::AssertionError: accuracy 0.889 < 0.9%0Aassert 0.8888888888888888 >= 0.9"
    ]


@contextlib.contextmanager
def terminal() -> Iterator[int]:
    """stdout and stderr on one pseudo-terminal, as in an interactive shell; yields the
    terminal's master end, to read what the screen shows. (Set in the test's body: pytest's
    capture takes sys.stdout back between a fixture's setup and the test.)"""
    master, slave = pty.openpty()
    screen_out = os.fdopen(os.dup(slave), "w", encoding="utf-8")
    screen_err = os.fdopen(os.dup(slave), "w", encoding="utf-8")
    try:
        with contextlib.redirect_stdout(screen_out), contextlib.redirect_stderr(screen_err):
            yield master
    finally:
        for stream in (screen_out, screen_err):
            stream.close()
        os.close(slave)
        os.close(master)


def screen(master: int) -> list[str]:
    """Everything written to the terminal so far (it is all there once the command ended)."""
    data = b""
    while select.select([master], [], [], 0)[0]:
        chunk = os.read(master, 65536)
        if not chunk:
            break
        data += chunk
    return data.decode().replace("\r\n", "\n").splitlines()


def test_a_terminal_shows_each_step_once(canned: dict[str, Any]) -> None:
    with terminal() as master:
        assert run(["release", "--to", "staging"]) == 1
        shown = screen(master)
    for step in canned["steps"]:
        line = f"{step['status']:<7} {step['name']}  {step['detail']}"
        assert sum(line in text for text in shown) == 1, (line, shown)
    assert shown.count(NAMED) == 1

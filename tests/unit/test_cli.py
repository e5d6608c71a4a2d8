"""The command line: help lists what exists, errors are one line with the codes of
docs/exit-codes.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import build_parser, run

BROKEN = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["m"]

[environments.prod]
port = 3102
bogus_setting = true
"""


def _verbs() -> set[str]:
    parser = build_parser()
    for action in parser._actions:
        if action.dest == "verb":
            return set(action.choices)  # type: ignore[arg-type]
    return set()


def test_help_lists_only_built_verbs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tui", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for verb in _verbs():
        assert verb in result.stdout
    # every verb of the command-line contract (README.md's table of commands) exists
    design = {"demo", "init", "status", "history", "diff", "test", "gate", "build", "promote",
              "approve", "rollback", "release", "monitor", "metrics", "feedback", "alerts",
              "policy", "traffic", "audit", "down", "pipeline", "watch", "ci"}  # fmt: skip
    assert design <= _verbs()


@pytest.mark.parametrize("verb", sorted(_verbs()))
def test_each_verb_has_help(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run([verb, "--help"])
    assert info.value.code == 0
    assert f"relman {verb}" in capsys.readouterr().out


def test_broken_config_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "relman.toml").write_text(BROKEN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = run([])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "relman: relman.toml:10: unknown key 'bogus_setting' in [environments.prod]\n"


def test_json_error_document(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "relman.toml").write_text(BROKEN)
    code = run(["--json", "--project", str(tmp_path), "init"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    assert out["ok"] is False
    assert out["exit_code"] == 2
    assert "already exists" in out["error"]


def test_unknown_verb_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("relman: argument COMMAND: invalid choice: 'frobnicate'")
    assert err.count("\n") == 1


def test_tui_needs_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # pytest captures stdout, so it is not a terminal here
    assert run([]) == 2
    assert "needs a terminal" in capsys.readouterr().err


def test_batch_without_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--batch"]) == 2
    assert "--batch and --json need a command" in capsys.readouterr().err


def test_read_only_refuses_mutations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(["--read-only", "demo", str(tmp_path / "d")])
    assert code == 1
    assert "refused in read-only mode" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_debug_shows_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "relman.toml").write_text("[project]\n")
    code = run(["--debug", "--project", str(tmp_path), "init"])
    assert code == 2
    assert "Traceback" in capsys.readouterr().err


def test_console_script_entry_point() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "relman"), "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("relman ")


def test_history_prints_brackets_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A summary quoting a relman.toml table is text, not Rich markup that eats it."""
    from core import api

    summary = "failed (change port in [environments.dev] of relman.toml)"
    page = {
        "entries": [
            {
                "at": "2026-11-28T00:06:30",
                "kind": "run",
                "service": "iris",
                "env": "dev",
                "summary": summary,
            }
        ],
        "next_cursor": None,
    }
    monkeypatch.setattr(api, "load_project", lambda _dir: object())
    monkeypatch.setattr(api, "history", lambda *_a, **_k: page)
    assert run(["history"]) == 0
    assert summary in capsys.readouterr().out


@pytest.mark.parametrize(
    ("toml", "args"),
    [
        (BROKEN, ["--json", "status"]),
        (BROKEN.replace("bogus_setting = true\n", ""), ["audit", "verify"]),
    ],
    ids=["error document", "rich answer"],
)
def test_a_reader_that_went_away_ends_relman_quietly_with_141(
    tmp_path: Path, toml: str, args: list[str]
) -> None:
    """`relman ... | head -1`: the answer's pipe is closed before relman writes to it. No
    traceback, nothing on stderr but what the command said before, exit 128 + SIGPIPE."""
    import os

    (tmp_path / "relman.toml").write_text(toml)
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read the answer
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tui", *args],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr

"""SIGHUP and SIGTERM on the command line (tui/hangup.py): tests and builds are cancelled
through the engine's cancel, a promotion runs to its end, anything else stops at once; a cut
command exits 128 + the signal's number. The engine calls are fakes that send the signal to
this very process, as a closed terminal or `kill` would, while they work."""

from __future__ import annotations

import json
import os
import pty
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from core import api
from tui import hangup
from tui.cli import run


@pytest.fixture(autouse=True)
def _no_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "load_project", lambda _dir: object())


def send_self(signum: int) -> None:
    """The signal, to this process: only once relman handles it (else it would end pytest)."""
    assert signal.getsignal(signum) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    os.kill(os.getpid(), signum)


def test_sighup_cancels_the_tests_and_exits_129(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    before = signal.getsignal(signal.SIGHUP)
    seen: list[bool] = []

    def run_tests(project: Any, suites: Any, **kwargs: Any) -> Any:
        send_self(signal.SIGHUP)
        seen.append(kwargs["cancel"].wait(timeout=30))
        raise api.Cancelled("tests cancelled: unit cancelled after 0.4 s; recorded (run #3)")

    monkeypatch.setattr(api, "run_tests", run_tests)
    assert run(["--json", "test"]) == 129
    assert seen == [True]  # the engine's cancel, not an exception in the middle of its work
    out, err = capfd.readouterr()
    assert "relman: SIGHUP: cancelling; its processes are stopped and the run recorded" in err
    line = "SIGHUP: tests cancelled: unit cancelled after 0.4 s; recorded (run #3)"
    assert f"relman: {line}\n" in err
    assert json.loads(out) == {"ok": False, "error": line, "exit_code": 129}
    assert signal.getsignal(signal.SIGHUP) == before  # only while the verb runs


def test_sigterm_lets_a_promotion_finish(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def promote(project: Any, service: str, env: str, **kwargs: Any) -> Any:
        send_self(signal.SIGTERM)
        kwargs["log"]("switch ...")  # the promotion goes on after the signal
        url = "http://127.0.0.1:3100"
        return {"ok": True, "exit_code": 0, "service": service, "env": env, "release": "abc",
                "version": "v1.0.0", "url": url, "steps": [], "error": None}  # fmt: skip

    monkeypatch.setattr(api, "promote", promote)
    assert run(["promote", "iris", "--to", "dev"]) == 0
    out, err = capfd.readouterr()
    assert "relman: SIGTERM: relman promote goes on to its end (never left half done)" in err
    assert "relman: switch ..." in err
    assert out == "iris v1.0.0 is live in dev at http://127.0.0.1:3100\n"


def test_sigterm_stops_any_other_verb_at_once_with_143(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    def history(project: Any, **kwargs: Any) -> Any:
        send_self(signal.SIGTERM)
        threading.Event().wait(timeout=30)  # a long read: the signal ends it
        raise AssertionError("not stopped by SIGTERM")

    monkeypatch.setattr(api, "history", history)
    assert run(["history"]) == 143
    assert capfd.readouterr().err == "relman: SIGTERM: stopped\n"


def test_a_hung_up_terminal_is_pointed_at_dev_null(tmp_path: Path) -> None:
    """Its writes would fail with EIO: they vanish instead. A pipe is never touched."""
    master, terminal = pty.openpty()
    read_end, write_end = os.pipe()
    try:
        hangup.remember_terminals((terminal, write_end))
        hangup.detach_hung_up_terminal((terminal, write_end))
        assert os.readlink(f"/proc/self/fd/{terminal}") != os.devnull  # still there: kept
        os.close(master)  # the terminal closes
        master = -1
        with pytest.raises(OSError):
            os.write(terminal, b"lost")
        hangup.detach_hung_up_terminal((terminal, write_end))
        assert os.readlink(f"/proc/self/fd/{terminal}") == os.devnull
        assert os.write(terminal, b"dropped") == len(b"dropped")
        assert os.readlink(f"/proc/self/fd/{write_end}").startswith("pipe:")
    finally:
        hangup._TERMINALS.discard(terminal)
        for fd in (master, terminal, read_end, write_end):
            if fd >= 0:
                os.close(fd)


def test_the_interface_writes_through_a_file_that_outlives_a_hangup() -> None:
    """Textual's writer thread dies on the first EIO, and the app then waits on it forever."""

    class HungUp:
        def write(self, text: str) -> int:
            raise OSError(5, "Input/output error")

        def flush(self) -> None:
            raise OSError(5, "Input/output error")

        def fileno(self) -> int:
            return 2

    class Driver:
        def __init__(self, app: object) -> None:
            self._file = HungUp()

    driver = hangup.outliving_hangups(Driver)(object())  # type: ignore[arg-type]
    assert driver._file.write("\x1b[?1049l") == len("\x1b[?1049l")
    driver._file.flush()
    assert driver._file.fileno() == 2

"""Whether a DVC remote holds what the local cache lacks, asked with a bounded wait.

A remote may be a cloud this machine cannot reach, whose client retries for minutes, or one
whose DVC plugin is not installed. Each remote is asked from a daemon thread: one verdict per
status for all of its outputs, and no more than ``RELMAN_REMOTE_TIMEOUT`` seconds (default
:data:`REMOTE_TIMEOUT`) spent waiting on it; after that its outputs are ``unknown``, with
the reason in one line. While a thread is still blocked on a remote, later looks in this
process (the TUI reads the status again) do not wait on that remote again, nor start another.
Outputs in the local cache never come here (docs/json.md, status).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from core.errors import UsageError

__all__ = [
    "REMOTE_TIMEOUT",
    "TIMEOUT_ENV",
    "RemoteAnswer",
    "RemoteChecks",
    "remote_timeout",
    "why_unreachable",
]

# Seconds one status waits on each remote, all its lookups together. A healthy remote answers
# an existence check in well under a second; a cloud behind a firewall never does.
REMOTE_TIMEOUT = 5.0
TIMEOUT_ENV = "RELMAN_REMOTE_TIMEOUT"

RemoteState = Literal["remote", "missing", "unknown"]
T = TypeVar("T")

# Remotes a thread of this process still waits on, (repo root, name, url) -> (the thread's
# "done" event, the reason given): not asked again until that thread ends.
_WAITING: dict[tuple[str, str, str], tuple[threading.Event, str]] = {}
_WAITING_LOCK = threading.Lock()

# DVC's own message when a remote's filesystem plugin is absent (dvc_objects.fs).
_PLUGIN_RE = re.compile(r"(?P<proto>[\w-]+) is supported, but requires '(?P<pkg>[\w-]+)'")


@dataclass(frozen=True)
class RemoteAnswer:
    """What the remote ``remote`` said about one output: ``error`` set when ``unknown``."""

    state: RemoteState
    remote: str
    error: str | None = None


def remote_timeout() -> float:
    """The bound on the wait for each remote: ``RELMAN_REMOTE_TIMEOUT`` or the default."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return REMOTE_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise UsageError(
            f"{TIMEOUT_ENV}={text!r} is not a number of seconds above 0 (unset it or set e.g. 5)"
        )
    return value


class _NoAnswer(Exception):
    def __init__(self, done: threading.Event) -> None:
        super().__init__("no answer")
        self.done = done


@dataclass
class _Remote:
    name: str
    deadline: float
    odbs: dict[str, Any] = field(default_factory=dict)  # hash name -> HashFileDB
    reachable: bool = False  # the first question was answered
    error: str | None = None  # once set, nothing more is asked of this remote


class RemoteChecks:
    """The remotes of one open DVC repository, each judged once and waited on for at most
    ``timeout`` seconds in all (default: :func:`remote_timeout`)."""

    def __init__(self, repo: Any, timeout: float | None = None) -> None:
        self._repo = repo
        self._timeout = remote_timeout() if timeout is None else timeout
        self._remotes: dict[str, _Remote] = {}

    def lookup(self, name: str, hash_name: str, present: Callable[[Any], bool]) -> RemoteAnswer:
        """Ask remote ``name`` whether it holds an object: ``present(odb)`` runs against the
        remote's object store for ``hash_name`` (md5, or DVC 2's md5-dos2unix)."""
        remote = self._remotes.get(name)
        if remote is None:
            remote = self._remotes[name] = _Remote(name, time.monotonic() + self._timeout)
        if remote.error is None and not remote.reachable:
            remote.error = _still_waiting(self._key(name))
        if remote.error is not None:
            return RemoteAnswer("unknown", name, remote.error)
        try:
            odb, found = self._in_worker(remote, lambda: self._ask(remote, hash_name, present))
        except _NoAnswer as waiting:
            remote.error = (
                f"still answering after {self._timeout:g} s (set {TIMEOUT_ENV} to wait longer)"
                if remote.reachable
                else f"no answer within {self._timeout:g} s"
            )
            with _WAITING_LOCK:
                _WAITING[self._key(name)] = (waiting.done, remote.error)
            return RemoteAnswer("unknown", name, remote.error)
        except Exception as exc:  # any failure to talk to it: config, plugin, auth, network
            remote.error = why_unreachable(exc)
            return RemoteAnswer("unknown", name, remote.error)
        remote.odbs[hash_name] = odb
        remote.reachable = True
        return RemoteAnswer("remote" if found else "missing", name)

    def _key(self, name: str) -> tuple[str, str, str]:
        try:
            url = str(self._repo.config["remote"][name].get("url", ""))
        except (KeyError, TypeError):
            url = ""
        return (str(self._repo.root_dir), name, url)

    def _ask(
        self, remote: _Remote, hash_name: str, present: Callable[[Any], bool]
    ) -> tuple[Any, bool]:
        """In the worker: open the remote's store (its first use proves it answers), then ask."""
        odb = remote.odbs.get(hash_name)
        if odb is None:
            odb = self._repo.cloud.get_remote_odb(remote.name, "status", hash_name=hash_name)
            if not remote.reachable:
                _probe(odb)
        return odb, present(odb)

    def _in_worker(self, remote: _Remote, ask: Callable[[], T]) -> T:
        """``ask()`` in a daemon thread, waited on until the remote's deadline. A thread left
        blocked in a client's retries ends with them, and never keeps relman from exiting."""
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = ask()
            except BaseException as exc:  # handed to the waiting thread, raised there
                box["error"] = exc
            finally:
                done.set()

        worker = threading.Thread(target=run, name=f"relman-dvc-remote-{remote.name}")
        worker.daemon = True
        worker.start()
        if not done.wait(max(0.0, remote.deadline - time.monotonic())):
            raise _NoAnswer(done)
        if "error" in box:
            raise box["error"]
        value: T = box["value"]
        return value


def _still_waiting(key: tuple[str, str, str]) -> str | None:
    """The reason given for a remote that a thread of this process still waits on, if any."""
    with _WAITING_LOCK:
        waiting = _WAITING.get(key)
        if waiting is None:
            return None
        if waiting[0].is_set():  # that thread has ended: the remote may answer now
            del _WAITING[key]
            return None
        return waiting[1]


def _probe(odb: Any) -> None:
    """Raise unless the remote answers. Object lookups cannot tell: DVC's HTTP filesystem
    reports an object as absent when the server cannot be reached, so ask strictly."""
    fs = odb.fs
    if getattr(fs, "protocol", None) in ("http", "https"):
        fs.fs.exists(odb.path, strict=True)  # 404 is an answer (False); no server raises
    else:
        fs.exists(odb.path)


def why_unreachable(exc: BaseException) -> str:
    """One line saying why a remote could not be asked, and what to install when that is it."""
    message = " ".join(str(exc).split())
    plugin = _PLUGIN_RE.search(message)
    if plugin:
        proto, package = plugin["proto"], plugin["pkg"]
        return f"DVC's {proto} support is not installed (pip install {package})"
    protocol = getattr(exc, "protocol", None)
    if protocol and type(exc).__name__ == "RemoteMissingDepsError":
        return f"DVC's {protocol} support is incomplete (pip install 'dvc[{protocol}]')"
    if not message:
        return type(exc).__name__
    return message if len(message) <= 160 else message[:157] + "..."

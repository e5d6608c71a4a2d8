"""Controlling an environment's proxy (:mod:`core.targets.proxy`) from the engine; these helpers
are importable from :mod:`core.targets.proxy` too.

The proxy and the engine share nothing but files in the environment's directory and
signals: ``proxy.pid`` (written once the port is bound), ``upstream`` (what the engine wants
live), ``upstream.applied`` (what the proxy has in effect) and ``proxy.log`` (its stderr).
SIGHUP makes it re-read ``upstream``; SIGTERM stops it after the requests in flight.

``upstream`` holds either a plain ``host:port`` (everything to one address: what
:func:`switch_upstream` and relman before canary rollouts write) or one line of JSON, a
:class:`Routing` (:func:`set_routing`): a stable address, and a candidate that takes a share
of the requests (canary) or is sent a copy of them (shadow).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from core.errors import InfraError
from core.host.processes import command_mentions, end_child, pid_alive, read_pid, stop_group

PID_FILE = "proxy.pid"
UPSTREAM_FILE = "upstream"
APPLIED_FILE = "upstream.applied"
EXIT_CANNOT_LISTEN = 3
LOG_FILE = "proxy.log"
# Written by a proxy that reads Routing (its pid and this number), before its pid file.
PROTOCOL_FILE = "proxy.protocol"
PROTOCOL = 2
SHADOW_LOG = "shadow.log"
MODES = ("canary", "shadow")
_POLL = 0.005


def parse_address(text: str) -> tuple[str, int]:
    """``"host:port"`` -> ``(host, port)``; ValueError when it is not one."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text.strip()!r} is not a host:port address")
    return host, int(port)


@dataclass(frozen=True)
class Routing:
    """Where an environment's proxy sends requests: all to ``stable``, except ``weight`` % of
    them to ``canary`` (mode ``canary``); or all to ``stable`` and a copy of ``weight`` % to
    ``canary``, whose answer is compared and dropped (mode ``shadow``). With ``sticky`` (a
    header name) the share is taken by that header's value (the client's IP without it), so
    one client stays on one side. ``stable`` None: no release is live (503s)."""

    stable: str | None
    stable_release: str | None = None
    canary: str | None = None
    canary_release: str | None = None
    weight: int = 0
    mode: Literal["canary", "shadow"] = "canary"
    sticky: str | None = None

    def __post_init__(self) -> None:
        for address in (self.stable, self.canary):
            if address is not None:
                parse_address(address)
        if isinstance(self.weight, bool) or not isinstance(self.weight, int):
            raise ValueError(f"weight {self.weight!r} is not a whole number")
        if not 0 <= self.weight <= 100:
            raise ValueError(f"weight {self.weight} is not between 0 and 100")
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not canary or shadow")
        if self.canary is not None and self.stable is None:
            raise ValueError("a canary needs a stable address beside it")
        if self.sticky is not None and not self.sticky.strip():
            raise ValueError("sticky names no header")

    def to_text(self) -> str:
        """The one line of JSON ``upstream`` holds for this routing."""
        return json.dumps(asdict(self), separators=(",", ":"))


def parse_routing(text: str) -> Routing | None:
    """What an ``upstream`` file holds: None when empty, a Routing of a JSON line or of a
    plain ``host:port``; ValueError when it is neither."""
    text = text.strip()
    if not text:
        return None
    if not text.startswith("{"):
        return Routing(stable=text)
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not a routing: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("not a routing: a JSON object is expected")
    known = {field.name for field in fields(Routing)}
    if unknown := sorted(set(data) - known):
        raise ValueError(f"not a routing: unknown field(s) {', '.join(unknown)}")
    for name in ("stable", "stable_release", "canary", "canary_release", "sticky"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise ValueError(f"not a routing: {name} is not a string")
    if "stable" not in data:
        raise ValueError("not a routing: it names no stable address")
    return Routing(**data)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old or the new, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(tmp, path)


def start_proxy(
    env_dir: Path,
    host: str,
    port: int,
    *,
    access_log: Path | None = None,
    timeout: float = 10.0,
) -> int:
    """Start the proxy of ``env_dir`` on ``host:port``, detached; return its pid once it
    accepts connections. It serves what ``env_dir/upstream`` names (503 while nothing)."""
    return spawn_proxy(env_dir, host, port, access_log=access_log).wait(timeout)


@dataclass
class ProxyStart:
    """A proxy process started and not yet known to listen: :meth:`wait` says when it does.
    The start is split so that a caller can do other work (an instance warming up) while the
    proxy's interpreter starts."""

    process: subprocess.Popen[bytes]
    env_dir: Path
    host: str
    port: int
    log_path: Path
    offset: int

    def wait(self, timeout: float = 10.0) -> int:
        """The proxy's pid once it accepts connections on its address; InfraError (with the
        proxy's own last words) when it exits first or does not listen in time."""
        process = self.process
        deadline = time.monotonic() + timeout
        while True:
            code = process.poll()
            if code is not None:
                line = _last_line(self.log_path, self.offset)
                line = line or f"relman proxy exited with code {code}"
                if code == EXIT_CANNOT_LISTEN:
                    line += "; free the port or change port in relman.toml"
                else:
                    line += f"; see {self.log_path}"
                raise InfraError(line)
            if read_pid(self.env_dir / PID_FILE) == process.pid and _accepts(self.host, self.port):
                return process.pid
            if time.monotonic() >= deadline:
                end_child(process, 0.0)
                raise InfraError(
                    f"relman proxy did not start listening on {self.host}:{self.port} within "
                    f"{timeout:g} s; see {self.log_path}"
                )
            time.sleep(_POLL)

    def cancel(self) -> None:
        """End the proxy again (it never served anything)."""
        end_child(self.process, 1.0)


def spawn_proxy(
    env_dir: Path, host: str, port: int, *, access_log: Path | None = None
) -> ProxyStart:
    """Launch the proxy of ``env_dir`` on ``host:port``, detached, without waiting for it
    to listen (see :class:`ProxyStart`). InfraError when one already runs for ``env_dir``."""
    env_dir = env_dir.resolve()
    env_dir.mkdir(parents=True, exist_ok=True)
    running = proxy_pid(env_dir)
    if running is not None:
        raise InfraError(
            f"a relman proxy already runs for {env_dir} (pid {running}); stop it first"
        )
    log_path = env_dir / LOG_FILE
    command = [sys.executable, "-m", "core.targets.proxy", "--listen", f"{host}:{port}"]
    command += ["--dir", str(env_dir)]
    if access_log is not None:
        command += ["--access-log", str(access_log.resolve())]
    with open(log_path, "ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=env_dir,  # not the caller's: a project's own core/ would shadow relman's
            start_new_session=True,
            close_fds=True,
        )
    return ProxyStart(process, env_dir, host, port, log_path, offset)


def proxy_pid(env_dir: Path) -> int | None:
    """The pid in ``env_dir/proxy.pid`` when that process is alive and a relman proxy."""
    pid = read_pid(env_dir / PID_FILE)
    if pid is None or not command_mentions(pid, "core.targets.proxy"):
        return None  # not running, or a stale file and a reused pid
    return pid


def proxy_reads_routing(env_dir: Path) -> bool:
    """True when the running proxy of ``env_dir`` applies a :class:`Routing` (one started by
    a relman before canary rollouts takes plain addresses only)."""
    pid = proxy_pid(env_dir)
    try:
        said, version = (env_dir / PROTOCOL_FILE).read_text().split()[:2]
    except (OSError, ValueError):
        return False
    return pid is not None and said == str(pid) and version.isdigit() and int(version) >= PROTOCOL


def _applied_text(env_dir: Path) -> str:
    try:
        return (env_dir / APPLIED_FILE).read_text().strip()
    except OSError:
        return ""


def current_routing(env_dir: Path) -> Routing | None:
    """The routing the proxy has in effect (None when no release is live, or none applied)."""
    try:
        routing = parse_routing(_applied_text(env_dir))
    except ValueError:
        return None
    return routing if routing is not None and routing.stable is not None else None


def current_upstream(env_dir: Path) -> str | None:
    """The stable ``host:port`` the proxy has in effect (None when no release is live)."""
    routing = current_routing(env_dir)
    return routing.stable if routing else None


def switch_upstream(env_dir: Path, upstream: str | None, *, timeout: float = 5.0) -> None:
    """Make the proxy send every request from now on to ``upstream`` (``"host:port"``, or
    None for 503s); returns once the proxy confirms. Requests in flight finish where they are.
    """
    text = "" if upstream is None else upstream.strip()
    if text:
        parse_address(text)  # ValueError: a bug of the caller, not of the environment
    _apply(env_dir, text, text or "no upstream", timeout)


def set_routing(env_dir: Path, routing: Routing, *, timeout: float = 5.0) -> None:
    """Make the proxy route requests from now on by ``routing``; returns once the proxy
    confirms. Requests in flight finish where they are; a client's next request, even on the
    same connection, goes by the new routing."""
    if routing.canary is None and routing.stable is None:
        what = "no upstream"
    elif routing.canary is None:
        what = routing.stable or ""
    else:
        what = f"{routing.stable} with {routing.mode} {routing.canary} at {routing.weight}%"
    _apply(env_dir, routing.to_text(), what, timeout)


def _apply(env_dir: Path, text: str, what: str, timeout: float) -> None:
    pid = proxy_pid(env_dir)
    if pid is None:
        raise InfraError(
            f"the relman proxy of {env_dir} is not running; start the environment again"
        )
    write_atomic(env_dir / UPSTREAM_FILE, text)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise InfraError(f"the relman proxy of {env_dir} (pid {pid}) exited") from None
    deadline = time.monotonic() + timeout
    while _applied_text(env_dir) != text:
        if time.monotonic() >= deadline or not pid_alive(pid):
            raise InfraError(
                f"the relman proxy (pid {pid}) did not switch to {what} "
                f"within {timeout:g} s; see {env_dir / LOG_FILE}"
            )
        time.sleep(_POLL)


def stop_proxy(env_dir: Path, *, timeout: float = 10.0) -> bool:
    """SIGTERM the proxy (it finishes requests in flight), SIGKILL its group after
    ``timeout``. True when one was running."""
    pid = proxy_pid(env_dir)
    if pid is None:
        return False
    stop_group(pid, timeout)  # it leads its own session: the group is the proxy alone
    with contextlib.suppress(OSError):
        (env_dir / PID_FILE).unlink()  # gone already after a clean exit
    return True


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _last_line(path: Path, offset: int) -> str:
    """The last non-empty line written to ``path`` after ``offset``."""
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")

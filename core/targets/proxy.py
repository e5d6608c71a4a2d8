"""The switchable reverse proxy in front of a served environment.

``python -m core.targets.proxy --listen HOST:PORT --dir ENVDIR [--access-log FILE]`` listens on the
environment's fixed port and forwards every HTTP request to the upstreams ``ENVDIR/upstream``
names (``bentoml serve`` instances on side ports): one address, or a routing that sends a
share of the requests to a canary, or copies of them to a shadow (:mod:`.proxy_routes`,
:mod:`.proxy_shadow`). SIGHUP re-reads that file; once the new routing is in effect the proxy
writes ``ENVDIR/upstream.applied``. The side is picked when a request's head arrives, so a
client holding a keep-alive connection follows a change with its very next request, and
nothing in flight is cut: that is what lets the engine switch releases, and move a canary's
weight, with zero failed requests. The controller side is :mod:`core.targets.proxy_control`.
Standard library and h11 only: the process must start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import sys
import time
from http import HTTPStatus
from pathlib import Path

import h11

from core.targets.access_log import AccessLog
from core.targets.proxy_control import (
    APPLIED_FILE,
    EXIT_CANNOT_LISTEN,
    PID_FILE,
    PROTOCOL,
    PROTOCOL_FILE,
    SHADOW_LOG,
    UPSTREAM_FILE,
    current_upstream,
    parse_address,
    parse_routing,
    proxy_pid,
    start_proxy,
    stop_proxy,
    switch_upstream,
    write_atomic,
)
from core.targets.proxy_routes import Route, Side, route_of
from core.targets.proxy_shadow import SHADOW_LIMIT, Capture, Mirrors

# The engine's side lives in core.targets.proxy_control; importable from here too.
__all__ = ["current_upstream", "main", "proxy_pid", "start_proxy", "stop_proxy", "switch_upstream"]

NO_RELEASE = "no release is live in this environment"

CONNECT_TIMEOUT = 5.0
DRAIN_SECONDS = 10.0  # in-flight requests may finish this long after SIGTERM
CLIENT_IDLE_SECONDS = 75.0  # an idle client connection is closed after this
# uvicorn closes idle keep-alive connections after 5 s; reusing one idle for less than this
# keeps clear of the race where it closes just as a request is written.
UPSTREAM_IDLE_REUSE = 2.0
REPLAY_LIMIT = 1 << 20  # requests up to this size are kept to be resent once (see _exchange)
READ_SIZE = 1 << 16
# Hop-by-hop headers (and Proxy-*), plus Expect and X-Forwarded-For, answered or rebuilt here.
HOP_BY_HOP = frozenset(
    b"connection keep-alive te trailer transfer-encoding upgrade expect x-forwarded-for".split()
)


def _log(line: str) -> None:
    print(f"relman proxy: {line}", file=sys.stderr, flush=True)


class UpstreamFailed(Exception):
    """The upstream failed before a response began; the reason is one short phrase."""


class Upstream:
    """One HTTP/1.1 connection to one side of a routing, reused while that routing stays
    applied (each change makes new sides: a new generation, even back to an old address)."""

    def __init__(self, side: Side, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.side, self.reader, self.writer = side, reader, writer
        self.conn = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self.reused = False

    def usable_for(self, side: Side) -> bool:
        return (
            side is self.side
            and self.conn.our_state is h11.IDLE
            and not self.reader.at_eof()
            and not self.writer.is_closing()
            and time.monotonic() - self.idle_since < UPSTREAM_IDLE_REUSE
        )

    def close(self) -> None:
        self.writer.close()


def _reason(exc: BaseException) -> str:
    reasons: dict[type[BaseException], str] = {
        ConnectionRefusedError: "connection refused",
        ConnectionResetError: "connection reset",
    }
    if isinstance(exc, TimeoutError):
        return f"no connection within {CONNECT_TIMEOUT:g} s"
    return reasons.get(type(exc)) or getattr(exc, "strerror", None) or str(exc) or repr(exc)


def _forward_headers(headers: h11._headers.Headers) -> list[tuple[bytes, bytes]]:
    """Headers as received (names in their case) minus hop-by-hop ones, and minus those the
    Connection header names."""
    named: set[bytes] = set()
    for name, value in headers:  # h11 gives names lowercased here
        if name == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return [
        (raw, value)
        for raw, value in headers.raw_items()
        if (name := raw.lower()) not in HOP_BY_HOP
        and name not in named
        and not name.startswith(b"proxy-")
    ]


class Proxy:
    def __init__(self, env_dir: Path, access_log: AccessLog | None) -> None:
        self.env_dir = env_dir
        self.access_log = access_log
        self.route: Route | None = None
        self.text = ""  # the upstream file's text in effect
        self.generation = 0
        self.stopping = False
        self.clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.idle: set[asyncio.Task[None]] = set()
        self.mirrors = Mirrors(env_dir / SHADOW_LOG, self.access, _reason, CONNECT_TIMEOUT)

    # -- upstream switching ------------------------------------------------------------

    def reload(self) -> None:
        """Apply ``ENVDIR/upstream``, then confirm it in ``ENVDIR/upstream.applied``."""
        try:
            text = (self.env_dir / UPSTREAM_FILE).read_text().strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            _log(f"cannot read {self.env_dir / UPSTREAM_FILE}: {exc.strerror}")
            return
        if text != self.text:
            try:
                route = route_of(parse_routing(text), text, self.generation + 1)
            except (ValueError, TypeError) as exc:
                _log(f"{self.env_dir / UPSTREAM_FILE}: {exc}; keeping {self.text or 'none'}")
                return
            self.generation += 1
            self.route, self.text = route, text
            _log(f"routing is now {_describe(route)}")
        write_atomic(self.env_dir / APPLIED_FILE, text)

    # -- serving -----------------------------------------------------------------------

    async def run(self, sock: socket.socket, listen: str) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.reload()
        server = await asyncio.start_server(self.serve_client, sock=sock)
        write_atomic(self.env_dir / PROTOCOL_FILE, f"{os.getpid()} {PROTOCOL}")
        pid_file = self.env_dir / PID_FILE
        write_atomic(pid_file, str(os.getpid()))
        flusher = asyncio.create_task(self._flush_access_log())
        _log(f"listening on {listen}, pid {os.getpid()}")
        try:
            await stop.wait()
            _log("stopping: finishing requests in flight")
            server.close()
            self.stopping = True
            for task in self.idle:
                self.clients[task].close()
            if self.clients:
                await asyncio.wait(list(self.clients), timeout=DRAIN_SECONDS)
            for task in list(self.clients):
                task.cancel()
            await asyncio.gather(*self.clients, return_exceptions=True)
            await self.mirrors.close()
        finally:
            flusher.cancel()
            if self.access_log:
                self.access_log.flush()
            with contextlib.suppress(OSError):
                if pid_file.read_text().strip() == str(os.getpid()):
                    pid_file.unlink()
        return 0

    async def _flush_access_log(self) -> None:
        said: set[str] = set()
        dropped = 0
        while True:
            await asyncio.sleep(1.0)
            problems = {self.access_log.flush() if self.access_log else None}
            problems.add(self.mirrors.flush())
            problems.discard(None)
            for problem in problems - said:
                _log(str(problem))
            said = {str(problem) for problem in problems}
            if self.mirrors.dropped > dropped:
                _log(
                    f"shadow copies dropped: {self.mirrors.dropped - dropped} "
                    f"(at most {SHADOW_LIMIT} out at once)"
                )
                dropped = self.mirrors.dropped

    async def serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.clients[task] = writer
        try:
            await Session(self, reader, writer).serve(task)
        finally:
            self.clients.pop(task, None)
            self.idle.discard(task)

    def access(
        self,
        request: h11.Request,
        status: int,
        ms: float,
        side: Side | None,
        sent: int,
        **extra: object,
    ) -> None:
        """One access-log record; ``extra`` is ``agree`` for a shadow's copy."""
        if self.access_log is None:
            return
        record = {
            "t": time.time(),
            "method": request.method.decode("latin-1"),
            "path": request.target.split(b"?", 1)[0].decode("latin-1"),
            "status": status,
            "ms": ms,
            "upstream": side.text if side else None,
            "bytes": sent,
            "role": side.role if side else "stable",
            "release": side.release if side else None,
            **extra,
        }
        self.access_log.write(record)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _describe(route: Route | None) -> str:
    if route is None:
        return "none"
    text = route.stable.text
    if route.candidate is not None:
        text += f", {route.weight}% {route.candidate.role} {route.candidate.text}"
        if route.sticky:
            text += f" (sticky by {route.sticky.decode('latin-1')})"
    return text


class Session:
    """One client connection: its requests one after another, each to the side the routing
    in effect when its head arrived picks, over an upstream connection per side kept while
    that routing stays in effect."""

    def __init__(
        self, proxy: Proxy, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.proxy, self.reader, self.writer = proxy, reader, writer
        self.conn = h11.Connection(h11.SERVER)
        peer = writer.get_extra_info("peername")
        self.ip = str(peer[0]).encode() if peer else b"unknown"
        self.upstreams: dict[str, Upstream] = {}  # by role: stable, canary

    async def serve(self, task: asyncio.Task[None]) -> None:
        conn, loop = self.conn, asyncio.get_running_loop()
        try:
            while not self.proxy.stopping:
                self.proxy.idle.add(task)
                timer = loop.call_later(CLIENT_IDLE_SECONDS, self.writer.close)
                try:
                    event = await self._next_request()
                finally:
                    timer.cancel()
                    self.proxy.idle.discard(task)
                if not isinstance(event, h11.Request):
                    break  # ConnectionClosed
                await self._exchange(event)
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                with contextlib.suppress(Exception):
                    await self._reply(exc.error_status_hint, "bad request", close=True)
        except OSError:
            pass  # the client went away
        except Exception as exc:  # a bug must cost one connection, never the proxy
            _log(f"closing a client connection after {type(exc).__name__}: {exc}")
        finally:
            for up in self.upstreams.values():
                up.close()
            self.writer.close()

    async def _exchange(self, request: h11.Request) -> None:
        """Forward one request to the side the routing picks and its response back; in
        shadow mode, then send a copy to the shadow when the routing's share says so.

        A request sent on a reused upstream connection that closes without a byte of answer
        is resent once on a new connection when it is at most REPLAY_LIMIT bytes (read in
        full): the upstream closed an idle connection, or stopped, before reading it.
        """
        started = time.perf_counter()
        conn, route = self.conn, self.proxy.route
        if route is None:
            return await self._no_release(request, started, read_body=True)
        self._drop_stale(route)
        bucket = route.bucket(request.headers, self.ip)
        side, shadow = route.side_for(bucket), route.mirrored(bucket)
        if conn.they_are_waiting_for_100_continue:
            self.writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        headers = _forward_headers(request.headers)
        forwarded = [v for n, v in request.headers if n == b"x-forwarded-for"]
        headers.append((b"x-forwarded-for", b", ".join([*forwarded, self.ip])))
        if not any(name == b"host" for name, _ in request.headers):
            headers.append((b"host", side.text.encode()))
        if conn.their_state is h11.SEND_BODY and all(
            n != b"content-length" for n, _ in request.headers
        ):
            headers.append((b"transfer-encoding", b"chunked"))
        # What was sent, to be resent; emptied once it passes REPLAY_LIMIT.
        events: list[h11.Event] = [
            h11.Request(method=request.method, target=request.target, headers=headers)
        ]
        reason, up = "", self.upstreams.get(side.role)
        while True:
            if up is not None and not up.usable_for(side):
                up.close()
                del self.upstreams[side.role]
                up = None
            if up is None:
                try:
                    self.upstreams[side.role] = up = await _connect(side)
                except (OSError, TimeoutError) as exc:
                    reason = _reason(exc)
                    break
            try:
                await self._send_request(up, events)
                capture = Capture() if shadow is not None and self.proxy.mirrors.admit() else None
                status = await self._relay_response(up, request, started, capture)
                if capture is not None and shadow is not None and _whole(events):
                    stable = (status, _ms(started), capture.body)
                    self.proxy.mirrors.send(shadow, request, events, stable)
                return
            except (OSError, UpstreamFailed, h11.RemoteProtocolError) as exc:
                if isinstance(exc, _ClientGone):
                    raise
                reason = _reason(exc)
                up.close()
                self.upstreams.pop(side.role, None)
                if conn.our_state is not h11.SEND_RESPONSE:
                    self.writer.close()  # the response had begun: the client must see it cut
                    return
                if not (up.reused and events and conn.their_state is h11.DONE):
                    break
                # replay, to the side the routing in effect now picks for the same draw
                up, route = None, self.proxy.route
                if route is None:
                    return await self._no_release(request, started)
                side, shadow = route.side_for(bucket), route.mirrored(bucket)
                if (kept := self.upstreams.pop(side.role, None)) is not None:
                    kept.close()  # resent on a new connection, not another kept one
        body = f"upstream {side.text} is not answering: {reason}"
        status = await self._reply(502, body, read_body=True)
        self.proxy.access(request, status, _ms(started), side, len(body) + 1)

    async def _no_release(
        self, request: h11.Request, started: float, *, read_body: bool = False
    ) -> None:
        status = await self._reply(503, NO_RELEASE, read_body=read_body)
        self.proxy.access(request, status, _ms(started), None, len(NO_RELEASE) + 1)

    def _drop_stale(self, route: Route) -> None:
        """Close the kept upstream connections of an earlier routing."""
        for role, up in list(self.upstreams.items()):
            if up.side.generation != route.generation:
                up.close()
                del self.upstreams[role]

    async def _send_request(self, up: Upstream, events: list[h11.Event]) -> None:
        """Send the request: the events kept so far, then the rest of the client's body as it
        comes (kept in ``events`` while the whole stays within REPLAY_LIMIT)."""
        out = [up.conn.send(event) or b"" for event in events]
        size = sum(map(len, out))
        while self.conn.their_state is h11.SEND_BODY:
            event = self._client_event()
            if event is h11.NEED_DATA:
                await _write(up.writer, out)
                self.conn.receive_data(await self._client_read())
                continue
            if isinstance(event, h11.Data):
                relay: h11.Event = h11.Data(data=event.data)
            elif isinstance(event, h11.EndOfMessage):
                relay = h11.EndOfMessage()  # trailers are hop-by-hop: dropped
            else:  # pragma: no cover - h11 yields nothing else in SEND_BODY
                continue
            chunk = up.conn.send(relay) or b""
            out.append(chunk)
            size += len(chunk)
            if size <= REPLAY_LIMIT:
                events.append(relay)
            else:
                events.clear()
        await _write(up.writer, out)

    async def _relay_response(
        self, up: Upstream, request: h11.Request, started: float, capture: Capture | None
    ) -> int:
        """Stream the upstream's response to the client, event by event (its body kept in
        ``capture`` too, when given); its status."""
        out: list[bytes] = []
        status, sent = 0, 0
        while True:
            event = up.conn.next_event()
            if event is h11.NEED_DATA:
                if out:
                    await self._client_write(out)
                data = await up.reader.read(READ_SIZE)
                if not data and status == 0:
                    raise UpstreamFailed("closed the connection without answering")
                up.conn.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
                headers = _forward_headers(event.headers)
                if self.proxy.stopping:
                    headers.append((b"connection", b"close"))
                response = h11.Response(status_code=status, headers=headers, reason=event.reason)
                out.append(self.conn.send(response) or b"")
            elif isinstance(event, h11.Data):
                sent += len(event.data)
                if capture is not None:
                    capture.add(event.data)
                out.append(self.conn.send(h11.Data(data=event.data)) or b"")
            elif isinstance(event, h11.EndOfMessage):
                out.append(self.conn.send(h11.EndOfMessage()) or b"")
                await self._client_write(out)
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamFailed("closed the connection without answering")
            # InformationalResponse (100 Continue was answered here already): dropped
        self.proxy.access(request, status, _ms(started), up.side, sent)
        if up.conn.our_state is h11.DONE and up.conn.their_state is h11.DONE:
            up.conn.start_next_cycle()
            up.idle_since = time.monotonic()
            up.reused = True
        else:
            up.close()
        return status

    async def _reply(
        self, status: int, text: str, *, read_body: bool = False, close: bool = False
    ) -> int:
        """Answer with a one-line text body; with ``read_body``, read a small unread request
        body first so the connection stays usable, else close it after."""
        conn = self.conn
        if read_body and not conn.they_are_waiting_for_100_continue:
            unread = REPLAY_LIMIT
            while conn.their_state is h11.SEND_BODY and unread > 0:
                event = self._client_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await self._client_read())
                elif isinstance(event, h11.Data):
                    unread -= len(event.data)
        body, phrase = (text + "\n").encode(), HTTPStatus(status).phrase
        headers = [(b"content-type", b"text/plain; charset=utf-8")]
        headers.append((b"content-length", str(len(body)).encode()))
        if close or self.proxy.stopping or conn.their_state is not h11.DONE:
            headers.append((b"connection", b"close"))
        out = [
            conn.send(h11.Response(status_code=status, headers=headers, reason=phrase)) or b"",
            conn.send(h11.Data(data=body)) or b"",
            conn.send(h11.EndOfMessage()) or b"",
        ]
        await self._client_write(out)
        return status

    # Client-side failures are _ClientGone, so they are never taken for the upstream's.

    async def _next_request(self) -> h11.Event:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                assert not isinstance(event, type)  # PAUSED comes only after a request
                return event
            self.conn.receive_data(await self._client_read())

    def _client_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            return self.conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise _ClientGone(str(exc)) from exc

    async def _client_read(self) -> bytes:
        try:
            return await self.reader.read(READ_SIZE)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc

    async def _client_write(self, out: list[bytes]) -> None:
        try:
            await _write(self.writer, out)
        except OSError as exc:
            raise _ClientGone(str(exc)) from exc


class _ClientGone(OSError):
    """Reading from or writing to the client failed: nothing to answer, just close."""


async def _write(writer: asyncio.StreamWriter, out: list[bytes]) -> None:
    if out:
        writer.write(b"".join(out))
        out.clear()
        await writer.drain()


async def _connect(side: Side) -> Upstream:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(side.host, side.port), CONNECT_TIMEOUT
    )
    return Upstream(side, reader, writer)


def _whole(events: list[h11.Event]) -> bool:
    """The request was kept whole (within REPLAY_LIMIT, its body read to the end)."""
    return bool(events) and isinstance(events[-1], h11.EndOfMessage)


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.targets.proxy", description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT to serve on")
    parser.add_argument("--dir", required=True, type=Path, help="the environment's state dir")
    parser.add_argument("--access-log", type=Path, help="append one JSON line per request")
    args = parser.parse_args(argv)
    try:
        host, port = parse_address(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        sock = _bind(host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            _log(f"{args.listen} is in use by another program")
        else:
            _log(f"cannot listen on {args.listen}: {exc.strerror or exc}")
        return EXIT_CANNOT_LISTEN
    env_dir: Path = args.dir
    env_dir.mkdir(parents=True, exist_ok=True)
    access_log = AccessLog(args.access_log) if args.access_log else None
    try:
        return asyncio.run(Proxy(env_dir, access_log).run(sock, args.listen))
    finally:
        if access_log:
            access_log.close()


if __name__ == "__main__":
    sys.exit(main())

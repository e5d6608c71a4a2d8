"""The switching proxy as the engine uses it: a real ``python -m core.targets.proxy`` process in
front
of small stdlib upstreams, driven through core.targets.proxy_control."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.errors import InfraError
from core.host.ports import ephemeral_port
from core.targets.proxy_control import (
    current_upstream,
    proxy_pid,
    start_proxy,
    stop_proxy,
    switch_upstream,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(60)


@dataclass
class Upstream:
    """A stdlib HTTP/1.1 server answering with its own name."""

    name: str
    server: ThreadingHTTPServer
    release_stream: threading.Event = field(default_factory=threading.Event)
    seen_headers: list[Message] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def _serve(name: str) -> Upstream:
    upstream: Upstream

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            upstream.seen_headers.append(self.headers)
            if self.path == "/stream":
                self._stream()
            else:
                self._answer(name.encode())

        def do_POST(self) -> None:
            upstream.seen_headers.append(self.headers)
            if self.headers.get("Transfer-Encoding") == "chunked":
                body = b""
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    body += self.rfile.read(size + 2)[:-2]
                self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer(name.encode() + b":" + body)

        def _stream(self) -> None:
            """Chunked: the second event is sent only once the test has the first."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for event in (b"data: one\n\n", b"data: two\n\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
                self.wfile.flush()
                # Held until the test releases it (60 s only bounds a broken test): a stream
                # ending on its own would hide a proxy that waited for it.
                upstream.release_stream.wait(60)
            self.wfile.write(b"0\r\n\r\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream = Upstream(name, server)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return upstream


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream]]:
    a, b = _serve("A"), _serve("B")
    try:
        yield a, b
    finally:
        for upstream in (a, b):
            upstream.server.shutdown()
            upstream.server.server_close()


@dataclass
class Running:
    env_dir: Path
    port: int
    pid: int

    def get(self, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Running]:
    env_dir = tmp_path / "env"
    port = ephemeral_port()
    pid = start_proxy(env_dir, "127.0.0.1", port, access_log=tmp_path / "access.log")
    try:
        yield Running(env_dir, port, pid)
    finally:
        _kill(pid)


def test_no_release_answers_503(proxy: Running) -> None:
    assert proxy_pid(proxy.env_dir) == proxy.pid
    assert current_upstream(proxy.env_dir) is None
    assert proxy.get() == (503, "no release is live in this environment\n")


def test_forwards_get_and_post(proxy: Running, upstreams: tuple[Upstream, Upstream]) -> None:
    a, _ = upstreams
    switch_upstream(proxy.env_dir, a.address)
    assert current_upstream(proxy.env_dir) == a.address
    assert proxy.get("/x", headers={"Connection": "keep-alive, X-Private", "X-Private": "1"}) == (
        200,
        "A",
    )
    seen = a.seen_headers[-1]
    assert seen["Host"] == f"127.0.0.1:{proxy.port}"  # as the client sent it
    assert seen["X-Forwarded-For"] == "127.0.0.1"
    assert "X-Private" not in seen  # named by Connection: hop-by-hop
    assert seen["Connection"] is None

    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("POST", "/predict", body=b'{"x": [1, 2]}')
    assert conn.getresponse().read() == b'A:{"x": [1, 2]}'
    # a chunked request body is forwarded too
    conn.request("POST", "/predict", body=iter([b"ab", b"cd"]), encode_chunked=True)
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"A:abcd")
    conn.close()


def test_streamed_response_arrives_event_by_event(
    proxy: Running, upstreams: tuple[Upstream, Upstream]
) -> None:
    a, _ = upstreams
    a.release_stream.clear()
    switch_upstream(proxy.env_dir, a.address)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"data: one" not in received:  # the upstream holds "two" until we have "one"
            chunk = sock.recv(65536)
            assert chunk, "proxy closed the stream"
            received += chunk
        assert b"data: two" not in received
        a.release_stream.set()
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    assert b"data: two" in received


def test_keep_alive_connection_follows_the_switch(
    proxy: Running, upstreams: tuple[Upstream, Upstream]
) -> None:
    a, b = upstreams
    switch_upstream(proxy.env_dir, a.address)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"A"
    local = conn.sock.getsockname()
    switch_upstream(proxy.env_dir, b.address)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"B"
    assert conn.sock.getsockname() == local  # the same client connection
    conn.close()


def test_dead_upstream_answers_502(proxy: Running) -> None:
    dead = f"127.0.0.1:{ephemeral_port()}"
    switch_upstream(proxy.env_dir, dead)
    assert proxy.get() == (502, f"upstream {dead} is not answering: connection refused\n")


def test_switch_to_none_and_access_log(
    proxy: Running, upstreams: tuple[Upstream, Upstream], tmp_path: Path
) -> None:
    a, _ = upstreams
    switch_upstream(proxy.env_dir, a.address)
    assert proxy.get("/ping?q=1")[0] == 200
    switch_upstream(proxy.env_dir, None)
    assert current_upstream(proxy.env_dir) is None
    assert proxy.get()[0] == 503
    assert stop_proxy(proxy.env_dir) is True  # flushes the access log
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [(r["method"], r["path"], r["status"], r["upstream"]) for r in lines] == [
        ("GET", "/ping", 200, a.address),
        ("GET", "/", 503, None),
    ]
    assert lines[0]["bytes"] == 1 and lines[0]["ms"] >= 0 and lines[0]["t"] > 0


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(InfraError) as caught:
            start_proxy(tmp_path / "env", "127.0.0.1", port)
        assert str(caught.value) == (
            f"relman proxy: 127.0.0.1:{port} is in use by another program; "
            "free the port or change port in relman.toml"
        )
        assert caught.value.exit_code == 3
        command = [sys.executable, "-m", "core.targets.proxy", "--listen", f"127.0.0.1:{port}"]
        result = subprocess.run(
            [*command, "--dir", str(tmp_path / "other")],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 3
    assert result.stderr == f"relman proxy: 127.0.0.1:{port} is in use by another program\n"
    assert not (tmp_path / "other").exists()
    assert not (tmp_path / "env" / "proxy.pid").exists()


def test_sigterm_finishes_in_flight_and_removes_pid(
    proxy: Running, upstreams: tuple[Upstream, Upstream]
) -> None:
    a, _ = upstreams
    a.release_stream.clear()
    switch_upstream(proxy.env_dir, a.address)
    idle = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    idle.request("GET", "/")
    assert idle.getresponse().read() == b"A"  # an idle keep-alive connection must not hold
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        received = sock.recv(65536)
        while b"data: one" not in received:
            received += sock.recv(65536)
        os.kill(proxy.pid, signal.SIGTERM)
        # The proxy has taken the SIGTERM when it closes the idle connection; it does so
        # while the stream is still held (closed, not waited for).
        idle.sock.settimeout(60)
        assert idle.sock.recv(1) == b""
        idle.close()
        a.release_stream.set()  # the response in flight completes after SIGTERM
        while chunk := sock.recv(65536):
            received += chunk
    assert received.endswith(b"data: two\n\n\r\n0\r\n\r\n")
    # ... and then the proxy closed the connection (the loop above ended)
    _, status = os.waitpid(proxy.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not (proxy.env_dir / "proxy.pid").exists()
    assert proxy_pid(proxy.env_dir) is None
    assert stop_proxy(proxy.env_dir) is False


def test_switch_without_proxy_is_an_infra_error(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="is not running"):
        switch_upstream(tmp_path, "127.0.0.1:1")


def test_no_failed_request_while_switching(
    proxy: Running, upstreams: tuple[Upstream, Upstream]
) -> None:
    a, b = upstreams
    switch_upstream(proxy.env_dir, a.address)
    stop = threading.Event()
    failures: list[str] = []
    answers: list[str] = []

    def client(keep_alive: bool) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        while not stop.is_set():
            try:
                if not keep_alive:
                    conn.close()
                conn.request("POST", "/predict", body=b"x")
                response = conn.getresponse()
                body = response.read().decode()
                if response.status != 200:
                    failures.append(f"{response.status} {body}")
                answers.append(body)
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
        conn.close()

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for i in range(20):
            # Switch while requests flow: each upstream answers several before the next.
            enough = len(answers) + 8
            wait_for(
                lambda enough=enough: len(answers) >= enough or failures,
                "requests answered between two switches",
            )
            switch_upstream(proxy.env_dir, (b if i % 2 == 0 else a).address)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert {"A:x", "B:x"} <= set(answers)


class _RawUpstream(socketserver.ThreadingTCPServer):
    """Answers the first request of each connection (keep-alive), then misbehaves as told:
    ``"drop"``: reads the next request and closes without a word (the upstream's keep-alive
    timeout closing a connection just as a request is written); ``"cut"``: promises 100
    bytes, sends 5 and closes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        super().__init__(("127.0.0.1", 0), _RawHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _RawHandler(socketserver.StreamRequestHandler):
    server: _RawUpstream

    def _read_request(self) -> bool:
        length = 0
        while line := self.rfile.readline():
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
            if line == b"\r\n":
                self.rfile.read(length)
                return True
        return False

    def handle(self) -> None:
        if not self._read_request():
            return
        if self.server.mode == "cut":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
            return
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self._read_request()  # then close without answering


@pytest.fixture
def raw_upstream(request: pytest.FixtureRequest) -> Iterator[_RawUpstream]:
    server = _RawUpstream(request.param)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("raw_upstream", ["drop"], indirect=True)
def test_request_resent_when_reused_connection_closes_unanswered(
    proxy: Running, raw_upstream: _RawUpstream
) -> None:
    switch_upstream(proxy.env_dir, raw_upstream.address)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    for _ in range(3):
        conn.request("POST", "/predict", body=b'{"x": 1}')
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"ok")
    conn.close()


@pytest.mark.parametrize("raw_upstream", ["cut"], indirect=True)
def test_upstream_failing_mid_response_cuts_the_client(
    proxy: Running, raw_upstream: _RawUpstream
) -> None:
    switch_upstream(proxy.env_dir, raw_upstream.address)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead):
        response.read()
    conn.close()
    switch_upstream(proxy.env_dir, None)  # the proxy itself is fine
    assert proxy.get()[0] == 503

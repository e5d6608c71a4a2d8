"""The local target launches an environment's proxy while its first instance warms up: the
switch then finds it listening; an instance stopped before any switch takes the proxy with
it, so a failed first deploy leaves the port as free as it found it.

The project's interpreter is a stand-in for ``python -m bentoml serve``: a small HTTP server
answering ``/readyz`` on the port it is given (real processes, no Bento)."""

from __future__ import annotations

import http.client
import socket
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import api
from core.errors import InfraError
from core.host.ports import port_is_free
from core.host.processes import pid_alive
from core.targets.local import LocalTarget
from core.targets.proxy_control import proxy_pid
from tests.ports import worker_ports

SERVE = f"""#!{sys.executable}
import http.server, sys
port = int(sys.argv[sys.argv.index("--port") + 1])

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

# A server whose port answers something other than HTTP (a ZeroMQ greeting, as BentoML's
# process manager sends on a port it bound) and whose service then fails to start.
NOT_HTTP = f"""#!{sys.executable}
import socket, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
server = socket.create_server(("127.0.0.1", port))
for _ in range(3):
    client, _ = server.accept()
    client.recv(4096)  # read, so the close is a FIN, not a reset
    client.sendall(bytes([0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F]))
    client.close()
print("RuntimeError: model store unreachable", flush=True)
sys.exit(1)
"""


@pytest.fixture
def target(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LocalTarget]:
    fake = tmp_path / "fake-python"
    fake.write_text(getattr(request, "param", SERVE))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    (port,) = worker_ports(1)
    (tmp_path / "relman.toml").write_text(
        f'[project]\nname = "p"\npython = "{fake}"\n\n'
        '[services.p]\nbento = "service:P"\nmodel = ["model.pkl"]\n\n'
        f"[environments.dev]\nport = {port}\n"
    )
    local = LocalTarget(api.load_project(tmp_path), "p", "dev")
    yield local
    local.down()


def _get(address: str, path: str) -> int:
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_proxy_starts_with_the_first_instance_and_serves_it_after_the_switch(
    target: LocalTarget,
) -> None:
    instance = target.start("p:1", "r1", log=lambda _line: None)
    target.wait_ready(instance, 30)
    target.switch(instance)
    pid = proxy_pid(target.folder)
    assert pid is not None
    assert _get(f"{target.config.host}:{target.config.port}", "/readyz") == 200
    assert target.serving() == instance

    # A second instance of a live environment launches no second proxy.
    second = target.start("p:2", "r2", log=lambda _line: None)
    target.wait_ready(second, 30)
    target.switch(second)
    target.stop(instance)
    assert proxy_pid(target.folder) == pid
    assert target.serving() == second


def test_an_instance_stopped_before_the_switch_takes_its_proxy_with_it(
    target: LocalTarget,
) -> None:
    instance = target.start("p:1", "r1", log=lambda _line: None)
    launched = target._front
    assert launched is not None  # the proxy is on its way while the instance warms up
    target.stop(instance)
    assert launched.process.poll() is not None  # ended and reaped, not left behind
    assert not pid_alive(launched.process.pid)
    assert proxy_pid(target.folder) is None
    assert port_is_free(target.config.port, target.config.host)


def test_a_port_taken_by_another_program_is_left_for_the_switch_to_report(
    target: LocalTarget,
) -> None:
    holder = socket.socket()
    holder.bind((target.config.host, target.config.port))
    holder.listen()
    try:
        instance = target.start("p:1", "r1", log=lambda _line: None)
        assert target._front is None  # nothing launched that could only fail
        target.wait_ready(instance, 30)
        with pytest.raises(InfraError, match="in use by another program"):
            target.switch(instance)
        target.stop(instance)
    finally:
        holder.close()


@pytest.mark.parametrize("target", [NOT_HTTP], indirect=True)
def test_a_port_answering_something_else_than_http_is_waited_on_until_the_error_shows(
    target: LocalTarget,
) -> None:
    instance = target.start("p:1", "r1", log=lambda _line: None)
    with pytest.raises(InfraError, match="model store unreachable"):
        target.wait_ready(instance, 60)
    target.stop(instance)

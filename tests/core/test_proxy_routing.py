"""Weighted, sticky and mirrored routing: a real ``python -m core.targets.proxy`` process in
front of small stdlib upstreams, driven through core.targets.proxy_control.set_routing; and the
local target's split, routing, candidate and sweep over tagged stand-in instances."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.config.model import load_project
from core.errors import BlockedError
from core.host.ports import ephemeral_port
from core.host.processes import TAG_VARIABLE, pid_alive
from core.targets.base import Instance
from core.targets.local import LocalTarget
from core.targets.proxy_control import (
    APPLIED_FILE,
    UPSTREAM_FILE,
    Routing,
    current_routing,
    current_upstream,
    parse_routing,
    proxy_pid,
    proxy_reads_routing,
    set_routing,
    start_proxy,
    stop_proxy,
    switch_upstream,
)
from core.targets.proxy_shadow import SHADOW_LIMIT, agreement
from core.traffic import load as traffic
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)

ANSWER = b'{"label": "setosa"}'


@dataclass
class Upstream:
    """A stdlib HTTP/1.1 server answering ``answer`` with its name in ``X-Side``; while
    ``hold`` is clear, each request waits for it (a slow shadow)."""

    name: str
    answer: bytes
    server: ThreadingHTTPServer | None = None
    hold: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: int = 0
    bodies: list[bytes] = field(default_factory=list)

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"


def _serve(name: str, answer: bytes = ANSWER) -> Upstream:
    upstream = Upstream(name, answer)
    upstream.hold.set()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each answer waits out a delayed ACK

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with upstream.lock:
                upstream.arrived += 1
                upstream.bodies.append(body)
            upstream.hold.wait(60)  # only bounds a broken test
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Side", name)
            self.send_header("Content-Length", str(len(upstream.answer)))
            self.end_headers()
            self.wfile.write(upstream.answer)

        do_GET = do_POST = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    upstream.server = server
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return upstream


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Upstream, Upstream, Upstream]]:
    """A and B answer alike; C answers otherwise (a shadow that disagrees)."""
    servers = _serve("A"), _serve("B"), _serve("C", b'{"label": "virginica"}')
    try:
        yield servers
    finally:
        for upstream in servers:
            upstream.hold.set()
            assert upstream.server is not None
            upstream.server.shutdown()
            upstream.server.server_close()


@dataclass
class Running:
    env_dir: Path
    port: int
    pid: int

    @property
    def access_log(self) -> Path:
        return self.env_dir / "access.log"

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def ask(
        self,
        conn: http.client.HTTPConnection | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b'{"features": [[1, 2]]}',
    ) -> tuple[int, str | None]:
        """POST once (on ``conn``, kept, or a new connection): the status and X-Side."""
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request("POST", "/predict", body=body, headers=headers or {})
            response = conn.getresponse()
            response.read()
            return response.status, response.getheader("X-Side")
        finally:
            if own:
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
    pid = start_proxy(env_dir, "127.0.0.1", port, access_log=env_dir / "access.log")
    try:
        yield Running(env_dir, port, pid)
    finally:
        _kill(pid)


def _lines(path: Path) -> list[dict[str, Any]]:
    """The whole JSON lines of a log the proxy may be writing."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1]]


def _wait_lines(path: Path, count: int) -> list[dict[str, Any]]:
    """The lines of ``path`` once it holds ``count`` (the proxy writes its logs each second)."""
    wait_for(lambda: len(_lines(path)) >= count, f"{count} lines in {path.name}")
    return _lines(path)


# ------------------------------------------------------------------------- the contract


def test_routing_round_trips_and_current_upstream_is_the_stable(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    assert proxy_reads_routing(proxy.env_dir)
    routing = Routing(a.address, "rel-a", b.address, "rel-b", 25, "shadow", "X-User")
    set_routing(proxy.env_dir, routing)
    assert current_routing(proxy.env_dir) == routing
    assert current_upstream(proxy.env_dir) == a.address
    text = (proxy.env_dir / UPSTREAM_FILE).read_text()
    assert "\n" not in text and json.loads(text)["canary_release"] == "rel-b"
    assert (proxy.env_dir / APPLIED_FILE).read_text() == text
    set_routing(proxy.env_dir, Routing(None))
    assert current_routing(proxy.env_dir) is None and current_upstream(proxy.env_dir) is None
    assert proxy.ask() == (503, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stable": "127.0.0.1:1", "weight": 101}, "not between 0 and 100"),
        ({"stable": "127.0.0.1:1", "weight": 10.0}, "not a whole number"),
        ({"stable": None, "canary": "127.0.0.1:2"}, "needs a stable"),
        ({"stable": "nowhere"}, "not a host:port"),
        ({"stable": "127.0.0.1:1", "mode": "blue-green"}, "not canary or shadow"),
    ],
)
def test_a_routing_that_cannot_be_is_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Routing(**fields)
    with pytest.raises(ValueError, match=message):
        parse_routing(json.dumps(fields))


def test_parse_routing_reads_old_and_new_files() -> None:
    assert parse_routing("") is None
    assert parse_routing("127.0.0.1:80\n") == Routing("127.0.0.1:80")
    routing = Routing("127.0.0.1:80", "r1", "127.0.0.1:81", "r2", 10)
    assert parse_routing(routing.to_text()) == routing
    for bad in ("{", '{"stable": "127.0.0.1:80", "colour": "red"}', '{"weight": 5}'):
        with pytest.raises(ValueError, match="not a routing"):
            parse_routing(bad)
    with pytest.raises(ValueError, match="not a host:port"):
        parse_routing("[1]")


def test_an_old_plain_upstream_file_still_serves(
    tmp_path: Path, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    """An environment folder left by a relman before rollouts: ``upstream`` holds an address."""
    a, b, _ = upstreams
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / UPSTREAM_FILE).write_text(a.address + "\n")
    running = Running(env_dir, ephemeral_port(), 0)
    running.pid = start_proxy(env_dir, "127.0.0.1", running.port, access_log=running.access_log)
    try:
        assert running.ask() == (200, "A")
        assert current_routing(env_dir) == Routing(a.address)
        assert current_upstream(env_dir) == a.address
        switch_upstream(env_dir, b.address)  # and switch_upstream writes a plain address
        assert (env_dir / UPSTREAM_FILE).read_text() == b.address
        assert current_routing(env_dir) == Routing(b.address)
        assert running.ask() == (200, "B")
        assert stop_proxy(env_dir)
    finally:
        _kill(running.pid)
    records = _lines(running.access_log)
    assert [(r["role"], r["release"], r["upstream"]) for r in records] == [
        ("stable", None, a.address),
        ("stable", None, b.address),
    ]


# ------------------------------------------------------------------------------- canary


def test_weights_route_their_share(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    conn = proxy.connect()  # one keep-alive connection, going to both sides
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", b.address, "rel-b", 0))
    assert {proxy.ask(conn) for _ in range(50)} == {(200, "A")}
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", b.address, "rel-b", 100))
    assert {proxy.ask(conn) for _ in range(50)} == {(200, "B")}
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", b.address, "rel-b", 30))
    answers = [proxy.ask(conn) for _ in range(400)]
    conn.close()
    assert {status for status, _ in answers} == {200}
    canary = sum(side == "B" for _, side in answers)
    # 400 draws at 30 %: mean 120, sd 9.2; +-6 sd fails once in ~500 million runs.
    assert 65 <= canary <= 175
    assert stop_proxy(proxy.env_dir)  # writes the access log out
    records = _lines(proxy.access_log)
    assert len(records) == 500
    sides = {(r["role"], r["release"], r["upstream"]) for r in records}
    assert sides == {("stable", "rel-a", a.address), ("canary", "rel-b", b.address)}
    assert sum(r["role"] == "canary" for r in records[100:]) == canary


def test_sticky_keeps_a_client_on_one_side(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    routing = Routing(a.address, "rel-a", b.address, "rel-b", 30, sticky="X-User")
    set_routing(proxy.env_dir, routing)
    sides = {}
    for user in range(40):
        seen = {proxy.ask(headers={"X-User": f"user-{user}"})[1] for _ in range(5)}
        assert len(seen) == 1, f"user-{user} answered by {seen}"
        sides[user] = seen.pop()
    assert set(sides.values()) == {"A", "B"}
    # Without the header, the client's address decides: one side for all of its requests.
    assert len({proxy.ask()[1] for _ in range(20)}) == 1
    # A larger weight moves more users to the canary, and none of those already there back.
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", b.address, "rel-b", 70, sticky="X-User"))
    later = {user: proxy.ask(headers={"X-User": f"user-{user}"})[1] for user in range(40)}
    assert all(later[user] == "B" for user, side in sides.items() if side == "B")
    assert sum(side == "B" for side in later.values()) > sum(s == "B" for s in sides.values())


# ------------------------------------------------------------------------------- shadow


def _shadow_run(proxy: Running, stable: Upstream, shadow: Upstream, count: int) -> None:
    set_routing(
        proxy.env_dir, Routing(stable.address, "rel-a", shadow.address, "rel-s", 100, "shadow")
    )
    conn = proxy.connect()
    for n in range(count):
        assert proxy.ask(conn, body=b'{"features": [[%d]]}' % n) == (200, stable.name)
    conn.close()


@pytest.mark.parametrize(("shadow_name", "agree"), [("B", True), ("C", False)])
def test_shadow_mirrors_and_says_whether_it_agrees(
    proxy: Running,
    upstreams: tuple[Upstream, Upstream, Upstream],
    shadow_name: str,
    agree: bool,
) -> None:
    a = upstreams[0]
    shadow = next(u for u in upstreams if u.name == shadow_name)
    before = shadow.arrived
    _shadow_run(proxy, a, shadow, 10)
    compared = _wait_lines(proxy.env_dir / "shadow.log", 10)
    assert len(compared) == 10
    assert shadow.arrived - before == 10
    assert sorted(line["request"]["features"][0][0] for line in compared) == list(range(10))
    for line in compared:
        assert line["agree"] is agree and line["path"] == "/predict" and line["t"] > 0
        assert line["stable"]["status"] == 200 and line["stable"]["body"] == {"label": "setosa"}
        assert line["shadow"]["status"] == 200 and line["shadow"]["ms"] >= 0
        assert line["shadow"]["body"] == json.loads(shadow.answer)
    assert stop_proxy(proxy.env_dir)
    records = _lines(proxy.access_log)
    assert sorted((r["role"], r["release"], r.get("agree")) for r in records) == sorted(
        [("stable", "rel-a", None)] * 10 + [("shadow", "rel-s", agree)] * 10
    )
    assert {r["upstream"] for r in records if r["role"] == "shadow"} == {shadow.address}


def test_a_dead_shadow_costs_the_clients_nothing(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a = upstreams[0]
    dead = f"127.0.0.1:{ephemeral_port()}"
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", dead, "rel-s", 100, "shadow"))
    assert {proxy.ask() for _ in range(20)} == {(200, "A")}
    lines = _wait_lines(proxy.env_dir / "shadow.log", 20)
    assert len(lines) == 20
    assert {(line["shadow"]["status"], line["agree"]) for line in lines} == {(502, None)}
    assert all("refused" in line["shadow"]["error"] for line in lines)


def test_shadow_weight_zero_mirrors_nothing(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, _ = upstreams
    before = b.arrived
    set_routing(proxy.env_dir, Routing(a.address, "rel-a", b.address, "rel-b", 0, "shadow"))
    assert {proxy.ask() for _ in range(30)} == {(200, "A")}
    assert stop_proxy(proxy.env_dir)
    assert b.arrived == before
    assert {r["role"] for r in _lines(proxy.access_log)} == {"stable"}


def test_a_slow_shadow_gets_a_bounded_number_of_copies(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a = upstreams[0]
    slow = _serve("S")
    slow.hold.clear()
    try:
        _shadow_run(proxy, a, slow, SHADOW_LIMIT + 8)  # every client answered meanwhile
        # The next request, under a routing without shadow, is read only once the last
        # copy was sent or dropped.
        set_routing(proxy.env_dir, Routing(a.address, "rel-a"))
        assert proxy.ask() == (200, "A")
        wait_for(lambda: slow.arrived == SHADOW_LIMIT, f"{SHADOW_LIMIT} copies held by the shadow")
        wait_for(
            lambda: "shadow copies dropped: 8 " in (proxy.env_dir / "proxy.log").read_text(),
            "the proxy saying it dropped 8 copies",
        )
        slow.hold.set()
        wait_for(
            lambda: sum(r["role"] == "shadow" for r in _lines(proxy.access_log)) == SHADOW_LIMIT,
            "the held copies answered",
        )
        assert slow.arrived == SHADOW_LIMIT
    finally:
        slow.hold.set()
        assert slow.server is not None
        slow.server.shutdown()
        slow.server.server_close()


def test_agreement_compares_json_of_two_successes() -> None:
    assert agreement(200, b'{"a": [1, 2]}', 201, b'{ "a": [1, 2] }') is True
    assert agreement(200, b'{"a": 1}', 200, b'{"a": 2}') is False
    assert agreement(200, b'{"a": 1}', 500, b'{"a": 1}') is None
    assert agreement(200, b"not json", 200, b"not json") is None
    assert agreement(200, None, 200, b"{}") is None  # past the body cap


# --------------------------------------------------------------------- changes under load


def test_no_failed_request_while_the_routing_changes(
    proxy: Running, upstreams: tuple[Upstream, Upstream, Upstream]
) -> None:
    a, b, c = upstreams
    set_routing(proxy.env_dir, Routing(a.address, "rel-a"))
    stop = threading.Event()
    failures: list[str] = []
    answers: list[str] = []

    def client(keep_alive: bool) -> None:
        conn = proxy.connect()
        while not stop.is_set():
            try:
                if not keep_alive:
                    conn.close()
                conn.request("POST", "/predict", body=b'{"x": 1}', headers={"X-User": "u"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"{response.status}")
                answers.append(str(response.getheader("X-Side")))
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
        conn.close()

    dead = f"127.0.0.1:{ephemeral_port()}"
    steps = [
        Routing(a.address, "rel-a", b.address, "rel-b", 10),
        Routing(a.address, "rel-a", b.address, "rel-b", 50),
        Routing(a.address, "rel-a", b.address, "rel-b", 100),
        Routing(a.address, "rel-a"),  # an abort: back to the stable alone
        Routing(a.address, "rel-a", c.address, "rel-c", 50, "shadow"),
        Routing(a.address, "rel-a", dead, "rel-d", 100, "shadow"),
        Routing(a.address, "rel-a", b.address, "rel-b", 50, sticky="X-User"),
        Routing(b.address, "rel-b"),  # promoted
    ]
    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for step in steps * 2:
            _more_answers(answers, failures)  # several under each routing
            set_routing(proxy.env_dir, step)
        _more_answers(answers, failures)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert set(answers) == {"A", "B"}


def _more_answers(answers: list[str], failures: list[str], more: int = 8) -> None:
    enough = len(answers) + more
    wait_for(lambda: len(answers) >= enough or failures, f"{more} more requests answered")


# ---------------------------------------------------------------------- the local target

INSTANCE = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        body = json.dumps({"release": sys.argv[2]}).encode()
        self.send_response(200)
        self.send_header("X-Side", sys.argv[2])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_GET
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


def _instance(target: LocalTarget, release: str) -> Instance:
    """A stand-in `bentoml serve`: tagged with its folder as the local target starts one."""
    port = ephemeral_port()
    folder = target.folder / "instances" / f"{release}-{port}"
    folder.mkdir(parents=True)
    address = f"127.0.0.1:{port}"
    (folder / "instance.json").write_text(json.dumps({"release": release, "address": address}))
    child = subprocess.Popen(
        [sys.executable, "-c", INSTANCE, str(port), release],
        env={**os.environ, TAG_VARIABLE: str(folder)},
        start_new_session=True,
    )
    (folder / "pid").write_text(str(child.pid))
    wait_for(lambda: _accepts(port), f"{release} listening")
    return Instance(release, address, child.pid, str(folder / "serve.log"))


@pytest.fixture
def local(tmp_path: Path) -> Iterator[LocalTarget]:
    (tmp_path / "relman.toml").write_text(
        '[project]\nname = "t"\n\n[services.iris]\nbento = "service:Iris"\nmodel = ["m"]\n'
        'sample_request = "sample.json"\nendpoint = "predict"\n\n'
        f"[environments.prod]\nport = {ephemeral_port()}\n"
    )
    target = LocalTarget(load_project(tmp_path), "iris", "prod")
    try:
        yield target
    finally:
        target.down()


def test_split_routing_candidate_and_sweep_of_the_local_target(local: LocalTarget) -> None:
    stable, candidate, orphan = (_instance(local, r) for r in ("rel-a", "rel-b", "rel-c"))
    assert local.routing() is None and local.candidate() is None
    local.switch(stable)  # starts the proxy, as a promotion does
    assert local.routing() == Routing(stable.address, "rel-a")
    assert local.serving() == stable and local.candidate() is None
    local.split(stable, candidate, 100, sticky="X-User")
    assert local.routing() == Routing(
        stable.address, "rel-a", candidate.address, "rel-b", 100, "canary", "X-User"
    )
    assert local.serving() == stable and local.candidate() == candidate
    conn = http.client.HTTPConnection("127.0.0.1", local.config.port, timeout=30)
    conn.request("POST", "/predict", body=b"{}")
    response = conn.getresponse()
    assert json.loads(response.read()) == {"release": "rel-b"}
    conn.close()

    # Faults with --target canary go into the candidate's folder.
    faulted = traffic.canary_serving(local.project, "iris", "prod")
    assert (faulted.folder, faulted.release) == (Path(str(candidate.log)).parent, "rel-b")

    assert local.sweep([stable, candidate]) == ["stopped orphan rel-c on " + orphan.address]
    assert [i.release for i in local.instances()] == ["rel-a", "rel-b"]
    assert not pid_alive(orphan.pid)

    local.split(stable, candidate, 40, mode="shadow")
    routing = local.routing()
    assert routing is not None and (routing.mode, routing.weight) == ("shadow", 40)
    local.switch(candidate)  # promoted: the split ends
    assert local.routing() == Routing(candidate.address, "rel-b")
    assert local.serving() == candidate and local.candidate() is None
    assert local.sweep(candidate) == ["stopped orphan rel-a on " + stable.address]
    assert stop_proxy(local.folder)
    records = _lines(local.access_log)
    assert [(r["role"], r["release"], r["status"]) for r in records] == [("canary", "rel-b", 200)]


def test_sweep_stops_the_workers_of_a_dead_leader_and_passes_over_stopped_instances(
    local: LocalTarget,
) -> None:
    """The sweep reads every process once (process_table): an instance folder whose leader
    is dead but whose worker still runs with its tag is stopped; folders of instances with
    nothing running (the stopped ones kept for their logs) say nothing."""
    live = _instance(local, "rel-a")
    stale = _instance(local, "rel-b")
    os.kill(stale.pid, signal.SIGKILL)  # stopped long ago: nothing of it runs
    wait_for(lambda: not pid_alive(stale.pid), "rel-b to be gone")
    crashed = _instance(local, "rel-c")
    folder = Path(str(crashed.log)).parent
    worker = subprocess.Popen(  # a worker the killed server left behind, reparented
        [sys.executable, "-c", "import time; time.sleep(600)"],
        env={**os.environ, TAG_VARIABLE: str(folder)},
        start_new_session=True,
    )
    try:
        os.kill(crashed.pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(crashed.pid), "rel-c's server to be gone")
        assert local.sweep(live) == ["stopped orphan rel-c on " + crashed.address]
        worker.wait(timeout=30)
        assert pid_alive(live.pid)
        assert local.sweep(live) == []  # nothing left to stop
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_no_canary_to_put_a_fault_into(local: LocalTarget) -> None:
    stable = _instance(local, "rel-a")
    local.switch(stable)
    with pytest.raises(BlockedError) as caught:
        traffic.canary_serving(local.project, "iris", "prod")
    assert str(caught.value) == (
        "no canary runs in prod; start one with relman promote iris --to prod --strategy canary"
    )
    assert caught.value.exit_code == 1


def test_a_proxy_started_before_rollouts_is_replaced_for_a_split(local: LocalTarget) -> None:
    """A proxy that does not say it reads a Routing (one a relman before rollouts started)
    is switched with a plain address, and replaced (it finishes its requests) to split."""
    stable, candidate = _instance(local, "rel-a"), _instance(local, "rel-b")
    local.switch(stable)
    old = proxy_pid(local.folder)
    (local.folder / "proxy.protocol").unlink()
    assert not proxy_reads_routing(local.folder)
    local.switch(candidate)
    assert (local.folder / UPSTREAM_FILE).read_text() == candidate.address
    assert local.routing() == Routing(candidate.address) and proxy_pid(local.folder) == old
    local.split(candidate, stable, 10)
    assert proxy_pid(local.folder) not in (None, old) and proxy_reads_routing(local.folder)
    assert local.routing() == Routing(candidate.address, "rel-b", stable.address, "rel-a", 10)

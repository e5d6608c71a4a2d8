"""Requests through relman's switching proxy while it switches releases, against direct calls.

Two stdlib HTTP/1.1 upstreams run in a child process; the proxy (``python -m core.targets.proxy``)
runs in front of them. Two clients each send ``--rate`` requests a second for ``--seconds``:
one over a keep-alive connection, one opening a new connection per request. Each proxied
request is paired with the same call made directly to the upstream, so the added latency is
measured under the same load. Every second the proxy is switched A -> B -> A ...
Prints requests sent, failed, and p50/p99 of the latency direct and through the proxy.

    python benchmarks/bench_switch_proxy.py [--rate 50] [--seconds 10]

``--uvicorn`` instead runs the engine's real cycle: each second a new uvicorn upstream starts
on a fresh port, the proxy switches to it, and the previous one gets SIGTERM (graceful).

``--rollout`` runs a rollout's routing changes instead, at ``--rate`` requests a second in all
(two clients, keep-alive and new connections): canary 10 % -> 50 % -> 100 %, an abort (back
to the stable alone), then a shadow phase mirroring 50 %, each ``--phase`` seconds. Prints per
phase the requests, the failed ones (goal 0), the share the canary answered and the copies
the shadow got (from the access log).

    python benchmarks/bench_switch_proxy.py --rollout [--rate 50] [--phase 3]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.host.ports import ephemeral_port  # noqa: E402
from core.targets.proxy_control import (  # noqa: E402
    Routing,
    set_routing,
    start_proxy,
    stop_proxy,
    switch_upstream,
)

STDLIB_UPSTREAMS = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as uvicorn (asyncio) does: no delayed-ACK stalls
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out = self.server.name + b":" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
servers = []
for name, port in zip(("A", "B"), sys.argv[1:]):
    s = ThreadingHTTPServer(("127.0.0.1", int(port)), H)
    s.daemon_threads = True
    s.name = name.encode()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    servers.append(s)
print("ready", flush=True)
sys.stdin.read()
"""

UVICORN_APP = """
import sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    out = sys.argv[2].encode() + b":" + body
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.failed: list[str] = []
        # per client kind ("keep-alive", "new connection"): latencies in ms
        self.direct: dict[str, list[float]] = {"keep-alive": [], "new connection": []}
        self.proxied: dict[str, list[float]] = {"keep-alive": [], "new connection": []}


def _call(conn: http.client.HTTPConnection) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("POST", "/predict", body=b'{"x": [1, 2, 3]}')
    response = conn.getresponse()
    response.read()
    return (time.perf_counter() - started) * 1000, response.status


def client(
    stats: Stats, proxy_port: int, direct: list[int], keep_alive: bool, rate: float, until: float
) -> None:
    proxied = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=10)
    kept: dict[int, http.client.HTTPConnection] = {}
    interval, next_at = 1.0 / rate, time.monotonic()
    while (now := time.monotonic()) < until:
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        if not keep_alive:
            proxied.close()
        # the same call straight to the upstream live now, over a kept connection to it
        # (keep-alive) or a new one
        port = direct[0]
        target = kept.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            direct_ms, _ = _call(target)
        except (OSError, http.client.HTTPException):
            direct_ms = float("nan")  # the upstream was just stopped (--uvicorn): not counted
            target.close()
            kept.pop(port, None)
        else:
            if keep_alive:
                kept[port] = target
            else:
                target.close()
        try:
            ms, status = _call(proxied)
            failure = None if status == 200 else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            failure = repr(exc)
            proxied.close()
        with stats.lock:
            stats.sent += 1
            if failure:
                stats.failed.append(failure)
            elif direct_ms == direct_ms:  # not NaN
                kind = "keep-alive" if keep_alive else "new connection"
                stats.proxied[kind].append(ms)
                stats.direct[kind].append(direct_ms)
    proxied.close()
    for conn in kept.values():
        conn.close()


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else float("nan")


def _start_uvicorn(name: str) -> tuple[subprocess.Popen[bytes], int]:
    port = ephemeral_port()
    process = subprocess.Popen([sys.executable, "-c", UVICORN_APP, str(port), name])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return process, port
        time.sleep(0.02)
    process.kill()
    raise SystemExit(f"uvicorn upstream on {port} did not start")


def _rollout_client(
    port: int, keep_alive: bool, rate: float, phase: list[int], done: threading.Event,
    results: list[tuple[int, str]],
) -> None:  # fmt: skip
    """Requests at ``rate`` a second until ``done``, each giving ``results`` (the phase when
    it was sent, the side that answered it or why it failed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    interval, next_at = 1.0 / rate, time.monotonic()
    while not done.is_set():
        now = time.monotonic()
        if now < next_at:
            time.sleep(next_at - now)
        next_at += interval
        if not keep_alive:
            conn.close()
        at = phase[0]
        try:
            conn.request("POST", "/predict", body=b'{"x": [1, 2, 3]}')
            response = conn.getresponse()
            body = response.read()
            outcome = body[:1].decode() if response.status == 200 else f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as exc:
            outcome = repr(exc)
            conn.close()
        results.append((at, outcome))
    conn.close()


def rollout(rate: float, seconds: float) -> None:
    """Canary 10 -> 50 -> 100 %, abort, shadow 50 %: failed requests per phase."""
    with tempfile.TemporaryDirectory(prefix="relman-bench-rollout-") as tmp:
        env_dir = Path(tmp) / "env"
        ports = [ephemeral_port(), ephemeral_port()]
        upstreams = subprocess.Popen(
            [sys.executable, "-c", STDLIB_UPSTREAMS, *map(str, ports)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert upstreams.stdout is not None
        upstreams.stdout.readline()
        a, b = (f"127.0.0.1:{port}" for port in ports)
        phases = [
            ("stable only", Routing(a, "A")),
            ("canary 10%", Routing(a, "A", b, "B", 10)),
            ("canary 50%", Routing(a, "A", b, "B", 50)),
            ("canary 100%", Routing(a, "A", b, "B", 100)),
            ("abort", Routing(a, "A")),
            ("shadow 50%", Routing(a, "A", b, "B", 50, "shadow")),
        ]
        proxy_port = ephemeral_port()
        access_log = env_dir / "access.log"
        results: list[tuple[int, str]] = []
        bounds: list[float] = []
        phase, done = [0], threading.Event()
        try:
            start_proxy(env_dir, "127.0.0.1", proxy_port, access_log=access_log)
            set_routing(env_dir, phases[0][1])
            threads = [
                threading.Thread(
                    target=_rollout_client,
                    args=(proxy_port, keep, rate / 2, phase, done, results),
                )
                for keep in (True, False)
            ]
            for thread in threads:
                thread.start()
            changes: list[float] = []
            for index, (_, routing) in enumerate(phases):
                if index:
                    started = time.perf_counter()
                    set_routing(env_dir, routing)
                    changes.append((time.perf_counter() - started) * 1000)
                phase[0] = index
                bounds.append(time.time())
                time.sleep(seconds)
            bounds.append(time.time())
            done.set()
            for thread in threads:
                thread.join()
        finally:
            stop_proxy(env_dir)  # writes out the access log
            upstreams.kill()
            upstreams.wait()
        records = [json.loads(line) for line in access_log.read_text().splitlines()]

    print(f"rollout phases at {rate:g} requests/s, {seconds:g} s each (stdlib upstreams A, B)")
    print(f"routing changes confirmed in p50 {statistics.median(changes):.1f} ms, "
          f"max {max(changes):.1f} ms")  # fmt: skip
    print(f"{'phase':<13} {'requests':>8} {'failed':>6} {'answered by B':>13} {'mirrored':>8}")
    for index, (name, _) in enumerate(phases):
        mine = [outcome for at, outcome in results if at == index]
        failed = [o for o in mine if o not in ("A", "B")]
        by_b = sum(o == "B" for o in mine) / len(mine) if mine else float("nan")
        mirrored = sum(
            r["role"] == "shadow" and bounds[index] <= r["t"] < bounds[index + 1] for r in records
        )
        print(f"{name:<13} {len(mine):>8} {len(failed):>6} {by_b:>13.0%} {mirrored:>8}"
              + (f"  {sorted(set(failed))[:2]}" if failed else ""))  # fmt: skip
    total = sum(o not in ("A", "B") for _, o in results)
    print(f"failed requests in all phases: {total} (goal 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="requests a second per client (in all, with --rollout)",
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--uvicorn", action="store_true", help="start B, switch, stop A")
    parser.add_argument("--rollout", action="store_true", help="canary, abort, shadow phases")
    parser.add_argument("--phase", type=float, default=3.0, help="seconds per rollout phase")
    args = parser.parse_args()
    if args.rollout:
        rollout(args.rate, args.phase)
        return

    with tempfile.TemporaryDirectory(prefix="relman-bench-proxy-") as tmp:
        env_dir = Path(tmp) / "env"
        children: list[subprocess.Popen[bytes]] = []
        proxy_port = ephemeral_port()
        try:
            if args.uvicorn:
                process, port = _start_uvicorn("R0")
                children.append(process)
                ports = [port]
            else:
                ports = [ephemeral_port(), ephemeral_port()]
                upstreams = subprocess.Popen(
                    [sys.executable, "-c", STDLIB_UPSTREAMS, *map(str, ports)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                children.append(upstreams)
                assert upstreams.stdout is not None
                upstreams.stdout.readline()
            start_proxy(env_dir, "127.0.0.1", proxy_port, access_log=Path(tmp) / "access.log")
            switch_upstream(env_dir, f"127.0.0.1:{ports[0]}")
            live = [ports[0]]
            stats = Stats()
            until = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=client, args=(stats, proxy_port, live, keep, args.rate, until)
                )
                for keep in (True, False)
            ]
            for thread in threads:
                thread.start()
            switches: list[float] = []
            n = 0
            while time.monotonic() + 1 < until:
                time.sleep(1.0)
                n += 1
                if args.uvicorn:
                    process, port = _start_uvicorn(f"R{n}")
                    children.append(process)
                else:
                    port = ports[n % 2]
                started = time.perf_counter()
                switch_upstream(env_dir, f"127.0.0.1:{port}")
                switches.append((time.perf_counter() - started) * 1000)
                live[0] = port
                if args.uvicorn:
                    old = children.pop(-2)
                    old.send_signal(signal.SIGTERM)
                    threading.Thread(target=old.wait, daemon=True).start()
            for thread in threads:
                thread.join()
        finally:
            stop_proxy(env_dir)
            for child in children:
                child.kill()
                child.wait()

    mode = "uvicorn start/switch/stop" if args.uvicorn else "stdlib A<->B"
    print(f"mode           {mode}, switching every second")
    print(f"requests sent  {stats.sent} (2 clients x {args.rate:g}/s x {args.seconds:g} s)")
    print(f"failed         {len(stats.failed)} {sorted(set(stats.failed))[:3]}")
    print(
        f"switches       {len(switches)}, confirmed in p50 {statistics.median(switches):.1f} ms,"
        f" max {max(switches):.1f} ms"
    )
    print("latency ms     direct p50/p99     proxied p50/p99    added p50/p99")
    for kind, direct in stats.direct.items():
        proxied = stats.proxied[kind]
        d50, d99, p50, p99 = (
            _pct(direct, 50),
            _pct(direct, 99),
            _pct(proxied, 50),
            _pct(proxied, 99),
        )
        print(
            f"{kind:<14} {d50:6.3f} / {d99:6.3f}    {p50:6.3f} / {p99:6.3f}    "
            f"{p50 - d50:6.3f} / {p99 - d99:6.3f}"
        )


if __name__ == "__main__":
    main()

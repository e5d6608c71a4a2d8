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
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
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
from core.targets.proxy_control import start_proxy, stop_proxy, switch_upstream  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--uvicorn", action="store_true", help="start B, switch, stop A")
    args = parser.parse_args()

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

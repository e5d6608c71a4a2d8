"""A fake BentoML ``/metrics`` for a real Prometheus to scrape: one thread HTTP server on a
loopback port serving many targets, each at ``/NAME/metrics`` (a file_sd entry points
Prometheus there with ``__metrics_path__``), with the request counter and the duration
histogram BentoML 1.4 writes (tests/core/test_scrape.py has a captured one). Each target's
counters grow at rates a test changes while Prometheus scrapes: an error burst, clean
traffic, BentoML's own probes answering 503."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.ports import worker_ports

# BentoML's buckets (seconds).
LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")
LES += ("30.0", "60.0", "120.0", "180.0", "+Inf")


@dataclass
class Target:
    """One BentoML instance: requests per second to its API answered 200 and 500, probes of
    ``/readyz`` answered 503 (BentoML's own traffic, no error of the service), and the one
    latency every request takes. Counters are integrated over time as rates change."""

    name: str
    ok_per_second: float = 10.0
    errors_per_second: float = 0.0
    probe_failures_per_second: float = 0.0
    latency_seconds: float = 0.03
    counts: dict[tuple[str, str], float] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)

    def advance(self, now: float) -> None:
        elapsed, self.at = now - self.at, now
        for key, rate in (
            (("/predict", "200"), self.ok_per_second),
            (("/predict", "500"), self.errors_per_second),
            (("/readyz", "503"), self.probe_failures_per_second),
        ):
            self.counts[key] = self.counts.get(key, 0.0) + rate * elapsed

    def exposition(self) -> str:
        tail = f'service_name="{self.name}",service_version="v1"'
        requests = ["# TYPE bentoml_service_request_total counter"]
        histogram = ["# TYPE bentoml_service_request_duration_seconds histogram"]
        name = "bentoml_service_request_duration_seconds"
        for (endpoint, code), n in sorted(self.counts.items()):
            labels = f'endpoint="{endpoint}",http_response_code="{code}",{tail}'
            requests.append(f"bentoml_service_request_total{{{labels}}} {n:.3f}")
            for le in LES:
                inside = le == "+Inf" or self.latency_seconds <= float(le)
                count = n if inside else 0.0
                histogram.append(f'{name}_bucket{{{labels},le="{le}"}} {count:.3f}')
            histogram.append(f"{name}_sum{{{labels}}} {n * self.latency_seconds:.3f}")
            histogram.append(f"{name}_count{{{labels}}} {n:.3f}")
        return "\n".join(histogram + requests) + "\n"


class FakeBentoML:
    """The targets, by name, and the server's address (``127.0.0.1:PORT``)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.targets: dict[str, Target] = {}
        self.lock = threading.Lock()

    def add(self, name: str, **rates: Any) -> Target:
        with self.lock:
            target = self.targets[name] = Target(name, **rates)
        return target

    def set(self, name: str, **rates: Any) -> None:
        """Change a target's rates from now on (what it served so far stays counted)."""
        with self.lock:
            target = self.targets[name]
            target.advance(time.monotonic())
            for key, value in rates.items():
                setattr(target, key, value)

    def text(self, name: str) -> str | None:
        with self.lock:
            target = self.targets.get(name)
            if target is None:
                return None
            target.advance(time.monotonic())
            return target.exposition()

    def file_sd(self, labels: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
        """A file_sd list: each target named in ``labels`` with those labels, scraped at its
        own path."""
        return [
            {
                "targets": [self.address],
                "labels": {"__metrics_path__": f"/{name}/metrics", **dict(given)},
            }
            for name, given in labels.items()
        ]


@contextmanager
def fake_bentoml() -> Iterator[FakeBentoML]:
    """The fake exporter on a free loopback port; stopped on exit."""
    (port,) = worker_ports(1)
    fake = FakeBentoML(f"127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.strip("/").removesuffix("/metrics")
            text = fake.text(name) if self.path.endswith("/metrics") else None
            if text is None:
                self.send_error(404)
                return
            body = text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            # the scraper may have gone away (Prometheus stopping): nothing to serve then
            with contextlib.suppress(OSError):
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="fake-bentoml", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

"""A fake Prometheus for unit tests: ``/api/v1/query`` over HTTP on 127.0.0.1, answering
range selectors (``{matchers}[Ns]`` at ``time``) from the scrapes a test records, as
Prometheus would store them (target labels over the scraped ones, which are renamed
``exported_*`` when they clash; ``up`` per scrape). It can answer slowly (until released),
with an error, or not at all (stopped, then started again on the same port).

The real Prometheus is tests/prom_stack.py's; this one lets a test say exactly which
samples exist at which times."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client.parser import text_string_to_metric_families

_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')
_QUERY = re.compile(r"^\{(.*)\}\[(\d+)s\]$", re.S)


@dataclass
class Stored:
    """One scrape of one target: its time, its target labels, up, its samples."""

    t: float
    target: dict[str, str]
    up: float
    samples: list[tuple[str, dict[str, str], float]]


@dataclass
class FakePrometheus:
    scrapes: list[Stored] = field(default_factory=list)
    queries: list[dict[str, list[str]]] = field(default_factory=list)  # as received
    error: tuple[int, dict[str, Any] | str] | None = None  # (status, body) to answer
    hold: threading.Event | None = None  # set: answer; unset: wait (slow)
    server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- what it holds

    def scrape(
        self, t: float, text: str, *, instance: str = "127.0.0.1:9999", job: str = "relman",
        up: float = 1.0, **labels: str,
    ) -> None:  # fmt: skip
        """Store a scrape at ``t`` of a target answering ``text`` (none when ``up`` is 0),
        with ``labels`` (and instance, job) as its target labels."""
        target = {**labels, "instance": instance, "job": job}
        samples: list[tuple[str, dict[str, str], float]] = []
        if up:
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    scraped = dict(sample.labels)
                    for name in list(scraped):
                        if name in target:
                            scraped[f"exported_{name}"] = scraped.pop(name)
                    samples.append((sample.name, {**scraped, **target}, float(sample.value)))
        self.scrapes.append(Stored(t, target, up, samples))

    def answer(self, query: str, at: float) -> list[dict[str, Any]]:
        """The matrix of a range selector at ``at``."""
        match = _QUERY.match(query.strip())
        if match is None:
            raise ValueError(f"the fake answers range selectors only: {query}")
        matchers = [
            (m.group(1), m.group(2), json.loads(m.group(3))) for m in _MATCHER.finditer(match[1])
        ]
        low = at - int(match[2])
        series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
        for stored in self.scrapes:
            if not low < stored.t <= at:
                continue
            samples = [*stored.samples, ("up", dict(stored.target), stored.up)]
            for name, labels, value in samples:
                full = {"__name__": name, **labels}
                if all(_matches(full.get(k, ""), op, v) for k, op, v in matchers):
                    key = tuple(sorted(full.items()))
                    series.setdefault(key, []).append([stored.t, _text(value)])
        return [{"metric": dict(key), "values": values} for key, values in series.items()]

    # ---------------------------------------------------------------- serving

    def start(self) -> FakePrometheus:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.fake = self  # type: ignore[attr-defined]
        server.daemon_threads = True
        self.server, self.port = server, server.server_port
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _matches(value: str, op: str, wanted: str) -> bool:
    if op == "=":
        return value == wanted
    if op == "!=":
        return value != wanted
    found = re.fullmatch(wanted, value) is not None
    return found if op == "=~" else not found


def _text(value: float) -> str:
    return "NaN" if value != value else repr(value)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        fake: FakePrometheus = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        params = parse_qs(parts.query)
        fake.queries.append(params)
        if fake.hold is not None:
            fake.hold.wait(30)
        if fake.error is not None:
            status, body = fake.error
            self._send(status, body if isinstance(body, str) else json.dumps(body))
            return
        if parts.path != "/api/v1/query":
            self._send(404, "404 page not found")
            return
        try:
            result = fake.answer(params["query"][0], float(params["time"][0]))
        except (KeyError, ValueError) as exc:
            body = {"status": "error", "errorType": "bad_data", "error": str(exc)}
            self._send(400, json.dumps(body))
            return
        data = {"resultType": "matrix", "result": result}
        self._send(200, json.dumps({"status": "success", "data": data}))

    def _send(self, status: int, body: str) -> None:
        raw = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: object) -> None:
        pass

"""Real Prometheus and Alertmanager for tests and benchmarks: Debian's ``prometheus`` and
``prometheus-alertmanager`` started on free loopback ports with a temporary storage path and
1 s intervals, ready when their ``/-/ready`` answers 200, stopped by pid.

``./dev test`` installs the two packages when they are missing and it runs as root (as on
CI); elsewhere the tests that need them are skipped with one line naming the packages
(``needs_prometheus``), and every other test runs."""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.ports import worker_ports

PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
PROMTOOL = "promtool"
MISSING = (
    "needs Debian's prometheus and prometheus-alertmanager "
    "(apt-get install prometheus prometheus-alertmanager; ./dev test installs them as root)"
)
needs_prometheus = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in (PROMETHEUS, ALERTMANAGER, PROMTOOL)), reason=MISSING
)
READY_WITHIN = 60.0  # seconds; under one on an idle machine


@dataclass
class Server:
    """A started Prometheus or Alertmanager: its base URL, process and log."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str, **params: str) -> Any:
        """GET ``path`` with ``params`` (URL-encoded: a ``[5s]`` is no glob here): its JSON."""
        query = path + ("?" + urlencode(params) if params else "")
        return json.loads(self._call("GET", query, None))

    def get_text(self, path: str) -> str:
        """GET ``path``: its text (e.g. ``/metrics``)."""
        return self._call("GET", path, None).decode()

    def reload(self) -> None:
        """Prometheus reads its configuration and rule files again (``/-/reload``)."""
        self._call("POST", "/-/reload", None)

    def post(self, path: str, document: Any) -> Any:
        """POST ``document`` as JSON to ``path`` (e.g. a silence to Alertmanager): its JSON."""
        return json.loads(self._call("POST", path, json.dumps(document)))

    def _call(self, method: str, path: str, body: str | None) -> bytes:
        host, port = self.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body, headers)
            response = conn.getresponse()
            answer = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise AssertionError(
                f"{self.name} {method} {path}: HTTP {response.status}: {answer[:300]!r}"
            )
        return answer

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result (Prometheus only)."""
        answer = self.get("/api/v1/query", query=promql)
        return list(answer["data"]["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _ready(server: Server) -> None:
    deadline = time.monotonic() + READY_WITHIN
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"{server.name} exited on start: {server.log.read_text()[-2000:]}")
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/-/ready")
            if conn.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"{server.name} not ready after {READY_WITHIN:g} s")
        time.sleep(0.05)


@contextmanager
def _serving(name: str, command: Sequence[str], folder: Path, port: int) -> Iterator[Server]:
    """``command`` started, logging to ``folder/NAME.log``, until it answers ``/-/ready`` on
    ``port``; stopped by pid when the block ends."""
    log = folder / f"{name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            list(command),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    try:
        _ready(server)
        yield server
    finally:
        server.stop()


def prometheus_config(
    *,
    file_sd: Sequence[Path] = (),
    static_targets: Sequence[str] = (),
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    interval: str = "1s",
) -> dict[str, Any]:
    """A prometheus.yml (as data: JSON is YAML) scraping ``file_sd`` lists and static
    targets every ``interval``, evaluating ``rule_files`` as often, alerting
    ``alertmanager`` (a base URL)."""
    scrape: list[dict[str, Any]] = []
    if file_sd:
        scrape.append(
            {
                "job_name": "relman",
                "file_sd_configs": [
                    {"files": [str(path) for path in file_sd], "refresh_interval": interval}
                ],
            }
        )
    if static_targets:
        scrape.append({"job_name": "static", "static_configs": [{"targets": list(static_targets)}]})
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": scrape,
        "rule_files": [str(path) for path in rule_files],
    }
    if alertmanager:
        config["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}
            ]
        }
    return config


@contextmanager
def running_prometheus(folder: Path, config: dict[str, Any]) -> Iterator[Server]:
    """Prometheus with ``config`` (prometheus_config) on a free port; stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    (path := folder / "prometheus.yml").write_text(json.dumps(config, indent=1))
    (port,) = worker_ports(1)
    with _serving(
        "prometheus",
        [
            PROMETHEUS,
            f"--config.file={path}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        folder,
        port,
    ) as server:
        yield server


@contextmanager
def running_alertmanager(
    folder: Path, receiver_url: str | None = None, port: int | None = None
) -> Iterator[Server]:
    """Alertmanager on a free port (or ``port``), off the network (no cluster), grouping at
    once; routed to ``receiver_url`` (a webhook) when given, else to no receiver. Stopped
    on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    receiver: dict[str, Any] = {"name": "default"}
    if receiver_url:
        receiver["webhook_configs"] = [{"url": receiver_url, "send_resolved": True}]
    config = {
        "route": {
            "receiver": "default",
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [receiver],
    }
    (path := folder / "alertmanager.yml").write_text(json.dumps(config, indent=1))
    if port is None:
        (port,) = worker_ports(1)
    with _serving(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={path}",
            f"--storage.path={folder / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        folder,
        port,
    ) as server:
        yield server


def promtool_check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    """``promtool check rules PATH``: exit 0 when Prometheus accepts the file."""
    return subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )

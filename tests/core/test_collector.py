"""The collector (core/monitoring/collector.py), one pass at a time on a fake clock, against a
BentoML
1.4-shaped /metrics served on 127.0.0.1, the instance's monitor log, a real ledger and a real
metric store. What is faked is only where the environment serves (core.targets.target_for).

Here: a stopped environment or a collector gap is no outage, a missing drift reference stops
no other rule, the collector claim is taken over only from a dead holder, a garbage /metrics
line costs only itself. The harness is shared by test_collector_store.py (a locked or full
store) and test_collector_webhook.py.
"""

from __future__ import annotations

import json
import pkgutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from core.config.model import Project, load_project
from core.errors import BlockedError
from core.host.processes import this_host
from core.monitoring.collector import Collector
from core.monitoring.collector_process import metrics_path
from core.targets import Instance
from store.ledger.ledger import Ledger
from store.ledger.records import ArtifactRecord
from store.metrics.store import MetricStore

T0 = 1_790_000_000 - 1_790_000_000 % 3600  # a whole hour
RELEASE = "a1b2c3d4e5f6"
LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")
LES += ("30.0", "60.0", "120.0", "180.0", "+Inf")
TOML = """\
[project]
name = "shop"

[services.iris]
bento = "service:Iris"
model = ["iris-model"]

[environments.dev]
port = 3100

[monitoring]
scrape_interval = 0.05
latency_for_minutes = 1
resolve_for_minutes = 1
cooldown_minutes = 0
drift_min_records = 5
"""
MONITOR_SCHEMA = {
    "columns": [
        {"name": "x", "role": "feature", "type": "numerical"},
        {"name": "prediction", "role": "prediction", "type": "categorical"},
    ]
}


# ----------------------------------------------------------------------------- the harness


class FakeBento:
    """Cumulative counters of one instance, written as BentoML 1.4 writes its /metrics."""

    def __init__(self, release: str = RELEASE) -> None:
        self.release = release
        self.requests = 0.0
        self.buckets = dict.fromkeys(LES, 0.0)
        self.extra = ""  # appended to the text: garbage, other libraries' families
        self.cut = 0  # characters cut off the end of the answer

    def serve(self, count: int, seconds: float) -> None:
        """``count`` requests to /predict that took ``seconds`` each."""
        self.requests += count
        for le in LES:
            if le == "+Inf" or float(le) >= seconds:
                self.buckets[le] += count

    def text(self) -> str:
        tail = f'service_name="iris",service_version="{self.release}"'
        api = f'endpoint="/predict",http_response_code="200",{tail}'
        name = "bentoml_service_request_duration_seconds"
        lines = [f"# TYPE {name} histogram"]
        lines += [f'{name}_bucket{{{api},le="{le}"}} {n}' for le, n in self.buckets.items()]
        lines += [f"{name}_count{{{api}}} {self.requests}", f"{name}_sum{{{api}}} 1.0"]
        lines += [
            "# TYPE bentoml_service_request_in_progress gauge",
            f'bentoml_service_request_in_progress{{endpoint="/predict",{tail}}} 0.0',
            "# TYPE bentoml_service_request_total counter",
            f"bentoml_service_request_total{{{api}}} {self.requests}",
        ]
        text = "\n".join(lines) + "\n" + self.extra
        return text[: len(text) - self.cut]


class _MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.bento.text().encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_http(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> ThreadingHTTPServer:
    """An HTTP server on a free port of 127.0.0.1, in a thread (stop it with ``stop_http``)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for name, value in attributes.items():
        setattr(httpd, name, value)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    return httpd


def stop_http(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


@dataclass
class FakeTarget:
    """Where the environment serves: the fake Bento's address, or nothing when stopped."""

    address: str
    folder: Path
    release: str = RELEASE
    up: bool = True

    def serving(self) -> Instance | None:
        if not self.up:
            return None
        return Instance(self.release, self.address, None, str(self.folder / "serve.log"))


@dataclass
class World:
    """A project with iris live in dev, its fake Bento and target, and a fake clock."""

    project: Project
    bento: FakeBento
    target: FakeTarget
    now: list[int] = field(default_factory=lambda: [T0])
    lines: list[str] = field(default_factory=list)

    def collector(self, **options: Any) -> Collector:
        return Collector(self.project, log=self.lines.append, clock=lambda: self.now[0], **options)

    def ledger_state(self, state: str) -> None:
        with Ledger.open(self.project.ledger_path, actor="tester") as ledger:
            ledger.set_environment_state("iris", "dev", state, release_id=RELEASE)

    @property
    def log_file(self) -> Path:
        return self.target.folder / "monitoring" / "iris" / "data" / "data.1.log"

    def log_rows(self, first: int, count: int, *, at: int | None = None) -> None:
        """Rows ``first`` .. ``first + count - 1`` in the monitor log, as BentoML writes them."""
        moment = datetime.fromtimestamp(self.now[0] if at is None else at, UTC).isoformat()
        with self.log_file.open("a") as handle:
            for i in range(first, first + count):
                row = {"x": 1.0 + i % 3, "prediction": "a", "timestamp": moment}
                handle.write(json.dumps({**row, "request_id": str(i), "trace_id": "0"}) + "\n")

    def store(self) -> MetricStore:
        return MetricStore.open(metrics_path(self.project), readonly=True)

    def minutes(
        self, collector: Collector, first: int, last: int, *, seconds: float = 0.01
    ) -> list[Any]:
        """Passes at :00, :20 and :40 of minutes ``first`` .. ``last`` (from T0), 6 requests
        of ``seconds`` before each; the reports."""
        reports = []
        for minute in range(first, last + 1):
            for second in (0, 20, 40):
                self.now[0] = T0 + minute * 60 + second
                self.bento.serve(6, seconds)
                reports.append(collector.run_pass())
        return reports


@contextmanager
def make_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str = TOML
) -> Iterator[World]:
    """The project (``toml`` its relman.toml), its ledger with iris live in dev, the fake
    Bento serving /metrics and its instance folder with an empty monitor log."""
    root = tmp_path / "shop"
    root.mkdir()
    (root / "relman.toml").write_text(toml)
    monkeypatch.chdir(root)  # error lines name files from the project root
    project = load_project(root)
    with Ledger.open(project.ledger_path, actor="tester") as ledger:
        ledger.record_release(
            RELEASE,
            service="iris",
            git_commit="0" * 40,
            metrics={"metrics.json": {"accuracy": 0.95}},
            artifacts=[
                ArtifactRecord(
                    "iris-data", "dataset", "data/iris.csv", md5="d41d8cd98f00b204e9800998ecf8427e"
                )
            ],
        )
        ledger.set_environment_state("iris", "dev", "live", release_id=RELEASE)
    bento = FakeBento()
    httpd = serve_http(_MetricsHandler, bento=bento)
    instance = project.state_dir / "envs" / "iris" / "dev" / "instances" / f"{RELEASE}-1"
    (instance / "monitoring" / "iris" / "data").mkdir(parents=True)
    (instance / "monitoring" / "iris" / "schema").mkdir()
    (instance / "monitoring" / "iris" / "schema" / "schema.1.log").write_text(
        json.dumps(MONITOR_SCHEMA) + "\n"
    )
    target = FakeTarget(f"127.0.0.1:{httpd.server_port}", instance)
    monkeypatch.setattr("core.targets.target_for", lambda project, service, env: target)
    try:
        yield World(project, bento, target)
    finally:
        stop_http(httpd)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with make_world(tmp_path, monkeypatch) as made:
        yield made


def alerts(world: World, rule: str | None = None) -> list[Any]:
    with world.store() as store:
        found = store.alerts(service="iris", env="dev")
    return [a for a in found if rule is None or a.rule == rule]


def scrape_times(world: World) -> list[int]:
    with world.store() as store:
        return [s.t for s in store.scrapes("iris", "dev", 0, T0 + 86400)]


def record_ids(world: World) -> list[str | None]:
    with world.store() as store:
        return [r.request_id for r in store.records("iris", "dev", 0, T0 + 86400)]


def saved_offset(world: World) -> int:
    """How far the monitor log is stored, as a restarted collector would resume."""
    with world.store() as store:
        readers = store.reader_offsets().get(("iris", "dev"), {})
    return sum(entry["offset"] for state in readers.values() for entry in state.values())


class Killed(BaseException):
    """The collector process killed (SIGKILL) at this point: no handler of it runs (a
    ``finally`` does, but the state it saves is what a crash earlier would have left)."""


def kill_after(
    patch: pytest.MonkeyPatch,
    target: str,
    *,
    call: bool = True,
    when: Callable[..., bool] = lambda *args: True,
) -> None:
    """Kill the collector when ``target`` (a dotted name) returns, or instead of calling it
    (``call=False``); only the calls whose arguments ``when`` accepts."""
    original = pkgutil.resolve_name(target)

    def killed(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs) if call else None
        if when(*args, **kwargs):
            raise Killed(target)
        return result

    patch.setattr(target, killed)


def hold_write_lock(world: World) -> sqlite3.Connection:
    holder = sqlite3.connect(metrics_path(world.project), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
    return holder


# --------------------------------------------------------------- no false "service down"


def test_no_down_alert_after_relman_down_and_a_new_promotion(world: World) -> None:
    collector = world.collector()
    world.minutes(collector, 0, 2)
    # `relman down --env dev`: the proxy stops first, the ledger says "down" just after;
    # a pass in between meets live-but-not-serving.
    world.target.up = False
    world.now[0] = T0 + 3 * 60 + 5
    collector.run_pass()
    world.ledger_state("down")
    for second in range(20, 4 * 60, 20):  # minutes 3-6 stopped, the collector still runs
        world.now[0] = T0 + 3 * 60 + second
        collector.run_pass()
    # promoted again late in minute 6: the first scrape comes in minute 7
    world.ledger_state("live")
    world.target.up = True
    world.minutes(collector, 7, 10)
    assert alerts(world) == []
    with world.store() as store:
        minutes = [p.t for p in store.series("iris", "dev", T0, T0 + 11 * 60)]
    assert minutes == [T0 + 60 * m for m in (0, 1, 2, 7, 8, 9)]  # rolled up before the stop too


def test_no_down_alert_after_a_gap_in_which_no_collector_ran(world: World) -> None:
    world.minutes(world.collector(), 0, 2)
    # The collector stopped for 40 minutes (its state saved); the service kept serving.
    world.bento.serve(600, 0.01)
    later = world.collector()  # a new process resumes from collector.json and the store
    reports = world.minutes(later, 43, 45)
    assert alerts(world) == []
    assert [t for r in reports for t in r.transitions] == []
    with world.store() as store:
        minutes = [p.t for p in store.series("iris", "dev", T0, T0 + 46 * 60)]
    assert minutes == [T0 + 60 * m for m in (0, 1, 2, 43, 44)]


def test_a_service_that_stops_answering_is_down(world: World) -> None:
    # The other side of the two tests above: an outage nobody asked for still alerts.
    collector = world.collector()
    world.minutes(collector, 0, 1)
    world.target.up = False
    world.minutes(collector, 2, 3)
    [alert] = alerts(world, "down")
    assert (alert.state, alert.since) == ("firing", T0 + 120)


# ------------------------------------------------------- drift that cannot be measured


def test_a_missing_drift_reference_is_said_once_and_the_other_rules_go_on(
    world: World,
) -> None:
    collector = world.collector()
    world.log_rows(1, 10)
    world.minutes(collector, 0, 0)
    world.minutes(collector, 1, 2, seconds=2.0)
    world.now[0] = T0 + 3 * 60
    collector.run_pass()
    said = [line for line in world.lines if "drift not measured" in line]
    assert said == [
        "iris/dev: drift not measured: data/iris.csv (md5 d41d8cd98f00b204e9800998ecf8427e) "
        f"is not in the local DVC cache {world.project.root / '.dvc' / 'cache'}; run 'dvc "
        "pull' at the release's commit to fetch its training data"
    ]
    [alert] = alerts(world, "latency_p99")
    assert alert.state == "firing"


def test_a_drift_computation_that_fails_stops_no_other_rule(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("could not convert string to float: 'n/a'")

    monkeypatch.setattr("core.drift.reference.reference_frame", lambda *a: {"x": [1.0, 2.0, 3.0]})
    monkeypatch.setattr("core.drift.stats.drift_report", broken)
    collector = world.collector()
    world.log_rows(1, 10)
    world.minutes(collector, 0, 0)
    world.minutes(collector, 1, 2, seconds=2.0)
    said = [line for line in world.lines if "drift not measured" in line]
    assert said == [
        "iris/dev: drift not measured: ValueError: could not convert string to float: 'n/a'"
    ]
    [alert] = alerts(world, "latency_p99")
    assert alert.state == "firing"


# ------------------------------------------------------------------ the collector claim


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_collector_run_in_process_puts_back_the_signal_handlers_it_found(
    world: World,
) -> None:
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    assert world.collector().run(once=True) == 0
    assert {signum: signal.getsignal(signum) for signum in before} == before


def test_a_dead_holders_claim_is_taken_over(world: World) -> None:
    gone = _dead_pid()
    with MetricStore.open(metrics_path(world.project)) as store:
        assert store.claim_collector(gone, this_host(), int(world.now[0]))
    assert world.collector().run(once=True) == 0
    assert world.lines[0] == f"took over from collector pid {gone}, gone"
    assert world.lines[-1] == "scraped iris/dev; 0 alert change(s)"
    with world.store() as store:
        assert store.collector() is None  # released on the way out


def test_a_live_holder_is_refused_with_one_line_and_exit_1(world: World) -> None:
    # A live process, however long the test takes on a loaded machine (killed at the end).
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with MetricStore.open(metrics_path(world.project)) as store:  # it beats now
            assert store.claim_collector(holder.pid, this_host(), int(time.time()))
        world.now[0] = int(time.time())
        with pytest.raises(BlockedError) as caught:
            world.collector().run(once=True)
        message = (
            f"a collector already runs for this project (pid {holder.pid} on {this_host()}); "
            "`relman down` stops it"
        )
        assert str(caught.value) == message and caught.value.exit_code == 1
        assert scrape_times(world) == []  # nothing collected
        # what `relman monitor` prints and exits with
        done = subprocess.run(
            [sys.executable, "-m", "tui", "--project", str(world.project.root), "--batch",
             "monitor", "--once"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr.strip().splitlines() == [f"relman: {message}"]
        with world.store() as store:
            claim = store.collector()
        assert claim is not None and claim.pid == holder.pid  # the holder keeps it
    finally:
        holder.kill()
        holder.wait()


# -------------------------------------------------------------- bad /metrics answers


def test_a_garbage_metrics_line_is_skipped_stored_and_said_once(world: World) -> None:
    world.bento.extra = "<html>oops</html>\n"
    collector = world.collector()
    world.minutes(collector, 0, 1)
    assert len(scrape_times(world)) == 6  # every scrape stored
    warnings = [line for line in world.lines if "malformed" in line]
    assert warnings == [
        f"iris/dev: /metrics of {world.target.address}: skipped 1 malformed line outside the "
        f"metrics relman reads (line {world.bento.text().count(chr(10))}: <html>oops</html>)"
    ]


def test_a_truncated_metrics_answer_is_not_stored(world: World) -> None:
    collector = world.collector()
    world.bento.serve(6, 0.01)
    collector.run_pass()
    world.bento.cut = 30  # cut inside bentoml_service_request_total
    world.now[0] += 20
    world.bento.serve(6, 0.01)
    report = collector.run_pass()
    assert scrape_times(world) == [T0]
    [line] = report.problems
    assert line.startswith(
        f"iris/dev: incomplete scrape of {world.target.address} not stored (the next covers "
        "it): answer cut short inside bentoml_service_request_total: "
    )
    world.bento.cut = 0
    world.now[0] += 20
    collector.run_pass()
    assert scrape_times(world) == [T0, T0 + 40]  # the counters of the skipped one included

"""core/traffic/load.py and core/traffic/faults.py: request building, pacing, the fault file; and
the demo
service's hook that applies it (core/scaffold/demo_template/service.py's FaultInjection)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from core.config.model import Project, load_project
from core.errors import BlockedError, ReadOnlyError, UsageError
from core.scaffold.demo import TEMPLATE_DIR
from core.traffic import bodies
from core.traffic import load as traffic
from tests.ports import worker_ports
from tests.waiting import wait_for

TEMPLATE = TEMPLATE_DIR

CSV = "sepal_length,sepal_width,petal_length,petal_width,species\n" + "".join(
    f"{5 + i % 3 * 0.5},{3 + i % 2 * 0.2},{1.4 + i % 3 * 2},{0.2 + i % 3 * 0.9},"
    f"{('setosa', 'versicolor', 'virginica')[i % 3]}\n"
    for i in range(30)
)


def make_project(root: Path, *, data: str = '["iris-data"]', port: int = 3999) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    (root / "relman.toml").write_text(
        f"""[project]
name = "t"

[services.iris]
bento = "service:IrisClassifier"
model = ["iris-model"]
data = {data}
sample_request = "sample_request.json"
endpoint = "predict"

[environments.dev]
port = {port}
"""
    )
    (root / "sample_request.json").write_text('{"features": [[5.1, 3.5, 1.4, 0.2]]}')
    (root / "dvc.yaml").write_text(
        "artifacts:\n  iris-data:\n    path: data/iris.csv\n    type: dataset\n"
    )
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "iris.csv").write_text(CSV)
    return load_project(root)


# ------------------------------------------------------------------------------ requests

ROW = {"a": 9, "b": "z"}


def test_sample_shape_takes_one_list_of_equal_numeric_rows() -> None:
    shape, rows = bodies.sample_shape({"features": [[1, 2.5], [3, 4]]}) or (None, None)
    assert shape == bodies.BodyShape("lists", "features", ["x0", "x1"])
    assert rows == [{"x0": 1, "x1": 2.5}, {"x0": 3, "x1": 4}]
    for bad in (
        [[1, 2]],
        {"a": [[1]], "b": [[2]]},
        {"features": []},
        {"features": [[1, 2], [3]]},
        {"features": [["x", 1]]},
        {"features": [[True, 1]]},
        {"text": "hello"},  # no number to vary
        {"rows": [{"a": 1}, {"b": 2}]},  # rows of other fields
        {"rows": [{"a": [1]}]},
        {"customer": {"address": {"city": "x"}}},  # nested models: not a row
        {"df": {"a": [1, 2], "b": [3]}},
    ):
        assert bodies.sample_shape(bad) is None, bad


@pytest.mark.parametrize(
    ("sample", "kind", "sent"),
    [
        # relman init --scaffold-service, a DataFrame (records), a list of pydantic models
        ({"rows": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}, "records", {"rows": [ROW]}),
        ({"customer": {"a": 1, "b": "x"}}, "object", {"customer": ROW}),
        ({"df": {"a": [1, 2], "b": ["x", "y"]}}, "columns", {"df": {"a": [9], "b": ["z"]}}),
        ({"a": 1, "b": "x"}, "flat", ROW),  # a pydantic model that is the whole body
    ],
)
def test_sample_shapes_of_rows_with_named_fields(
    sample: dict[str, Any], kind: str, sent: dict[str, Any]
) -> None:
    shape, rows = bodies.sample_shape(sample) or (None, [])
    assert shape is not None and shape.kind == kind and shape.names == ["a", "b"]
    assert rows[0] == {"a": 1, "b": "x"}
    assert shape.render(ROW) == sent


def test_rows_come_from_the_data_artifact_in_the_sample_requests_shape(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    source = bodies.request_source(project, "iris")
    assert source.shape.key == "features"
    assert source.columns == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert len(source.rows) == 30 and source.origin == "data/iris.csv (30 rows)"
    body = json.loads(source.body(random.Random(1)))
    assert list(body) == ["features"] and len(body["features"]) == 1
    assert body["features"][0] in [list(row.values()) for row in source.rows]


def test_the_scaffolded_rows_shape_gets_typed_rows_of_the_data(tmp_path: Path) -> None:
    """{"rows": [{...}]} (relman init --scaffold-service): each request one row of the CSV,
    by column name, each cell typed like the sample's value; a field the CSV lacks keeps
    the sample's value."""
    project = make_project(tmp_path / "p")
    (project.root / "sample_request.json").write_text(
        '{"rows": [{"petal_width": 0.2, "species": "setosa", "sepal_length": 5, "n": 3}]}'
    )
    (project.root / "data" / "iris.csv").write_text(
        "sepal_length,Petal Width,species\n5,0.2,setosa\n6,1.1,virginica\n5.5,1.0,versicolor\n"
    )
    source = bodies.request_source(project, "iris")
    assert source.shape.kind == "records"
    assert source.columns == ["Petal Width", "species", "sepal_length"]
    # 5.5 is no integer like the sample's sepal_length 5: that row is left out
    assert source.rows == [
        {"petal_width": 0.2, "species": "setosa", "sepal_length": 5, "n": 3},
        {"petal_width": 1.1, "species": "virginica", "sepal_length": 6, "n": 3},
    ]
    assert source.origin == "data/iris.csv (2 rows)"
    body = json.loads(source.body(random.Random(3)))
    assert body == {"rows": [source.rows[0]]} or body == {"rows": [source.rows[1]]}
    drifted = json.loads(source.body(random.Random(3), drift=True))["rows"][0]
    assert source.drift_column() == "sepal_length"  # pstdev 0.5 (petal_width: 0.45)
    assert isinstance(drifted["sepal_length"], int) and drifted["species"] in (
        "setosa",
        "virginica",
    )


def test_a_csv_without_the_samples_fields_is_not_used(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project.root / "sample_request.json").write_text('{"customer": {"tenure": 3}}')
    source = bodies.request_source(project, "iris")
    assert source.rows == [{"tenure": 3}] and source.columns is None
    assert json.loads(source.body(random.Random(0))) == {"customer": {"tenure": 3}}


def test_data_given_as_a_path_or_a_folder(tmp_path: Path) -> None:
    assert bodies.request_source(make_project(tmp_path / "a", data='["data/iris.csv"]'), "iris")
    source = bodies.request_source(make_project(tmp_path / "b", data='["data"]'), "iris")
    assert source.columns is not None and len(source.rows) == 30


def test_without_the_data_at_hand_the_sample_rows_are_sent(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project.root / "data" / "iris.csv").unlink()  # not pulled from the DVC remote
    source = bodies.request_source(project, "iris")
    assert source.rows == [{"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}] and source.columns is None
    assert source.origin == "sample_request.json (1 rows)"


def test_a_request_of_another_shape_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    (project.root / "sample_request.json").write_text('{"text": "hello"}')
    with pytest.raises(UsageError, match="needs a sample request for iris"):
        bodies.request_source(project, "iris")


def test_drift_scales_the_widest_feature(tmp_path: Path) -> None:
    source = bodies.request_source(make_project(tmp_path / "p"), "iris")
    assert source.drift_column() == "x2"  # petal_length
    rng = random.Random(7)
    plain = [json.loads(source.body(rng))["features"][0] for _ in range(400)]
    drifted = [json.loads(source.body(rng, drift=True))["features"][0] for _ in range(400)]
    ratio = statistics.mean(r[2] for r in drifted) / statistics.mean(r[2] for r in plain)
    assert 1.45 < ratio < 1.75
    for column in (0, 1, 3):  # the others keep their distribution
        assert statistics.mean(r[column] for r in drifted) == pytest.approx(
            statistics.mean(r[column] for r in plain), rel=0.1
        )


# ------------------------------------------------------------------------------- pacing


def test_pacing_math() -> None:
    assert traffic.planned_count(20, 3) == 60
    assert traffic.planned_count(5, 0) is None  # until Ctrl-C
    assert traffic.planned_count(0.5, 1) == 1
    assert traffic.planned_count(3, 1.1) == 4
    assert [traffic.send_time(10.0, 4, i) for i in range(3)] == [10.0, 10.25, 10.5]
    assert traffic.workers_for(0.2) == 4 and traffic.workers_for(20) == 40
    assert traffic.workers_for(10_000) == traffic.MAX_WORKERS


def test_percentile_interpolates() -> None:
    assert traffic.percentile([], 0.5) is None
    assert traffic.percentile([7.0], 0.95) == 7.0
    assert traffic.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert traffic.percentile([float(i) for i in range(101)], 0.95) == pytest.approx(95.0)


# ------------------------------------------------------------------------------- faults


def test_fault_spec_is_a_lease() -> None:
    spec = traffic.fault_spec("latency-spike", 1000.0)
    assert spec["latency_ms"] == 250.0 and spec["kind"] == "latency-spike"
    assert spec["since"] == 1000.0 and spec["until"] == 1000.0 + traffic.LEASE_SECONDS
    assert spec["pid"] == os.getpid()
    assert traffic.fault_spec("latency-leak", 0)["latency_leak_ms_per_min"] > 0
    assert 0 < traffic.fault_spec("error-burst", 0)["error_rate"] < 1


def test_fault_file_written_and_removed_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    spec = traffic.fault_spec("error-burst", time.time())
    traffic.write_fault(path, spec)
    assert json.loads(path.read_text()) == spec
    # another live relman traffic's fault: left alone, and a second one is refused
    other = {**spec, "pid": os.getppid()}
    path.write_text(json.dumps(other))
    with pytest.raises(BlockedError, match=f"another relman traffic \\(pid {os.getppid()}\\)"):
        traffic.write_fault(path, spec)
    assert not traffic.remove_fault(path, os.getpid()) and path.exists()
    # expired, or its process gone: taken over
    path.write_text(json.dumps({**other, "until": time.time() - 1}))
    traffic.write_fault(path, spec)
    assert traffic.remove_fault(path, os.getpid()) and not path.exists()
    assert not traffic.remove_fault(path, os.getpid())  # already gone


def test_nothing_deployed_is_blocked(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    with pytest.raises(BlockedError) as caught:
        traffic.run_traffic(project, "iris", "dev", duration=1, log=print)
    assert str(caught.value) == "iris is not deployed in dev; relman release --to dev first"
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "--rate 0"),
        ({"duration": -1}, "--duration -1"),
        ({"inject": "meteor"}, "--inject meteor: not a fault"),
        ({"target": "blue"}, "--target blue: give stable or canary"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    project = make_project(tmp_path / "p")
    with pytest.raises(UsageError, match=message):
        traffic.run_traffic(project, "iris", "dev", log=print, **kwargs)


def test_read_only_refuses(tmp_path: Path) -> None:
    with pytest.raises(ReadOnlyError):
        traffic.run_traffic(make_project(tmp_path / "p"), "iris", "dev", read_only=True, log=print)


# --------------------------------------------------------------- against a local server


class _Server:
    """A stand-in for the environment's proxy: answers like the demo service, and 500 while
    the fault file holds an error_rate (as the demo's hook would)."""

    def __init__(self, port: int, fault: Path) -> None:
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self.faulted = 0
        self.leases: set[float] = set()
        self.stop_after: tuple[int, threading.Event] | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.arrivals.append(time.monotonic())
                if outer.stop_after and len(outer.requests) >= outer.stop_after[0]:
                    outer.stop_after[1].set()
                held = json.loads(fault.read_text()) if fault.exists() else {}
                failing = held.get("error_rate")
                outer.faulted += bool(held)
                if held:
                    outer.leases.add(held["until"])
                answer = b'{"error": "x"}' if failing else b'["setosa"]'
                self.send_response(500 if failing else 200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Project, _Server]]:
    (port,) = worker_ports(1)
    project = make_project(tmp_path / "p", port=port)
    folder = project.state_dir / "envs/iris/dev/instances/abc-1234"
    folder.mkdir(parents=True)
    monkeypatch.setattr(traffic, "FAULT_SETTLE", 0.05)  # the stand-in reads the file each time
    monkeypatch.setattr(
        traffic,
        "serving",
        lambda *_: traffic.Serving("127.0.0.1:1234", folder, "abc"),
    )
    server = _Server(port, folder / traffic.FAULT_FILE)
    try:
        yield project, server
    finally:
        server.close()


def test_open_loop_counts_and_the_fault_file_lives_as_long_as_the_run(
    live: tuple[Project, _Server],
) -> None:
    project, server = live
    lines: list[str] = []
    started = time.monotonic()
    report = traffic.run_traffic(
        project, "iris", "dev", rate=40, duration=1, inject="error-burst", log=lines.append
    )
    # Paced over the second, not sent in a burst: the 40th request is not due before 39/40 s
    # into the run. A lower bound on when it came, which a loaded machine cannot break.
    assert max(server.arrivals) - started >= 39 / 40
    assert report.sent == 40 == len(server.requests) == server.faulted
    assert report.succeeded == 0 and report.errors == {"500": 40} and report.failed == 40
    assert report.p50_ms is not None and report.p95_ms is not None
    assert report.release == "abc" and report.fault is not None
    fault = Path(str(report.fault_file))
    assert fault.name == "faults.json" and not fault.exists()
    assert lines[0].startswith("sending 40 requests/s to http://127.0.0.1:")
    assert lines[-1] == "removed the fault from abc-1234"
    document = report.to_dict()
    assert document["ok"] is True and document["failed"] == 40
    assert document["detail"].startswith("iris dev: sent 40 in ")
    assert "30% of requests answer 500" in document["fault_detail"]


def test_the_lease_is_renewed(
    live: tuple[Project, _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until stopped, the fault's ``until`` moves on: the service sees the first lease and
    then renewals (every 0.2 s here), however long the machine takes to get there."""
    project, server = live
    monkeypatch.setattr(traffic, "RENEW_EVERY", 0.2)
    stop = threading.Event()
    reports: list[traffic.TrafficReport] = []

    def run() -> None:
        reports.append(
            traffic.run_traffic(
                project,
                "iris",
                "dev",
                rate=20,
                duration=0,
                inject="latency-spike",
                log=print,
                stop=stop,
            )
        )

    runner = threading.Thread(target=run)
    runner.start()
    try:
        wait_for(lambda: len(server.leases) >= 3, "the first lease and two renewals")
    finally:
        stop.set()
        runner.join(timeout=60)
    (report,) = reports
    assert report.fault is not None and report.interrupted
    assert min(server.leases) == report.fault["until"]  # the first lease, then later ones
    assert not Path(str(report.fault_file)).exists()


def test_no_fault_file_for_drift_and_answers_are_tallied(live: tuple[Project, _Server]) -> None:
    project, server = live
    report = traffic.run_traffic(
        project, "iris", "dev", rate=50, duration=0.4, inject="drift", log=lambda _: None
    )
    assert report.sent == 20 and report.succeeded == 20 and report.errors == {}
    assert report.predictions == {"setosa": 20} and report.fault_file is None
    assert server.faulted == 0
    assert all(len(body["features"][0]) == 4 for body in server.requests)


def test_until_stopped_and_the_fault_is_removed(live: tuple[Project, _Server]) -> None:
    project, server = live
    stop = threading.Event()
    server.stop_after = (10, stop)
    report = traffic.run_traffic(
        project, "iris", "dev", rate=50, duration=0, inject="latency-spike", log=print, stop=stop
    )
    # duration 0 runs until stopped: returning at all is the stop taking effect. How many
    # more went out before it did depends on the machine's load, not on relman.
    assert report.interrupted and report.sent >= 10
    assert not Path(str(report.fault_file)).exists()


def test_ctrl_c_removes_the_fault(
    live: tuple[Project, _Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    project, _ = live
    real = traffic.send_time

    def interrupt(start: float, rate: float, index: int) -> float:
        if index == 5:
            raise KeyboardInterrupt
        return real(start, rate, index)

    monkeypatch.setattr(traffic, "send_time", interrupt)
    report = traffic.run_traffic(
        project, "iris", "dev", rate=50, duration=10, inject="latency-leak", log=print
    )
    assert report.interrupted and report.sent <= 5  # queued ones are dropped
    assert not Path(str(report.fault_file)).exists()


def test_target_canary_puts_the_fault_into_the_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stand-in answers 500 while the candidate's fault file says so; the stable's
    folder never gets one."""
    (port,) = worker_ports(1)
    project = make_project(tmp_path / "p", port=port)
    instances = project.state_dir / "envs/iris/dev/instances"
    stable, canary = instances / "abc-1234", instances / "def-5678"
    stable.mkdir(parents=True)
    canary.mkdir()
    monkeypatch.setattr(traffic, "FAULT_SETTLE", 0.05)
    monkeypatch.setattr(traffic, "serving", lambda *_: traffic.Serving("x:1234", stable, "abc"))
    monkeypatch.setattr(
        traffic, "canary_serving", lambda *_: traffic.Serving("x:5678", canary, "def")
    )
    server = _Server(port, canary / traffic.FAULT_FILE)
    lines: list[str] = []
    try:
        report = traffic.run_traffic(
            project,
            "iris",
            "dev",
            rate=40,
            duration=0.25,
            inject="error-burst",
            target="canary",
            log=lines.append,
        )
    finally:
        server.close()
    assert report.release == "def" and report.errors == {"500": 10} and server.faulted == 10
    assert report.fault_file == str(canary / "faults.json")
    assert not (stable / "faults.json").exists() and not (canary / "faults.json").exists()
    assert lines[0].endswith("of requests answer 500) in the canary def")


def test_target_canary_without_a_rollout_is_blocked(live: tuple[Project, _Server]) -> None:
    project, server = live
    with pytest.raises(BlockedError) as caught:
        traffic.run_traffic(
            project, "iris", "dev", duration=1, inject="error-burst", target="canary", log=print
        )
    assert str(caught.value) == (
        "no canary runs in dev; start one with relman promote iris --to dev --strategy canary"
    )
    assert server.requests == []


def test_connection_refused_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (port,) = worker_ports(1)
    project = make_project(tmp_path / "p", port=port)
    monkeypatch.setattr(traffic, "serving", lambda *_: traffic.Serving("x:1", None, None))
    report = traffic.run_traffic(project, "iris", "dev", rate=20, duration=0.25, log=print)
    assert report.errors == {"connection": 5} and report.p50_ms is None


# ------------------------------------------------------------- the demo service's hook


@dataclass
class Hook:
    """The demo service's FaultInjection, the fault file it reads, and the waits it added
    (in seconds, as asked of ``asyncio.sleep``: the latency a request is given)."""

    middleware: Any
    path: Path
    waits: list[float]

    def call(self, method: str = "POST") -> tuple[int, float]:
        """One request through the hook: its status and the latency added to it (ms)."""
        sent: list[dict[str, Any]] = []
        self.waits.clear()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        scope = {"type": "http", "method": method, "path": "/predict"}
        asyncio.run(self.middleware(scope, receive, send))
        return sent[0]["status"], sum(self.waits) * 1000


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Hook]:
    """The demo service's FaultInjection around an app that answers 200, for an instance
    folder in tmp_path. Its ``asyncio.sleep`` is recorded rather than waited: the latency it
    adds is asserted exactly, not measured on a clock that a loaded machine stretches."""
    monkeypatch.syspath_prepend(str(TEMPLATE))
    spec = importlib.util.spec_from_file_location("relman_demo_service", TEMPLATE / "service.py")
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setenv("RELMAN_INSTANCE", str(tmp_path))
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)  # still a point where other tasks may run

    monkeypatch.setattr(module, "asyncio", SimpleNamespace(sleep=sleep))

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    try:
        yield Hook(module.FaultInjection(app), tmp_path / "faults.json", waits)
    finally:
        for name in [n for n in sys.modules if n == "src" or n.startswith("src.")]:
            del sys.modules[name]


def test_hook_is_inert_without_the_file(hook: Hook) -> None:
    assert hook.call() == (200, 0)
    assert hook.middleware.version is None and hook.middleware.fault == {}


def test_hook_applies_spike_leak_errors_until_the_end(hook: Hook) -> None:
    middleware, path = hook.middleware, hook.path
    now = time.time()
    path.write_text(json.dumps({"latency_ms": 80, "until": now + 60}))
    assert hook.call() == (200, 80)
    assert hook.call("GET") == (200, 0)  # health checks and /metrics: untouched

    # a changed file is seen within a second: 2 minutes into a 30 ms/min leak, and errors
    since = now - 120
    path.write_text(
        json.dumps(
            {"latency_leak_ms_per_min": 30, "since": since, "error_rate": 1, "until": now + 60}
        )
    )
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
    middleware.checked -= 1.0
    status, ms = hook.call()
    # 30 ms for each minute since ``since``: 2 minutes, and whatever time the test took since.
    assert status == 500 and 60 <= ms <= 30 * (time.time() - since) / 60

    path.write_text(json.dumps({"latency_ms": 500, "error_rate": 1, "until": now - 1}))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
    middleware.checked -= 1.0
    assert hook.call() == (200, 0)  # past its end: inert
    path.unlink()
    middleware.checked -= 1.0
    assert hook.call() == (200, 0) and middleware.fault == {}


def test_the_command_line_offers_every_fault_kind() -> None:
    import argparse

    from core.traffic.faults import KINDS
    from tui.commands import traffic as command

    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    action = next(
        a
        for sub in parser._subparsers._group_actions  # type: ignore[union-attr]
        for a in sub.choices["traffic"]._actions
        if a.dest == "inject"
    )
    assert tuple(action.choices) == KINDS


def test_the_command_line_targets_stable_or_canary() -> None:
    import argparse

    from tui.commands import traffic as command

    parser = argparse.ArgumentParser()
    command.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["traffic", "iris", "--env", "dev"])
    assert args.target == "stable"
    args = parser.parse_args(["traffic", "iris", "--env", "dev", "--target", "canary"])
    assert args.target == "canary"
    with pytest.raises(SystemExit):
        parser.parse_args(["traffic", "iris", "--env", "dev", "--target", "blue"])

"""`relman traffic`: demo load on a served environment, with a fault to inject.

Requests go to the environment's own address (its proxy), like a client's: one row per POST
to ``/ENDPOINT``, each sampled from the service's training data (its ``data`` artifact from
dvc.yaml, a CSV) in the shape of its ``sample_request``, or the sample request's own rows
when there is no such CSV at hand. Pacing is open-loop: request ``i`` leaves at
``start + i / rate`` whatever the answers before it took, from a small thread pool, so a slow
service meets the same load a real one would (up to ``MAX_PENDING_PER_WORKER`` requests
waiting per thread; later ones are skipped and counted).

Faults (``--inject``):

- ``drift``: the requests themselves change: the feature with the widest spread in the data
  (``petal_length`` for the iris demo) is scaled by ``DRIFT_SCALE``, plus a little noise.
- ``latency-spike``, ``latency-leak``, ``error-burst``: a ``faults.json`` in the folder of the
  instance the environment routes to, which the demo's service applies to its API requests
  (see the demo's service.py): a constant extra latency, an extra latency growing with the
  minutes since the start, or 500s at random. The file is a lease (``until`` is renewed every
  few seconds), so it expires by itself should relman be killed; it is removed at the end,
  also after Ctrl-C.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import json
import math
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.config import Project
from core.errors import BlockedError, InfraError, ReadOnlyError, UsageError
from core.processes import pid_alive
from core.proxy_control import current_upstream, proxy_pid, write_atomic

Log = Callable[[str], None]

KINDS = ("latency-leak", "latency-spike", "error-burst", "drift")
# What each serving-side fault writes into faults.json (besides since, until, pid).
FAULTS: dict[str, dict[str, float]] = {
    "latency-spike": {"latency_ms": 250.0},
    "latency-leak": {"latency_leak_ms_per_min": 60.0},
    "error-burst": {"error_rate": 0.3},
}
FAULT_FILE = "faults.json"
DRIFT_SCALE = 1.6
# Noise added to the drifted feature, in standard deviations of that feature in the data.
DRIFT_NOISE = 0.1
# The fault file's ``until`` is now + LEASE_SECONDS, renewed every RENEW_EVERY seconds.
LEASE_SECONDS = 30.0
RENEW_EVERY = 10.0
PROGRESS_EVERY = 5.0
# The demo service looks at its fault file once a second: wait that long before the load.
FAULT_SETTLE = 1.1
REQUEST_TIMEOUT = 15.0  # longer than the demo service's own (10 s): its answer, not ours
MAX_WORKERS = 64
MAX_PENDING_PER_WORKER = 4
# Wait for the requests still in flight at the end, at most this long.
DRAIN_SECONDS = REQUEST_TIMEOUT + 1


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True)
class RequestSource:
    """Where request bodies come from: rows of numbers sent as ``{key: [row]}``."""

    key: str
    rows: list[list[float]]
    columns: list[str] | None
    origin: str  # for a person: "data/iris.csv (150 rows)"

    def body(self, rng: random.Random, *, drift: bool = False) -> bytes:
        row = list(rng.choice(self.rows))
        if drift:
            column = self.drift_column()
            spread = self.spread(column)
            row[column] = round(row[column] * DRIFT_SCALE + rng.gauss(0, DRIFT_NOISE * spread), 2)
        return json.dumps({self.key: [row]}).encode()

    def drift_column(self) -> int:
        """The feature ``drift`` shifts: the one with the widest spread in the data."""
        widths = [self.spread(i) for i in range(len(self.rows[0]))]
        return widths.index(max(widths))

    def spread(self, column: int) -> float:
        values = [row[column] for row in self.rows]
        return statistics.pstdev(values) if len(values) > 1 else abs(values[0]) * 0.1


def sample_shape(body: Any) -> tuple[str, list[list[float]]] | None:
    """``{"features": [[5.1, ...], ...]}`` -> ("features", rows): a request holding one list
    of equally long rows of numbers; None for any other shape."""
    if not isinstance(body, dict) or len(body) != 1:
        return None
    ((key, rows),) = body.items()
    if not isinstance(rows, list) or not rows:
        return None
    if not all(isinstance(row, list) and row for row in rows):
        return None
    if len({len(row) for row in rows}) != 1:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for row in rows for v in row):
        return None
    return str(key), [[float(v) for v in row] for row in rows]


def numeric_columns(path: Path) -> tuple[list[str], list[list[float]]]:
    """The columns of a CSV whose every value is a number, and its rows of those columns."""
    with path.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    if not records:
        return [], []
    names = []
    for name in records[0]:
        try:
            for record in records:
                float(record[name])
        except (TypeError, ValueError):
            continue
        names.append(name)
    return names, [[float(record[name]) for name in names] for record in records]


def data_files(project: Project, service: str) -> list[Path]:
    """The files of the service's ``data`` artifacts: dvc.yaml ``artifacts:`` names (also
    ``dir:name`` of a nested dvc.yaml) or paths; a folder stands for the CSVs in it."""
    found: list[Path] = []
    for name in project.config.services[service].data:
        folder, _, short = name.rpartition(":")
        base = project.root / folder
        path = base / name if not folder else None
        with contextlib.suppress(OSError, yaml.YAMLError, AttributeError, TypeError):
            artifacts = yaml.safe_load((base / "dvc.yaml").read_text()).get("artifacts") or {}
            if short in artifacts:
                path = base / str(artifacts[short]["path"])
        if path is None:
            continue
        found.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return [path for path in found if path.suffix.lower() == ".csv" and path.is_file()]


def request_source(project: Project, service: str) -> RequestSource:
    """Rows of the training data in the shape of the sample request, or else the sample's."""
    config = project.config.services[service]
    sample: tuple[str, list[list[float]]] | None = None
    if config.sample_request:
        path = project.root / config.sample_request
        try:
            sample = sample_shape(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise UsageError(f"{config.sample_request}: cannot be read ({exc})") from exc
    if sample is None:
        raise UsageError(
            f"relman traffic needs a sample request for {service}: set sample_request in "
            f'[services.{service}] of relman.toml to a JSON body like {{"features": [[1, 2]]}}'
        )
    key, sample_rows = sample
    width = len(sample_rows[0])
    for path in data_files(project, service):
        columns, rows = numeric_columns(path)
        if rows and len(columns) == width:
            origin = f"{path.relative_to(project.root)} ({len(rows)} rows)"
            return RequestSource(key, rows, columns, origin)
    origin = f"{config.sample_request} ({len(sample_rows)} rows)"
    return RequestSource(key, sample_rows, None, origin)


# ------------------------------------------------------------------------------- pacing


def planned_count(rate: float, duration: float) -> int | None:
    """How many requests ``duration`` seconds at ``rate`` per second make (None: no end)."""
    if duration <= 0:
        return None
    return max(1, math.ceil(rate * duration - 1e-9))


def send_time(start: float, rate: float, index: int) -> float:
    """When request ``index`` (from 0) leaves: open-loop, whatever the earlier answers."""
    return start + index / rate


def workers_for(rate: float) -> int:
    """Threads enough for ~2 s answers at ``rate`` without delaying the schedule."""
    return max(4, min(MAX_WORKERS, math.ceil(rate * 2)))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by linear interpolation between order statistics."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# ------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Serving:
    """What the environment routes to: its address, its instance's folder and release."""

    upstream: str
    folder: Path | None
    release: str | None


def serving(project: Project, service: str, env: str) -> Serving:
    """The instance ``env`` routes to; BlockedError when nothing is deployed there."""
    env_dir = project.state_dir / "envs" / service / env
    upstream = current_upstream(env_dir) if proxy_pid(env_dir) is not None else None
    if not upstream:
        raise BlockedError(f"{service} is not deployed in {env}; relman release --to {env} first")
    for info_file in sorted((env_dir / "instances").glob("*/instance.json")):
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("address") == upstream:
            return Serving(upstream, info_file.parent, str(info.get("release") or "") or None)
    return Serving(upstream, None, None)


def fault_spec(kind: str, now: float) -> dict[str, Any]:
    """The faults.json of a serving-side fault starting at ``now`` (Unix seconds)."""
    return {
        **FAULTS[kind],
        "kind": kind,
        "since": now,
        "until": now + LEASE_SECONDS,
        "pid": os.getpid(),
    }


def write_fault(path: Path, spec: dict[str, Any]) -> None:
    """Write ``spec`` at ``path`` unless another live relman traffic's fault is there."""
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        held = None
    if (
        isinstance(held, dict)
        and held.get("pid") not in (None, spec["pid"])
        and float(held.get("until", 0)) > time.time()
        and pid_alive(int(held["pid"]))
    ):
        raise BlockedError(
            f"another relman traffic (pid {held['pid']}) injects {held.get('kind', 'a fault')} "
            f"into {path.parent}; wait for it to end, or stop it"
        )
    write_atomic(path, json.dumps(spec))


def remove_fault(path: Path, pid: int) -> bool:
    """Remove the fault file when it is still the one of ``pid``; True when removed."""
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if isinstance(held, dict) and held.get("pid") not in (None, pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


# ------------------------------------------------------------------------------- report


@dataclass
class TrafficReport:
    service: str
    env: str
    url: str
    release: str | None
    inject: str | None
    rate: float
    duration: float
    rows_from: str
    seconds: float = 0.0
    sent: int = 0
    succeeded: int = 0
    # Failed requests by HTTP status ("500") or "timeout" / "connection".
    errors: dict[str, int] = field(default_factory=dict)
    # Not sent: the client had MAX_PENDING_PER_WORKER requests waiting per thread.
    skipped: int = 0
    # Over every answered request (any status).
    p50_ms: float | None = None
    p95_ms: float | None = None
    # Items of the answers that are lists of labels, e.g. {"setosa": 20, ...}.
    predictions: dict[str, int] = field(default_factory=dict)
    fault: dict[str, Any] | None = None
    fault_file: str | None = None
    interrupted: bool = False

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def summary(self) -> str:
        """One line: what was sent, what came back."""
        errors = ", ".join(f"{key}: {n}" for key, n in sorted(self.errors.items()))
        line = (
            f"{self.service} {self.env}: sent {self.sent} in {self.seconds:.1f} s, "
            f"ok {self.succeeded}, errors {self.failed}" + (f" ({errors})" if errors else "")
        )
        if self.skipped:
            line += f", skipped {self.skipped}"
        return line + f"; p50 {_ms(self.p50_ms)}, p95 {_ms(self.p95_ms)}"

    def to_dict(self) -> dict[str, Any]:
        document = asdict(self)
        for key in ("seconds", "p50_ms", "p95_ms"):
            if document[key] is not None:
                document[key] = round(document[key], 1)
        return {
            "ok": True,
            **document,
            "failed": self.failed,
            "fault_detail": describe_fault(self.inject),
            "detail": self.summary(),
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def describe_fault(kind: str | None) -> str:
    if kind is None:
        return "no fault"
    if kind == "drift":
        return f"drift (the widest-spread feature x{DRIFT_SCALE:g} + noise)"
    spec = FAULTS[kind]
    if "latency_ms" in spec:
        return f"{kind} (+{spec['latency_ms']:g} ms a request)"
    if "latency_leak_ms_per_min" in spec:
        return f"{kind} (+{spec['latency_leak_ms_per_min']:g} ms more each minute)"
    return f"{kind} ({spec['error_rate']:.0%} of requests answer 500)"


class _Tally:
    """Counts shared by the sending threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = 0
        self.done = 0
        self.succeeded = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.window: list[float] = []
        self.predictions: Counter[str] = Counter()

    def add(self, status: int | None, problem: str | None, ms: float, answer: bytes) -> None:
        labels: list[str] = []
        if status is not None and 200 <= status < 300:
            with contextlib.suppress(ValueError):
                decoded = json.loads(answer)
                if isinstance(decoded, list) and all(isinstance(x, str) for x in decoded):
                    labels = decoded
        with self.lock:
            self.done += 1
            if status is not None:
                self.latencies.append(ms)
                self.window.append(ms)
            if status is not None and 200 <= status < 300:
                self.succeeded += 1
                self.predictions.update(labels)
            else:
                self.errors[str(status) if status is not None else problem or "error"] += 1

    def take_window(self) -> list[float]:
        with self.lock:
            window, self.window = self.window, []
        return window


def _post(host: str, port: int, path: str, body: bytes) -> tuple[int | None, str | None, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, None, response.read()
    except TimeoutError:
        return None, "timeout", b""
    except (OSError, http.client.HTTPException):
        return None, "connection", b""
    finally:
        conn.close()


def _client_host(host: str) -> str:
    """Where to connect for an environment listening on ``host`` (any address: loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


# ------------------------------------------------------------------------------ running


def run_traffic(
    project: Project,
    service: str,
    env: str,
    *,
    rate: float = 5,
    duration: float = 60,
    inject: str | None = None,
    log: Log,
    read_only: bool = False,
    stop: threading.Event | None = None,
) -> TrafficReport:
    """Send demo load to ``service`` in ``env`` for ``duration`` seconds (0: until Ctrl-C
    or ``stop``) at ``rate`` requests a second, with the fault ``inject`` (one of KINDS)."""
    project.config.check_names(service=service, env=env)
    if not (rate > 0 and math.isfinite(rate)):
        raise UsageError(f"--rate {rate:g}: give a number of requests a second above 0")
    if not (duration >= 0 and math.isfinite(duration)):
        raise UsageError(f"--duration {duration:g}: give seconds, or 0 to run until Ctrl-C")
    if inject is not None and inject not in KINDS:
        raise UsageError(f"--inject {inject}: not a fault (faults: {', '.join(KINDS)})")
    if read_only:
        raise ReadOnlyError("read-only mode: traffic refused")
    source = request_source(project, service)
    live = serving(project, service, env)
    config = project.config.environments[env]
    endpoint = "/" + project.config.services[service].endpoint.lstrip("/")
    host, port = _client_host(config.host), config.port
    report = TrafficReport(
        service=service,
        env=env,
        url=f"http://{config.host}:{config.port}{endpoint}",
        release=live.release,
        inject=inject,
        rate=rate,
        duration=duration,
        rows_from=source.origin,
    )
    fault_path: Path | None = None
    spec: dict[str, Any] | None = None
    if inject in FAULTS:
        if live.folder is None:
            raise InfraError(
                f"the instance {env} routes to ({live.upstream}) has no folder under "
                f"{project.state_dir / 'envs' / service / env / 'instances'}; "
                f"promote {service} to {env} again"
            )
        fault_path = live.folder / FAULT_FILE
        spec = fault_spec(inject, time.time())
        report.fault, report.fault_file = dict(spec), str(fault_path)

    total = planned_count(rate, duration)
    length = f"for {duration:g} s" if total else "until Ctrl-C"
    log(
        f"sending {rate:g} requests/s to {report.url} {length}, rows from {source.origin}; "
        + describe_fault(inject)
    )
    rng = random.Random()
    tally = _Tally()
    workers = workers_for(rate)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="relman-traffic")

    def one(body: bytes) -> None:
        with tally.lock:
            tally.started += 1
        began = time.perf_counter()
        status, problem, answer = _post(host, port, endpoint, body)
        tally.add(status, problem, (time.perf_counter() - began) * 1000, answer)

    start = time.monotonic()
    submitted = 0
    restore = _sigterm_as_interrupt()
    try:
        try:
            if fault_path is not None and spec is not None:
                write_fault(fault_path, spec)
                # The service looks at the file once a second: load once it applies.
                if (stop or threading.Event()).wait(FAULT_SETTLE):
                    report.interrupted = True
            start = time.monotonic()
            next_progress = start + PROGRESS_EVERY
            next_renew = start + RENEW_EVERY if spec is not None else math.inf
            index = 0
            while (total is None or index < total) and not report.interrupted:
                if stop is not None and stop.is_set():
                    report.interrupted = True
                    break
                now = time.monotonic()
                due = send_time(start, rate, index)
                if now >= due:
                    if submitted - tally.done >= workers * MAX_PENDING_PER_WORKER:
                        report.skipped += 1
                    else:
                        pool.submit(one, source.body(rng, drift=inject == "drift"))
                        submitted += 1
                    index += 1
                    continue
                if now >= next_progress:
                    log(_progress(now - start, tally))
                    next_progress += PROGRESS_EVERY
                if now >= next_renew and fault_path is not None and spec is not None:
                    spec["until"] = time.time() + LEASE_SECONDS
                    write_atomic(fault_path, json.dumps(spec))
                    next_renew += RENEW_EVERY
                time.sleep(max(0.0, min(due, next_progress, next_renew) - now))
        except KeyboardInterrupt:
            report.interrupted = True
        _drain(pool, submitted, tally, report)
    finally:
        restore()
        pool.shutdown(wait=False, cancel_futures=True)
        if fault_path is not None and remove_fault(fault_path, os.getpid()):
            log(f"removed the fault from {fault_path.parent.name}")
    report.seconds = time.monotonic() - start
    with tally.lock:
        report.sent = tally.started
        report.succeeded = tally.succeeded
        report.errors = dict(tally.errors)
        report.p50_ms = percentile(tally.latencies, 0.50)
        report.p95_ms = percentile(tally.latencies, 0.95)
        report.predictions = dict(tally.predictions)
    return report


def _sigterm_as_interrupt() -> Callable[[], None]:
    """From the main thread, make SIGTERM end the run like Ctrl-C (the fault file is removed);
    returns what puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def _drain(pool: ThreadPoolExecutor, submitted: int, tally: _Tally, report: TrafficReport) -> None:
    """Wait for the answers still to come: of every request submitted, or after an
    interruption only of those in flight (the queued ones are dropped). A second Ctrl-C, or
    DRAIN_SECONDS, stops the wait; requests still out then are counted as sent, unanswered."""
    if report.interrupted:
        pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        while time.monotonic() < deadline:
            with tally.lock:
                if tally.done >= (tally.started if report.interrupted else submitted):
                    return
            time.sleep(0.02)
    except KeyboardInterrupt:
        report.interrupted = True


def _progress(elapsed: float, tally: _Tally) -> str:
    window = tally.take_window()
    with tally.lock:
        sent, done, errors = tally.started, tally.done, sum(tally.errors.values())
    return (
        f"{elapsed:4.0f} s: sent {sent}, answered {done}, errors {errors}; "
        f"last {PROGRESS_EVERY:g} s: p50 {_ms(percentile(window, 0.5))}, "
        f"p95 {_ms(percentile(window, 0.95))}"
    )


def traffic_tag(project: Project, service: str, env: str) -> str:
    """The RELMAN_INSTANCE tag of background traffic on one environment; `relman down`
    stops every process tagged under ``.relman/traffic``."""
    return str(project.state_dir / "traffic" / f"{service}-{env}")


def start_detached(
    project: Project,
    service: str,
    env: str,
    *,
    rate: float,
    duration: float,
    inject: str | None,
) -> int:
    """`relman traffic` in the background, detached and tagged; its pid."""
    import subprocess
    import sys

    from core.processes import TAG_VARIABLE, stop_tagged

    project.config.check_names(service=service, env=env)
    serving(project, service, env)  # BlockedError now, not in a log nobody reads
    tag = traffic_tag(project, service, env)
    stop_tagged(tag, None)  # one background load per environment: this one replaces it
    command = [sys.executable, "-m", "tui", "--project", str(project.root), "--batch"]
    command += ["traffic", service, "--env", env, "--rate", f"{rate:g}"]
    command += ["--duration", f"{duration:g}"] + (["--inject", inject] if inject else [])
    project.state_dir.mkdir(parents=True, exist_ok=True)
    with (project.state_dir / "traffic.log").open("ab") as output:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, TAG_VARIABLE: tag},
            start_new_session=True,
        )
    return child.pid

"""`relman traffic`: demo load on a served environment, with a fault to inject.

Requests go to the environment's own address (its proxy), like a client's: one row per POST
to ``/ENDPOINT``, each sampled from the service's training data (its ``data`` artifact from
dvc.yaml, a CSV) in the shape of its ``sample_request``, or the sample request's own rows
when there is no such CSV at hand (core/traffic/bodies.py). Pacing is open-loop: request
``i`` leaves at ``start + i / rate`` whatever the answers before it took, from a small
thread pool, so a slow service meets the same load a real one would (up to
``MAX_PENDING_PER_WORKER`` requests waiting per thread; later ones are skipped and counted).

A fault (``--inject``, core.traffic.faults) changes the requests (``drift``) or, through a fault
file the demo's service reads, how the service answers them: the stable instance's, or with
``--target canary`` the candidate's of a rollout running in the environment. What was sent
and what came back is counted in core.traffic.report.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config.model import Project
from core.errors import BlockedError, InfraError, ReadOnlyError, UsageError
from core.targets import target_for
from core.targets.proxy_control import current_upstream, proxy_pid, write_atomic
from core.traffic.bodies import request_source
from core.traffic.faults import (
    FAULT_FILE,
    FAULT_SETTLE,
    FAULTS,
    KINDS,
    LEASE_SECONDS,
    RENEW_EVERY,
    describe_fault,
    fault_spec,
    remove_fault,
    write_fault,
)
from core.traffic.report import Tally, TrafficReport, percentile

Log = Callable[[str], None]

PROGRESS_EVERY = 5.0
REQUEST_TIMEOUT = 15.0  # longer than the demo service's own (10 s): its answer, not ours
MAX_WORKERS = 64
MAX_PENDING_PER_WORKER = 4
# Wait for the requests still in flight at the end, at most this long.
DRAIN_SECONDS = REQUEST_TIMEOUT + 1


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


# ------------------------------------------------------------------------------ serving


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


def canary_serving(project: Project, service: str, env: str) -> Serving:
    """The candidate instance of the rollout running in ``env`` (canary or shadow);
    BlockedError when none runs."""
    candidate = target_for(project, service, env).candidate()
    if candidate is None:
        raise BlockedError(
            f"no canary runs in {env}; start one with relman promote {service} --to {env} "
            "--strategy canary"
        )
    folder = Path(candidate.log).parent if candidate.log else None
    return Serving(candidate.address, folder, candidate.release or None)


TARGETS = ("stable", "canary")


# ------------------------------------------------------------------------------ running


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


def run_traffic(
    project: Project,
    service: str,
    env: str,
    *,
    rate: float = 5,
    duration: float = 60,
    inject: str | None = None,
    target: Literal["stable", "canary"] = "stable",
    log: Log,
    read_only: bool = False,
    stop: threading.Event | None = None,
) -> TrafficReport:
    """Send demo load to ``service`` in ``env`` for ``duration`` seconds (0: until Ctrl-C
    or ``stop``) at ``rate`` requests a second, with the fault ``inject`` (one of KINDS)
    put into the stable instance, or the rollout's candidate (``target="canary"``)."""
    project.config.check_names(service=service, env=env)
    if project.config.environments[env].kubernetes is not None:
        raise UsageError(
            f"relman traffic sends requests to environments served on this machine; {env} runs "
            "on Kubernetes (traffic through a port-forward or its url is not built yet)"
        )
    if not (rate > 0 and math.isfinite(rate)):
        raise UsageError(f"--rate {rate:g}: give a number of requests a second above 0")
    if not (duration >= 0 and math.isfinite(duration)):
        raise UsageError(f"--duration {duration:g}: give seconds, or 0 to run until Ctrl-C")
    if inject is not None and inject not in KINDS:
        raise UsageError(f"--inject {inject}: not a fault (faults: {', '.join(KINDS)})")
    if target not in TARGETS:
        raise UsageError(f"--target {target}: give stable or canary")
    if read_only:
        raise ReadOnlyError("read-only mode: traffic refused")
    source = request_source(project, service)
    live = serving(project, service, env)
    faulted = live if target == "stable" else canary_serving(project, service, env)
    project.config.require_port(env)
    config = project.config.environments[env]
    endpoint = "/" + project.config.services[service].endpoint.lstrip("/")
    host, port = _client_host(config.host), config.port or 0  # set: checked above
    report = TrafficReport(
        service=service,
        env=env,
        url=f"http://{config.host}:{config.port}{endpoint}",
        release=faulted.release,
        inject=inject,
        rate=rate,
        duration=duration,
        rows_from=source.origin,
    )
    fault_path: Path | None = None
    spec: dict[str, Any] | None = None
    if inject in FAULTS:
        if faulted.folder is None:
            raise InfraError(
                f"the instance {env} routes to ({faulted.upstream}) has no folder under "
                f"{project.state_dir / 'envs' / service / env / 'instances'}; "
                f"promote {service} to {env} again"
            )
        fault_path = faulted.folder / FAULT_FILE
        spec = fault_spec(inject, time.time())
        report.fault, report.fault_file = dict(spec), str(fault_path)

    total = planned_count(rate, duration)
    length = f"for {duration:g} s" if total else "until Ctrl-C"
    into = f" in the canary {faulted.release or faulted.upstream}" if target == "canary" else ""
    log(
        f"sending {rate:g} requests/s to {report.url} {length}, rows from {source.origin}; "
        + describe_fault(inject)
        + (into if inject in FAULTS else "")
    )
    rng = random.Random()
    tally = Tally()
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
                    log(tally.progress(now - start, PROGRESS_EVERY))
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


def _drain(pool: ThreadPoolExecutor, submitted: int, tally: Tally, report: TrafficReport) -> None:
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
    target: Literal["stable", "canary"] = "stable",
    log: Callable[[str], None] | None = None,
) -> int:
    """`relman traffic` in the background, detached and tagged; its pid. A background load
    already running on the environment is replaced, and ``log`` says so."""
    import subprocess
    import sys

    from core.host.processes import TAG_VARIABLE, stop_tagged, tagged

    project.config.check_names(service=service, env=env)
    serving(project, service, env)  # BlockedError now, not in a log nobody reads
    if target == "canary":
        canary_serving(project, service, env)
    tag = traffic_tag(project, service, env)
    earlier = tagged(tag)
    if earlier and stop_tagged(tag, None) and log is not None:
        # one background load per environment: this one replaces it, and says so
        log(f"stopped the background traffic already on {service} in {env} (pid {earlier[0]})")
    command = [sys.executable, "-m", "tui", "--project", str(project.root), "--batch"]
    command += ["traffic", service, "--env", env, "--rate", f"{rate:g}"]
    command += ["--duration", f"{duration:g}"] + (["--inject", inject] if inject else [])
    command += ["--target", target] if target != "stable" else []
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

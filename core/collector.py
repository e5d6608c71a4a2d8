"""`relman monitor`: the collector that fills the metric store from the live environments.

One collector per project (a claim with a heartbeat in the metric store). Every scrape
interval it visits each (service, environment) recorded live in the ledger:

1. scrapes ``/metrics`` of the instance the environment routes to (core.scrape) and stores
   the cumulative counters and histogram (store.metrics);
2. reads the instance's new ``bentoml.monitor`` rows (core.monitor_log): inputs, predictions
   and targets (a target is ground truth: it also goes to the feedback table);
3. for every minute completed since the last pass, writes the per-minute rollup and feeds it
   to the alert rules of the effective policy (core.policies, core.alerting), with drift
   (core.drift: PSI of the last window against the live release's training data) and live
   accuracy (feedback joined to predictions) for the newest minute; persists each alert
   transition and posts it to the policy's webhook;
4. prunes what is older than the retention, now and then.

The rules' state and the monitor readers' offsets are saved to ``.relman/collector.json``
after every pass, so a restarted collector goes on where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import Project
from core.errors import BlockedError, InfraError, ReleaseError, StoreError
from core.processes import TAG_VARIABLE, carries_tag, pid_alive, stop_tagged
from core.recovery import this_host
from core.steps import Log
from core.steps import quiet as _quiet

PRUNE_EVERY = 600  # seconds between retention passes
STATE_FILE = "collector.json"
METRICS_FILE = "metrics.db"
HEALTHY = ("live",)


def metrics_path(project: Project) -> Path:
    return project.state_dir / METRICS_FILE


def collector_tag(project: Project) -> str:
    return str(project.state_dir / "collector")


@dataclass
class _Watch:
    """What the collector keeps between passes for one (service, env)."""

    rules: Any  # core.alerting.Rules
    last_minute: int | None = None
    readers: dict[str, Any] = field(default_factory=dict)  # folder -> MonitorReader
    reader_states: dict[str, Any] = field(default_factory=dict)  # saved offsets, by folder
    failed_minutes: set[int] = field(default_factory=set)  # a scrape was tried and failed
    reference: tuple[str, dict[str, list[Any]]] | None = None  # (release, training data)


@dataclass
class PassReport:
    t: int
    scraped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)


class Collector:
    def __init__(
        self, project: Project, *, log: Log = _quiet, clock: Callable[[], float] = time.time
    ) -> None:
        self.project = project
        self.log = log
        self.clock = clock
        self.watches: dict[tuple[str, str], _Watch] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_prune = 0.0
        self._store: Any = None  # store.metrics.MetricStore, opened on the first pass
        self._config_mtime = _mtime(project.config_path)
        self._saved = self._load_state()
        for service in project.config.services:
            for env in project.config.environments:
                self.policies[(service, env)] = _policy(project, service, env)

    def _reload_if_changed(self) -> None:
        """relman.toml edited while the collector runs: new policies, new environments."""
        from core.alerting import Rules
        from core.config import load_project

        mtime = _mtime(self.project.config_path)
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        try:
            project = load_project(self.project.root)
            policies = {
                (service, env): _policy(project, service, env)
                for service in project.config.services
                for env in project.config.environments
            }
        except ReleaseError as exc:
            self.log(f"relman.toml changed but does not load ({exc}); keeping the last one")
            return
        self.project, self.policies = project, policies
        for key, watch in self.watches.items():
            if key in policies:
                watch.rules = Rules.from_dict(watch.rules.to_dict(), policies[key])
        self.log("relman.toml changed: policies reloaded")

    @property
    def interval(self) -> float:
        return float(min(float(p["scrape_interval"]) for p in self.policies.values()))

    # ------------------------------------------------------------------ one pass

    def run_pass(self) -> PassReport:
        from core.releases import open_ledger
        from store.metrics import MetricStore

        now = int(self.clock())
        report = PassReport(now)
        self._reload_if_changed()
        if self._store is None:  # one open per process: a write open checks the whole file
            self._store = MetricStore.open(metrics_path(self.project))
        store = self._store
        with open_ledger(self.project, read_only=True) as ledger:
            states = {(s.service, s.env): s for s in ledger.environment_states()}
            for (service, env), policy in self.policies.items():
                state = states.get((service, env))
                if state is None or state.release_id is None:
                    continue  # never deployed here
                try:
                    self._visit(store, ledger, service, env, state, policy, now, report)
                except StoreError:
                    raise  # the store itself failed: the caller decides (disk full stops)
                except Exception as exc:
                    line = " ".join(f"{type(exc).__name__}: {exc}".split())
                    report.problems.append(f"{service}/{env}: {line}")
            if now - self.last_prune >= PRUNE_EVERY:
                # The longest retention any environment asks for: nothing is pruned early.
                raw = max(float(p["raw_retention_hours"]) for p in self.policies.values())
                rolled = max(float(p["rollup_retention_days"]) for p in self.policies.values())
                store.prune(now, raw, rolled)
                self.last_prune = now
        self._save_state()
        for line in report.problems:
            self.log(line)
        return report

    def _visit(
        self,
        store: Any,
        ledger: Any,
        service: str,
        env: str,
        state: Any,
        policy: dict[str, Any],
        now: int,
        report: PassReport,
    ) -> None:
        from core.monitor_log import monitor_folders
        from core.scrape import fetch_metrics, parse_scrape
        from core.targets import target_for
        from store.metrics import ScrapeRow

        watch = self._watch(service, env, policy)
        target = target_for(self.project, service, env)
        serving = target.serving()
        release = serving.release if serving is not None else state.release_id
        if serving is not None:
            try:
                scrape = parse_scrape(fetch_metrics(serving.address), now)
            except InfraError as exc:
                report.problems.append(f"{service}/{env}: {exc}")
                watch.failed_minutes.add(now - now % 60)
            else:
                report.problems += [f"{service}/{env}: {p}" for p in scrape.problems]
                if scrape.release and scrape.release != release:
                    report.problems.append(
                        f"{service}/{env}: /metrics of {serving.address} reports release "
                        f"{scrape.release}, not {release}; scrape skipped"
                    )
                elif scrape.complete:
                    row = ScrapeRow(
                        service,
                        env,
                        now,
                        release,
                        scrape.requests,
                        scrape.errors,
                        scrape.in_progress,
                        dict(scrape.buckets),
                    )
                    store.add_scrapes([row])
                    report.scraped.append(f"{service}/{env}")
            log_path = Path(serving.log).parent / "monitoring" if serving.log else None
            if log_path is not None:
                for folder in monitor_folders(log_path).values():
                    reader = self._reader(watch, folder)
                    before = reader.state()
                    rows = reader.read()
                    for problem in reader.problems:
                        report.problems.append(f"{service}/{env}: {folder.name}: {problem}")
                    try:
                        self._store_rows(store, service, env, release, rows)
                    except BaseException:
                        # Not stored: read them again next time (the offsets go back).
                        watch.readers[str(folder)] = type(reader)(folder, before)
                        raise
        if serving is None:
            watch.failed_minutes.add(now - now % 60)
        if state.state not in HEALTHY and serving is None:
            # Stopped on purpose (relman down): nothing to watch or alert on, and the minutes
            # it spends down are not judged later as an outage.
            watch.last_minute = now - now % 60 - 60
            return
        self._evaluate(store, ledger, watch, service, env, release, policy, now, report)

    def _store_rows(
        self, store: Any, service: str, env: str, release: str | None, rows: list[Any]
    ) -> None:
        from store.metrics import Feedback, Record

        store.add_records(
            Record(service, env, r.t, release, r.request_id, r.features, r.prediction, r.target)
            for r in rows
        )
        # A target-role column is ground truth: joined like `relman feedback` rows.
        store.add_feedback(
            Feedback(service, env, r.request_id, r.target, r.t)
            for r in rows
            if r.target is not None and r.request_id
        )

    def _evaluate(
        self,
        store: Any,
        ledger: Any,
        watch: _Watch,
        service: str,
        env: str,
        release: str | None,
        policy: dict[str, Any],
        now: int,
        report: PassReport,
    ) -> None:
        from store.metrics import rollup

        current = now - now % 60
        if watch.last_minute is None:
            # A new watch starts with the minute in progress: the minutes before it were
            # not watched, and judging them now (no scrapes: "down") would be a false alarm.
            watch.last_minute = current - 60
        # After a long stop, at most the last hour is caught up.
        minutes = list(range(max(watch.last_minute + 60, current - 60 * 60), current, 60))
        for minute in minutes:
            previous = store.last_scrape(service, env, before=minute)
            scrapes = store.scrapes(service, env, minute, minute + 60)
            rolled = rollup(previous, scrapes, minute) if scrapes else None
            if rolled is not None:
                store.put_rollups([rolled])
            values = rolled.point() if rolled is not None else None
            point: dict[str, float | None] = {
                name: getattr(values, name) if values is not None else None
                for name in ("rps", "error_rate", "p50_ms", "p95_ms", "p99_ms")
            }
            newest = minute == minutes[-1]
            drift = (
                self._drift(store, ledger, watch, service, env, release, policy, now)
                if newest
                else None
            )
            # Down only when a scrape was tried that minute and none succeeded; a minute
            # nobody looked at (the collector stopped) is no data, not an outage.
            up = bool(scrapes) or minute not in watch.failed_minutes
            watch.failed_minutes.discard(minute)
            transitions = watch.rules.evaluate(
                minute,
                point,
                release=rolled.release if rolled is not None and rolled.release else release,
                up=up,
                drift=drift,
                accuracy=self._accuracy(store, ledger, service, env, release, policy, now)
                if newest
                else None,
            )
            for transition in transitions:
                self._record(store, transition, policy, report)
            watch.last_minute = minute

    def _record(self, store: Any, transition: Any, policy: dict[str, Any], report: Any) -> None:
        from core.alerting import send_webhook

        open_alerts = {
            a.rule: a
            for a in store.alerts(state="open", service=transition.service, env=transition.env)
        }
        existing = open_alerts.get(transition.rule)
        if existing is None and transition.state in ("pending", "firing"):
            store.open_alert(
                transition.rule,
                transition.kind,
                transition.service,
                transition.env,
                t=transition.since_minute,
                state=transition.state,
                value=transition.value,
                detail=transition.detail,
                release=transition.release,
                rollback=transition.rollback,
            )
        elif existing is not None:
            store.update_alert(
                existing.id,
                t=transition.since_minute,
                state=transition.state,
                value=transition.value,
                detail=transition.detail,
                release=transition.release,
                rollback=transition.rollback,
            )
        document = transition.document()
        report.transitions.append(document)
        self.log(f"alert {transition.rule} {transition.state}: {transition.detail}")
        webhook = policy.get("webhook")
        if webhook and transition.state in ("firing", "resolved"):
            problem = send_webhook(str(webhook), document)
            if problem:
                report.problems.append(f"webhook: {problem}")

    def _drift(
        self,
        store: Any,
        ledger: Any,
        watch: _Watch,
        service: str,
        env: str,
        release: str | None,
        policy: dict[str, Any],
        now: int,
    ) -> dict[str, float] | None:
        """PSI per feature (and ``prediction`` for the class mix) over the drift window,
        against the training data of the live release; None until enough records."""
        if release is None:
            return None
        window = int(policy["drift_window_minutes"]) * 60
        records = store.records(service, env, now - window, now, release=release)
        if len(records) < int(policy["drift_min_records"]):
            return None
        from core.drift import drift_report, reference_frame
        from core.monitor_log import MonitorRow

        if watch.reference is None or watch.reference[0] != release:
            datasets = [a for a in ledger.artifacts(release) if a.kind == "dataset"]
            if not datasets:
                return None
            data = datasets[0]
            try:
                frame = reference_frame(self.project.root, data.md5, data.path)
            except ReleaseError as exc:  # e.g. not in the DVC cache: drift unmeasured
                self.log(f"{service}/{env}: drift not measured: {exc}")
                frame = {}
            watch.reference = (release, frame)
        reference = watch.reference[1]
        if not reference:
            return None
        numeric = [
            name
            for name, column in reference.items()
            if column and all(isinstance(v, int | float) for v in column[:20])
        ]
        labels = [name for name in reference if name not in numeric]
        rows = [MonitorRow(r.t, r.request_id, r.features, r.prediction, r.target) for r in records]
        features = [name for name in numeric if any(name in r.features for r in records)]
        result = drift_report(
            reference, rows, features=features, label_column=labels[0] if labels else None
        )
        found = {f.name: f.psi for f in result.features if f.psi is not None}
        if result.predictions is not None and result.predictions.distance is not None:
            found["prediction"] = result.predictions.distance
        return found

    def _accuracy(
        self,
        store: Any,
        ledger: Any,
        service: str,
        env: str,
        release: str | None,
        policy: dict[str, Any],
        now: int,
    ) -> tuple[float, float] | None:
        """(live accuracy over the drift window, the release's offline accuracy)."""
        if release is None:
            return None
        window = int(policy["drift_window_minutes"]) * 60
        pairs = store.feedback_join(service, env, now - window, now)
        if len(pairs) < int(policy["drift_min_records"]):
            return None
        from core.metrics_file import flatten_metrics
        from store import ReleaseNotFound

        try:
            metrics = ledger.get_release(release).metrics
        except ReleaseNotFound:
            return None
        offline = [v for k, v in _flat(flatten_metrics, metrics).items() if k.endswith("accuracy")]
        if not offline:
            return None
        live = sum(1 for prediction, label in pairs if prediction == label) / len(pairs)
        return live, float(offline[0])

    # ------------------------------------------------------------------ state

    def _watch(self, service: str, env: str, policy: dict[str, Any]) -> _Watch:
        from core.alerting import Rules

        key = (service, env)
        if key not in self.watches:
            saved = self._saved.get(f"{service}/{env}", {})
            rules = (
                Rules.from_dict(saved["rules"], policy)
                if "rules" in saved
                else Rules(policy, service=service, env=env)
            )
            self.watches[key] = _Watch(
                rules, saved.get("last_minute"), reader_states=saved.get("readers", {})
            )
        return self.watches[key]

    def _reader(self, watch: _Watch, folder: Path) -> Any:
        from core.monitor_log import MonitorReader

        key = str(folder)
        if key not in watch.readers:
            watch.readers[key] = MonitorReader(folder, watch.reader_states.get(key))
        return watch.readers[key]

    def _load_state(self) -> dict[str, Any]:
        try:
            loaded = json.loads((self.project.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _save_state(self) -> None:
        state = {
            f"{service}/{env}": {
                "rules": watch.rules.to_dict(),
                "last_minute": watch.last_minute,
                "readers": {key: reader.state() for key, reader in watch.readers.items()},
            }
            for (service, env), watch in self.watches.items()
        }
        path = self.project.state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        os.replace(temporary, path)

    # ------------------------------------------------------------------ the process

    def run(self, *, once: bool = False) -> int:
        """Claim the project's collector slot and collect until SIGTERM (or one pass).
        A failing pass is one logged line and the next pass goes on; only a full disk, or
        another collector taking over, stops it."""
        from store.metrics import MetricStore

        pid, host = os.getpid(), this_host()
        self._store = MetricStore.open(metrics_path(self.project))
        store = self._store
        try:
            if not store.claim_collector(pid, host, int(self.clock())):
                holder = store.collector()
                dead = holder is not None and holder.host == host and not pid_alive(holder.pid)
                if not (
                    dead and store.claim_collector(pid, host, int(self.clock()), stale_after=0)
                ):
                    who = f"pid {holder.pid} on {holder.host}" if holder else "another process"
                    raise BlockedError(
                        f"a collector already runs for this project ({who}); `relman down` stops it"
                    )
                self.log(f"took over from collector pid {holder.pid if holder else '?'}, gone")
            stop = _stop_on_signals()
            while True:
                started = time.monotonic()
                try:
                    report = self.run_pass()
                    if not store.heartbeat(pid, int(self.clock())):
                        raise BlockedError("another collector took over this project; stopping")
                except StoreError as exc:
                    if "disk full" in str(exc):
                        self.log(str(exc))
                        return 3
                    self.log(f"pass failed, retrying next interval: {exc}")
                    report = PassReport(int(self.clock()))
                except BlockedError:
                    raise
                except Exception as exc:
                    self.log(f"pass failed, retrying next interval: {type(exc).__name__}: {exc}")
                    report = PassReport(int(self.clock()))
                if once:
                    self.log(
                        f"scraped {', '.join(report.scraped) or 'nothing'}; "
                        f"{len(report.transitions)} alert change(s)"
                    )
                    return 0
                stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
                if stop.is_set():
                    return 0
        finally:
            with contextlib.suppress(StoreError):
                store.release_collector(pid)
            store.close()
            self._store = None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _policy(project: Project, service: str, env: str) -> dict[str, Any]:
    from core.policies import effective_policy

    return dict(effective_policy(project, service, env).values)


def _flat(flatten: Callable[[Any], dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for values in metrics.values():
        if isinstance(values, dict):
            flat.update(flatten(values))
    return flat


def _stop_on_signals() -> Any:
    import threading

    event = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        event.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)
    return event


# ---------------------------------------------------------------------- lifecycle


def collector_pid(project: Project) -> int | None:
    """The pid of the project's running collector, if one runs."""
    from store.metrics import MetricStore

    path = metrics_path(project)
    if not path.exists():
        return None
    with MetricStore.open(path, readonly=True) as store:
        row = store.collector()
    if row is None or row.host != this_host():
        return None
    return row.pid if carries_tag(row.pid, collector_tag(project)) else None


def ensure_collector(project: Project) -> int | None:
    """Start the project's collector, detached, unless one runs; its pid when started."""
    if collector_pid(project) is not None:
        return None
    project.state_dir.mkdir(parents=True, exist_ok=True)
    environ = {**os.environ, TAG_VARIABLE: collector_tag(project)}
    with (project.state_dir / "collector.log").open("ab") as output:
        child = subprocess.Popen(
            [sys.executable, "-m", "tui", "--project", str(project.root), "--batch", "monitor"],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    return child.pid


def stop_collector(project: Project) -> bool:
    """Stop the project's collector (and anything it started); True when one ran."""
    pid = collector_pid(project)
    with contextlib.suppress(ProcessLookupError):
        return stop_tagged(collector_tag(project), pid)
    return False

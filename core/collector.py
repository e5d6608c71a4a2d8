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
from core.errors import BlockedError, InfraError, ReleaseError
from core.processes import TAG_VARIABLE, carries_tag, stop_tagged
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
        self._saved = self._load_state()
        for service in project.config.services:
            for env in project.config.environments:
                self.policies[(service, env)] = _policy(project, service, env)

    @property
    def interval(self) -> float:
        return float(min(float(p["scrape_interval"]) for p in self.policies.values()))

    # ------------------------------------------------------------------ one pass

    def run_pass(self) -> PassReport:
        from core.releases import open_ledger
        from store.metrics import MetricStore

        now = int(self.clock())
        report = PassReport(now)
        with (
            open_ledger(self.project, read_only=True) as ledger,
            MetricStore.open(metrics_path(self.project)) as store,
        ):
            states = {(s.service, s.env): s for s in ledger.environment_states()}
            for (service, env), policy in self.policies.items():
                state = states.get((service, env))
                if state is None or state.release_id is None:
                    continue  # never deployed here
                try:
                    self._visit(store, ledger, service, env, state, policy, now, report)
                except ReleaseError as exc:
                    report.problems.append(f"{service}/{env}: {exc}")
            if now - self.last_prune >= PRUNE_EVERY:
                policy = next(iter(self.policies.values()))
                store.prune(
                    now,
                    float(policy["raw_retention_hours"]),
                    float(policy["rollup_retention_days"]),
                )
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
        from store.metrics import Feedback, Record, ScrapeRow

        watch = self._watch(service, env, policy)
        target = target_for(self.project, service, env)
        serving = target.serving()
        release = serving.release if serving is not None else state.release_id
        if serving is not None:
            try:
                scrape = parse_scrape(fetch_metrics(serving.address), now)
            except InfraError as exc:
                report.problems.append(f"{service}/{env}: {exc}")
            else:
                report.problems += [f"{service}/{env}: {p}" for p in scrape.problems]
                if scrape.complete:
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
                    rows = self._reader(watch, folder).read()
                    store.add_records(
                        Record(service, env, r.t, release, r.request_id, r.features,
                               r.prediction, r.target)
                        for r in rows
                    )  # fmt: skip
                    store.add_feedback(
                        Feedback(service, env, r.request_id, r.target, r.t)
                        for r in rows
                        if r.target is not None and r.request_id
                    )
        if state.state not in HEALTHY and serving is None:
            return  # stopped on purpose (relman down): nothing to watch or alert on
        self._evaluate(store, ledger, watch, service, env, release, policy, now, report)

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
            drift = self._drift(store, ledger, watch, service, env, release, policy, now)
            transitions = watch.rules.evaluate(
                minute,
                point,
                release=release,
                up=bool(scrapes),
                drift=drift if newest else None,
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
            watch.reference = (release, reference_frame(self.project.root, data.md5, data.path))
        reference = watch.reference[1]
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
        """Claim the project's collector slot and collect until SIGTERM (or one pass)."""
        from store.metrics import MetricStore

        pid, host = os.getpid(), this_host()
        with MetricStore.open(metrics_path(self.project)) as store:
            if not store.claim_collector(pid, host, int(self.clock())):
                holder = store.collector()
                who = f"pid {holder.pid} on {holder.host}" if holder else "another process"
                raise BlockedError(
                    f"a collector already runs for this project ({who}); `relman down` stops it"
                )
        stop = _stop_on_signals()
        try:
            while True:
                started = time.monotonic()
                report = self.run_pass()
                with MetricStore.open(metrics_path(self.project)) as store:
                    if not store.heartbeat(pid, int(self.clock())):
                        raise BlockedError("another collector took over this project; stopping")
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
            with MetricStore.open(metrics_path(self.project)) as store:
                store.release_collector(pid)


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

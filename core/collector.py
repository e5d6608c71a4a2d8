"""`relman monitor`: the collector that fills the metric store from the live environments.

One collector per project (a claim with a heartbeat in the metric store). Every scrape
interval it visits each (service, environment) recorded live in the ledger:

1. scrapes ``/metrics`` of the instance the environment routes to (core.scrape) and reads
   the instance's new ``bentoml.monitor`` rows (core.monitor_log): inputs, predictions and
   targets (a target is ground truth: it also goes to the feedback table);
2. stores them in one transaction (store.metrics). A store locked past its busy timeout
   loses nothing: the scrapes wait in memory for the next pass (at most
   ``MAX_PENDING_SCRAPES`` per environment, the oldest dropped beyond, with a warning) and
   the monitor readers go back to the offsets last stored, so the rows are read again. A
   full disk stops the collector (one line, exit 3);
3. once everything scraped is stored, for every minute completed since the last pass,
   writes the per-minute rollup and feeds it to the alert rules of the effective policy
   (core.policies, core.alerting), with drift (core.drift: PSI of the last window against
   the live release's training data) and live accuracy (feedback joined to predictions)
   for the newest minute; persists each alert transition. A minute whose writes fail is
   evaluated again next pass, its rules as they were before it;
4. posts each firing alert, and the resolution of one that fired, to the policy's webhook
   once the minute is stored; a post that fails is tried again next pass, in order;
5. prunes what is older than the retention, now and then.

The rules' state, the monitor readers' stored offsets and the webhook posts not yet
delivered are saved to ``.relman/collector.json`` after every pass, so a restarted
collector goes on where it stopped.
"""

from __future__ import annotations

import contextlib
import copy
import errno
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
# Scrapes held per environment while the store is locked: over an hour at the 5 s default.
MAX_PENDING_SCRAPES = 1000
# Webhook posts held while the endpoint fails; the oldest are dropped beyond.
MAX_PENDING_POSTS = 100
# A training-data reference that could not be read is looked for again after this long.
REFERENCE_RETRY = 600


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
    # The offsets of what is stored, by folder: a reader whose rows were not stored starts
    # again from here (and these are what collector.json keeps).
    reader_states: dict[str, Any] = field(default_factory=dict)
    failed_minutes: set[int] = field(default_factory=set)  # a scrape was tried and failed
    pending: list[Any] = field(default_factory=list)  # ScrapeRows not stored yet
    dropped: int = 0  # pending scrapes dropped over the cap since the store last took some
    # (release, training data, when it was read); no data when it could not be read.
    reference: tuple[str, dict[str, list[Any]], int] | None = None
    said: set[str] = field(default_factory=set)  # lines logged once
    scrape_warning: str | None = None  # the last one logged: repeats are not


@dataclass
class PassReport:
    t: int
    scraped: list[str] = field(default_factory=list)  # stored this pass
    problems: list[str] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    busy: bool = False  # the metric store was locked: some writes wait for the next pass


@dataclass
class _Visit:
    """One (service, environment) in one pass."""

    service: str
    env: str
    release: str | None
    policy: dict[str, Any]
    now: int
    watch: _Watch
    report: PassReport

    @property
    def name(self) -> str:
        return f"{self.service}/{self.env}"

    def problem(self, line: str) -> None:
        self.report.problems.append(f"{self.name}: {line}")

    def once(self, line: str) -> None:
        """A problem said once per collector process (the next passes meet it again)."""
        if line not in self.watch.said:
            self.watch.said.add(line)
            self.problem(line)


class Collector:
    def __init__(
        self,
        project: Project,
        *,
        log: Log = _quiet,
        clock: Callable[[], float] = time.time,
        busy_timeout: float | None = None,
    ) -> None:
        self.project = project
        self.log = log
        self.clock = clock
        self.busy_timeout = busy_timeout  # None: the store's default
        self.watches: dict[tuple[str, str], _Watch] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_prune = 0.0
        self._store: Any = None  # store.metrics.MetricStore, opened on the first pass
        self._config_mtime = _mtime(project.config_path)
        self._saved = self._load_state()
        # Webhook posts not delivered yet, oldest first: {"url", "document"}.
        saved_posts = self._saved.pop("_webhooks", [])
        self.posts: list[dict[str, Any]] = [
            post
            for post in (saved_posts if isinstance(saved_posts, list) else [])
            if isinstance(post, dict) and {"url", "document"} <= post.keys()
        ]
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

    def _open_store(self) -> Any:
        from store.metrics import MetricStore

        if self._store is None:  # one open per process: a write open checks the whole file
            path = metrics_path(self.project)
            self._store = (
                MetricStore.open(path)
                if self.busy_timeout is None
                else MetricStore.open(path, busy_timeout=self.busy_timeout)
            )
        return self._store

    # ------------------------------------------------------------------ one pass

    def run_pass(self) -> PassReport:
        """Visit every environment once. Raises MetricStoreFull (stop) and the other
        StoreErrors of the store itself; anything else one environment meets is a problem
        line of the report, and the other environments are visited all the same."""
        from core.releases import open_ledger
        from store.metrics import MetricStoreBusy

        now = int(self.clock())
        report = PassReport(now)
        self._reload_if_changed()
        store = self._open_store()
        try:
            with open_ledger(self.project, read_only=True) as ledger:
                states = {(s.service, s.env): s for s in ledger.environment_states()}
                for (service, env), policy in self.policies.items():
                    state = states.get((service, env))
                    if state is None or state.release_id is None:
                        continue  # never deployed here
                    try:
                        self._visit(store, ledger, service, env, state, policy, report)
                    except StoreError:
                        raise  # the store itself failed: the caller decides (disk full stops)
                    except Exception as exc:
                        line = " ".join(f"{type(exc).__name__}: {exc}".split())
                        report.problems.append(f"{service}/{env}: {line}")
            if now - self.last_prune >= PRUNE_EVERY and not report.busy:
                # The longest retention any environment asks for: nothing is pruned early.
                raw = max(float(p["raw_retention_hours"]) for p in self.policies.values())
                rolled = max(float(p["rollup_retention_days"]) for p in self.policies.values())
                try:
                    store.prune(now, raw, rolled)
                    self.last_prune = now
                except MetricStoreBusy:
                    report.busy = True  # pruned next pass
            self._deliver(report)
        finally:
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
        report: PassReport,
    ) -> None:
        from core.targets import target_for
        from store.metrics import MetricStoreBusy

        watch = self._watch(service, env, policy)
        serving = target_for(self.project, service, env).serving()
        release = serving.release if serving is not None else state.release_id
        visit = _Visit(service, env, release, policy, report.t, watch, report)
        # Stopped on purpose (relman down): nothing serves, and that is no outage.
        stopped = state.state not in HEALTHY and serving is None
        rows: dict[str, list[Any]] = {}
        try:
            if serving is not None:
                self._scrape(visit, serving.address)
                self._read_logs(visit, serving.log, rows)
            elif stopped:
                # Nor are the minutes in which a scrape failed while it was being stopped.
                watch.failed_minutes.clear()
            else:
                watch.failed_minutes.add(visit.now - visit.now % 60)
            if not report.busy:
                self._store_batch(store, visit, rows)
                rows = {}
                self._evaluate(store, ledger, visit, watching=not stopped)
        except MetricStoreBusy as exc:
            report.busy = True
            held = len(watch.pending)
            visit.problem(f"{exc} (the collector holds {held} scrape(s) and tries next pass)")
        finally:
            # Rows not stored are read again next pass, from the offsets last stored.
            for folder in rows:
                watch.readers.pop(folder, None)
        # Scrapes not stored wait in memory, up to a cap.
        if len(watch.pending) > MAX_PENDING_SCRAPES:
            excess = len(watch.pending) - MAX_PENDING_SCRAPES
            del watch.pending[:excess]
            if not watch.dropped:
                visit.problem(
                    f"the metric store stayed locked for over {MAX_PENDING_SCRAPES} scrapes; the "
                    "oldest are dropped from now on (counters are cumulative: request counts "
                    "stay right, those minutes get no rollup); find what holds .relman/metrics.db"
                )
            watch.dropped += excess

    def _scrape(self, visit: _Visit, address: str) -> None:
        """Scrape the instance: its row joins the pending batch, or the minute is marked
        failed; what was wrong with the answer is said once, until it changes."""
        from core.scrape import fetch_metrics, parse_scrape
        from store.metrics import ScrapeRow

        watch, now = visit.watch, visit.now
        try:
            scrape = parse_scrape(fetch_metrics(address), now)
        except InfraError as exc:
            visit.problem(str(exc))
            watch.failed_minutes.add(now - now % 60)
            return
        problems = "; ".join(scrape.problems)
        warning = None
        if scrape.release and scrape.release != visit.release:
            warning = (
                f"/metrics of {address} reports release {scrape.release}, not "
                f"{visit.release}; scrape skipped"
            )
        elif not scrape.complete:
            warning = f"incomplete scrape of {address} not stored (the next covers it): {problems}"
        else:
            counters = (scrape.requests, scrape.errors, scrape.in_progress, dict(scrape.buckets))
            watch.pending.append(ScrapeRow(visit.service, visit.env, now, visit.release, *counters))
            warning = f"/metrics of {address}: {problems}" if problems else None
        if warning is not None and warning != watch.scrape_warning:
            visit.problem(warning)
        watch.scrape_warning = warning

    def _read_logs(self, visit: _Visit, log: str | None, rows: dict[str, list[Any]]) -> None:
        """The new monitor rows of the instance into ``rows``, by folder (the readers move
        on in memory; the offsets kept move only once the rows are stored)."""
        from core.monitor_log import MonitorReader, monitor_folders

        watch = visit.watch
        if not log:
            return
        for folder in monitor_folders(Path(log).parent / "monitoring").values():
            key = str(folder)
            if key not in watch.readers:
                watch.readers[key] = MonitorReader(folder, watch.reader_states.get(key))
            reader = watch.readers[key]
            rows[key] = reader.read()
            for problem in reader.problems:
                visit.problem(f"{folder.name}: {problem}")

    def _store_batch(self, store: Any, visit: _Visit, rows: dict[str, list[Any]]) -> None:
        """The pending scrapes and the new rows, in one transaction: all stored, or none."""
        from store.metrics import Feedback, Record

        service, env, release, watch = visit.service, visit.env, visit.release, visit.watch
        found = [r for folder in rows.values() for r in folder]
        records = [
            Record(service, env, r.t, release, r.request_id, r.features, r.prediction, r.target)
            for r in found
        ]
        # A target-role column is ground truth: joined like `relman feedback` rows.
        feedback = [
            Feedback(service, env, r.request_id, r.target, r.t)
            for r in found
            if r.target is not None and r.request_id
        ]
        pending = list(watch.pending)
        store.add_batch(pending, records, feedback)
        del watch.pending[: len(pending)]
        for key in rows:
            watch.reader_states[key] = watch.readers[key].state()
        if pending and pending[-1].t == visit.now:
            visit.report.scraped.append(visit.name)
        if watch.dropped:
            visit.problem(
                f"the metric store takes writes again; {len(pending)} held scrape(s) stored, "
                f"{watch.dropped} dropped while it was locked"
            )
            watch.dropped = 0

    def _evaluate(self, store: Any, ledger: Any, visit: _Visit, *, watching: bool) -> None:
        """Roll up and judge every minute completed since the last pass. Not ``watching``
        (stopped on purpose): rollups and rules go on, drift and accuracy rest."""
        from store.metrics import AlertChange, rollup

        watch, service, env = visit.watch, visit.service, visit.env
        current = visit.now - visit.now % 60
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
            values = rolled.point() if rolled is not None else None
            point: dict[str, float | None] = {
                name: getattr(values, name) if values is not None else None
                for name in ("rps", "error_rate", "p50_ms", "p95_ms", "p99_ms")
            }
            newest = watching and minute == minutes[-1]
            # Down only when a scrape was tried that minute and none succeeded; a minute
            # nobody looked at (the collector stopped) is no data, not an outage.
            up = bool(scrapes) or minute not in watch.failed_minutes
            # Judged on a copy: when its writes fail, the minute is judged again next pass
            # from the rules as they were (Rules skips a minute it has seen).
            rules = copy.deepcopy(watch.rules)
            transitions = rules.evaluate(
                minute,
                point,
                release=rolled.release if rolled is not None and rolled.release else visit.release,
                up=up,
                drift=self._drift(store, ledger, visit) if newest else None,
                accuracy=self._accuracy(store, ledger, visit) if newest else None,
            )
            changes = [_change(AlertChange, t) for t in transitions]
            # The rollup and the alert changes of the minute: all stored, or none.
            before = store.record_minute([rolled] if rolled is not None else [], changes)
            watch.rules, watch.last_minute = rules, minute
            watch.failed_minutes.discard(minute)
            webhook = visit.policy.get("webhook")
            for transition, was in zip(transitions, before, strict=True):
                document: dict[str, Any] = transition.document()
                visit.report.transitions.append(document)
                self.log(f"alert {transition.rule} {transition.state}: {transition.detail}")
                # On-call hears of a firing alert and of the resolution of one that fired,
                # not of a pending one that cleared.
                fired = transition.state == "resolved" and was == "firing"
                if webhook and (transition.state == "firing" or fired):
                    self.posts.append({"url": str(webhook), "document": document})

    def _deliver(self, report: PassReport) -> None:
        """Post the webhook documents waiting, oldest first; the first failure keeps it and
        those after it for the next pass (in order, one try per pass)."""
        from core.alerting import send_webhook

        if len(self.posts) > MAX_PENDING_POSTS:
            dropped = len(self.posts) - MAX_PENDING_POSTS
            del self.posts[:dropped]
            report.problems.append(
                f"webhook: the {dropped} oldest undelivered alert post(s) dropped; "
                f"{MAX_PENDING_POSTS} are kept while the endpoint fails"
            )
        while self.posts:
            problem = send_webhook(self.posts[0]["url"], self.posts[0]["document"])
            if problem:
                report.problems.append(f"{problem}; {len(self.posts)} post(s) kept, tried again")
                return
            self.posts.pop(0)

    def _drift(self, store: Any, ledger: Any, visit: _Visit) -> dict[str, float] | None:
        """PSI per feature (and ``prediction`` for the class mix) over the drift window,
        against the training data of the live release; None until enough records, or when
        it cannot be measured (said once: the other rules go on)."""
        if visit.release is None:
            return None
        window = int(visit.policy["drift_window_minutes"]) * 60
        now = visit.now
        records = store.records(visit.service, visit.env, now - window, now, release=visit.release)
        if len(records) < int(visit.policy["drift_min_records"]):
            return None
        try:
            reference = self._reference(ledger, visit.watch, visit.release, now)
            return _drift_of(reference, records) if reference else None
        except Exception as exc:  # not in the DVC cache, a damaged table, ...
            reason = str(exc) if isinstance(exc, ReleaseError) else f"{type(exc).__name__}: {exc}"
            visit.once(f"drift not measured: {reason}")
            return None

    def _reference(self, ledger: Any, watch: _Watch, release: str, now: int) -> dict[str, Any]:
        """The live release's training data, read once per release (looked for again every
        REFERENCE_RETRY seconds while it cannot be read: `dvc pull` may bring it)."""
        from core.drift import reference_frame

        known = watch.reference
        fresh = known is not None and (bool(known[1]) or now - known[2] < REFERENCE_RETRY)
        if known is not None and known[0] == release and fresh:
            return known[1]
        watch.reference = (release, {}, now)
        datasets = [a for a in ledger.artifacts(release) if a.kind == "dataset"]
        if not datasets:
            return {}
        frame = reference_frame(self.project.root, datasets[0].md5, datasets[0].path)
        watch.reference = (release, frame, now)
        return frame

    def _accuracy(self, store: Any, ledger: Any, visit: _Visit) -> tuple[float, float] | None:
        """(live accuracy over the drift window, the release's offline accuracy)."""
        if visit.release is None:
            return None
        window = int(visit.policy["drift_window_minutes"]) * 60
        pairs = store.feedback_join(visit.service, visit.env, visit.now - window, visit.now)
        if len(pairs) < int(visit.policy["drift_min_records"]):
            return None
        from core.metrics_file import flatten_metrics
        from store import ReleaseNotFound

        try:
            metrics = ledger.get_release(visit.release).metrics
            flat = _flat(flatten_metrics, metrics)
            offline = [v for k, v in flat.items() if k.endswith("accuracy")]
            if not offline:
                return None
            live = sum(1 for prediction, label in pairs if prediction == label) / len(pairs)
            return live, float(offline[0])
        except ReleaseNotFound:
            return None
        except Exception as exc:  # a metrics file of an odd shape: the other rules go on
            visit.once(f"live accuracy not measured: {type(exc).__name__}: {exc}")
            return None

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
                rules, saved.get("last_minute"), reader_states=dict(saved.get("readers", {}))
            )
        return self.watches[key]

    def _load_state(self) -> dict[str, Any]:
        try:
            loaded = json.loads((self.project.state_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _save_state(self) -> None:
        from store.db import display_path
        from store.metrics import MetricStoreFull

        state: dict[str, Any] = {
            f"{service}/{env}": {
                "rules": watch.rules.to_dict(),
                "last_minute": watch.last_minute,
                "readers": watch.reader_states,  # what is stored, not what was read
            }
            for (service, env), watch in self.watches.items()
        }
        state["_webhooks"] = self.posts
        path = self.project.state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(state))
            os.replace(temporary, path)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise MetricStoreFull(
                    f"{display_path(path)}: disk full; free space, the collector stops"
                ) from exc
            raise

    # ------------------------------------------------------------------ the process

    def run(self, *, once: bool = False) -> int:
        """Claim the project's collector slot and collect until SIGTERM (or one pass).
        A failing pass is one logged line and the next pass goes on; a full disk stops it
        (its line, exit 3), another collector holding or taking over the project too
        (BlockedError, exit 1)."""
        from store.metrics import MetricStoreFull

        pid, host = os.getpid(), this_host()
        store = self._open_store()
        try:
            if not store.claim_collector(pid, host, int(self.clock())):
                holder = store.collector()
                dead = holder is not None and holder.host == host and not pid_alive(holder.pid)
                now = int(self.clock())
                if not (dead and store.claim_collector(pid, host, now, replacing=holder.pid)):
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
                    # A locked store would make the heartbeat wait as long again: skip it.
                    if not report.busy and not store.heartbeat(pid, int(self.clock())):
                        raise BlockedError("another collector took over this project; stopping")
                except MetricStoreFull as exc:
                    self.log(str(exc))
                    return 3
                except StoreError as exc:
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
                    held = sum(len(watch.pending) for watch in self.watches.values())
                    if held:  # no next pass to store them: say so, and fail
                        self.log(
                            f"{held} scrape(s) not stored: .relman/metrics.db stayed locked; "
                            "run `relman monitor --once` again once it is free"
                        )
                        return 3
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


def _drift_of(reference: dict[str, list[Any]], records: list[Any]) -> dict[str, float]:
    """PSI per numeric feature of the records against the reference, and the distance of
    the prediction mix (``prediction``) against its label column."""
    from core.drift import drift_report
    from core.monitor_log import MonitorRow

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


def _change(change: Any, transition: Any) -> Any:
    """The store's AlertChange (class ``change``) of a core.alerting Transition."""
    t = transition
    fields = (t.since_minute, t.state, t.value, t.detail, t.release, t.rollback)
    return change(t.rule, t.kind, t.service, t.env, *fields)


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

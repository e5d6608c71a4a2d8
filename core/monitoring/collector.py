"""`relman monitor`: the collector that fills the metric store from the live environments.

One collector per project (a claim with a heartbeat in the metric store). Every scrape
interval it visits each (service, environment) recorded live in the ledger:

1. scrapes ``/metrics`` of the instance the environment routes to (core.monitoring.scrape) and reads
   the instance's new ``bentoml.monitor`` rows (core.targets.monitor_log): inputs, predictions
   and
   targets (a target is ground truth: it also goes to the feedback table); and the new
   lines of the proxy's access log: each request's latency, counted in a log-linear
   histogram of its minute (core.monitoring.latency_log);
2. stores them in one transaction (store.metrics.store), with the monitor readers' offsets
   and the access log's they were read up to. A store locked past its busy timeout loses
   nothing: the scrapes
   wait in memory for the next pass (at most ``MAX_PENDING_SCRAPES`` per environment, the
   oldest dropped beyond, with a warning) and the monitor readers go back to the offsets
   last stored, so the rows are read again. A full disk stops the collector (one line,
   exit 3);
3. once everything scraped is stored, for every minute completed since the last pass (and
   whose access-log lines are all read: they come up to a few seconds late), writes the
   per-minute rollup, its percentiles from the proxy's latencies when the minute has
   any (else from the scrapes' histogram), and feeds it to the alert rules of the effective
   policy
   (core.alerts.policies, core.alerts.alerting), with drift and live accuracy
   (core.monitoring.model_quality) for
   the newest minute; persists each alert transition, and queues the webhook posts they
   make, in the same transaction. A minute whose writes fail is evaluated again next
   pass, its rules as they were before it;
4. posts each firing alert, and the resolution of one that fired, to the policy's webhook
   from the store's outbox; a post that fails is tried again next pass, in order
   (core.alerts.webhook);
5. prunes what is older than the retention, now and then; keeps ``[monitoring] file_sd``'s
   list of the running instances (core.monitoring.file_sd), rewritten when it changes and
   once more on the way out (after `relman down`: empty).

With ``[monitoring] source = "prometheus"`` step 1 reads the counters from Prometheus
instead of ``/metrics`` (core.monitoring.prom_feed): the samples since the last row stored,
of the release live then, as the same rows; a minute is judged once Prometheus answered
past its end, so one that is down or slow holds the minutes back (one line, said once)
and they are caught up when it answers (docs/prometheus.md). What is wrong with the
source now goes to ``.relman/collector-problems.json`` for `relman metrics` and the TUI.

Where the effective policy sets ``auto_rollback``, an alert that starts firing is handed to
the action the collector was given (``on_firing``, core.monitoring.firing_action) before
the minute is stored: the line it answers (what was done, or why not) becomes the alert's
``rollback``, in the store and in the webhook post alike. The pass waits for it, keeping
the collector's heartbeat (the other environments are visited after); an alert of a minute
judged late (the collector catching up after a stop) pages but is not acted on.

The store is the record of what was consumed (offsets, posts), so a collector killed at
any point reads no monitor row twice and loses no post. The rules' state and the last
minute judged are saved to ``.relman/collector.json`` after every pass
(core.monitoring.collector_state): a restart after a crash judges the last minutes again, which
stores nothing twice. Starting, finding and stopping the collector process, and its claim
on the project, are core.monitoring.collector_process's.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.alerts.alertmanager import Alertmanager
from core.alerts.webhook import Outbox, announcer
from core.config.model import Project
from core.errors import BlockedError, InfraError, ReleaseError
from core.host.processes import this_host
from core.ledger.steps import Log
from core.ledger.steps import quiet as _quiet
from core.monitoring.collector_process import claim_slot, metrics_path, stop_on_signals
from core.monitoring.collector_state import (
    PassReport,
    PassSource,
    Visit,
    Watch,
    load_state,
    restore_watch,
    save_state,
    take_over_progress,
    write_problems,
)
from core.monitoring.firing_action import ACT_WITHIN_SECONDS, FiringAction, run_action
from core.monitoring.history import StoreHistory
from store.errors import StoreFailure

if TYPE_CHECKING:
    from core.alerts.alert_state import Transition
    from core.monitoring.file_sd import FileSd

PRUNE_EVERY = 600  # seconds between retention passes
CATCH_UP_SECONDS = 60 * 60  # after a long stop, the minutes judged go back this far
# A minute's rollup starts from the last scrape before it when that is this recent; older,
# the minute is measured from its own scrapes (a gap's requests are no one minute's).
BRIDGE_SECONDS = 120
HEALTHY = ("live",)
# Scrapes held per environment while the store is locked: over an hour at the 5 s default.
MAX_PENDING_SCRAPES = 1000


class Collector:
    def __init__(
        self,
        project: Project,
        *,
        log: Log = _quiet,
        clock: Callable[[], float] = time.time,
        busy_timeout: float | None = None,
        on_firing: FiringAction | None = None,
        state_dir: Path | None = None,
        store_path: Path | None = None,
    ) -> None:
        """``state_dir`` and ``store_path``: where its collector.json and metric store are
        (the project's ``.relman/`` by default; a benchmark's second collector keeps its own,
        it never runs()."""
        self.project = project
        self.state_dir = state_dir or project.state_dir
        self.store_path = store_path
        self.on_firing = on_firing
        self._pid: int | None = None  # the claim's, while run() holds it: heartbeats
        self.log = log
        self.clock = clock
        self.busy_timeout = busy_timeout  # None: the store's default
        self.watches: dict[tuple[str, str], Watch] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.last_prune = 0.0
        self._store: Any = None  # store.metrics.store.MetricStore, opened on the first pass
        self._config_mtime = _mtime(project.config_path)
        self._saved = load_state(self.state_dir)
        self._offsets: dict[tuple[str, str], dict[str, Any]] = {}  # stored, at the open
        self._access_offsets: dict[tuple[str, str], dict[str, Any]] = {}  # likewise
        self.outbox: Outbox | None = None  # the store's, once open
        self.source = PassSource(project)
        self.file_sd: FileSd | None = None  # [monitoring] file_sd's list, once a pass runs
        self._problems: dict[str, Any] | None = None  # PROBLEMS_FILE as last written
        for service in project.config.services:
            for env in project.config.environments:
                self.policies[(service, env)] = _policy(project, service, env)

    def _reload_if_changed(self) -> None:
        """relman.toml edited while the collector runs: new policies, new environments."""
        from core.alerts.alerting import Rules
        from core.config.model import load_project

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
        self.source.configure(project)
        for key, watch in self.watches.items():
            if key in policies:
                watch.rules = Rules.from_dict(watch.rules.to_dict(), policies[key])
        self.log("relman.toml changed: policies reloaded")

    @property
    def interval(self) -> float:
        return float(min(float(p["scrape_interval"]) for p in self.policies.values()))

    def _open_store(self) -> Any:
        from store.metrics.store import MetricStore

        if self._store is None:  # one open per process: a write open checks the whole file
            path = self.store_path or metrics_path(self.project)
            self._store = (
                MetricStore.open(path)
                if self.busy_timeout is None
                else MetricStore.open(path, busy_timeout=self.busy_timeout)
            )
        return self._store

    def _resume(self, store: Any) -> Outbox:
        """What the store says was consumed, read once per open, before the first pass
        reads or posts anything (and after run()'s claim: only the project's collector
        takes over an older collector.json's offsets and posts)."""
        if self.outbox is None:
            self._saved, line = take_over_progress(store, self.state_dir, self._saved)
            if line:
                self.log(line)
            self._offsets = store.reader_offsets()
            self._access_offsets = store.access_offsets()
            self.outbox = Outbox(store)
        return self.outbox

    # ------------------------------------------------------------------ one pass

    def run_pass(self) -> PassReport:
        """Visit every environment once. Raises MetricStoreFull (stop) and the other
        StoreFailures of the store itself; anything else one environment meets is a problem
        line of the report, and the other environments are visited all the same."""
        from core.ledger.releases import open_ledger
        from store.metrics.store import MetricStoreBusy

        now = int(self.clock())
        report = PassReport(now)
        self._reload_if_changed()
        store = self._open_store()
        outbox = self._resume(store)
        self.source.begin_pass()
        try:
            with open_ledger(self.project, read_only=True) as ledger:
                found = ledger.environment_states()
                states = {(s.service, s.env): s for s in found}
                for (service, env), policy in self.policies.items():
                    state = states.get((service, env))
                    if state is None or state.release_id is None:
                        continue  # never deployed here
                    if self.project.config.environments[env].target != "local":
                        continue  # a cluster's metrics: not collected yet (docs/targets.md)
                    try:
                        self._visit(store, ledger, service, env, state, policy, report)
                    except StoreFailure:
                        raise  # the store itself failed: the caller decides (disk full stops)
                    except Exception as exc:
                        line = " ".join(f"{type(exc).__name__}: {exc}".split())
                        report.problems.append(f"{service}/{env}: {line}")
                self._keep_file_sd(ledger, found, report)
            self.source.end_pass(report)
            if now - self.last_prune >= PRUNE_EVERY and not report.busy:
                # The longest retention any environment asks for: nothing is pruned early.
                raw = max(float(p["raw_retention_hours"]) for p in self.policies.values())
                rolled = max(float(p["rollup_retention_days"]) for p in self.policies.values())
                try:
                    store.prune(now, raw, rolled)
                    self.last_prune = now
                except MetricStoreBusy:
                    report.busy = True  # pruned next pass
            report.problems.extend(outbox.deliver(Alertmanager.of(self.project), now))
        finally:
            save_state(self.state_dir, self.watches)
            self._write_problems()
            for line in report.problems:
                self.log(line)
        return report

    def _keep_file_sd(self, ledger: Any, states: list[Any], report: PassReport) -> None:
        """Rewrite [monitoring] file_sd's list when the running instances changed
        (core.monitoring.file_sd); a list that cannot be written is said once, until that
        changes."""
        from core.monitoring.file_sd import FileSd, file_sd_path

        path = file_sd_path(self.project)
        if path is None:
            return
        if self.file_sd is None or self.file_sd.path != path:
            self.file_sd = FileSd(path)
        try:
            written = self.file_sd.keep(self.project, ledger, states)
            problem = None
        except OSError as exc:
            written, problem = None, f"cannot write the file_sd list {path}: {exc.strerror or exc}"
        if written is not None:
            self.log(written)
        if problem is not None and problem != self.source.file_sd_problem:
            report.problems.append(problem)
        self.source.file_sd_problem = problem

    def _last_file_sd(self) -> None:
        """The file_sd list once more as the collector stops: after `relman down` (which
        stops it) nothing runs, and Prometheus should stop scraping too."""
        from core.ledger.releases import open_ledger

        if self.project.config.monitoring.file_sd is None:
            return
        report = PassReport(int(self.clock()))
        try:
            with open_ledger(self.project, read_only=True) as ledger:
                self._keep_file_sd(ledger, ledger.environment_states(), report)
        except Exception as exc:  # stopping: one line, never a crash of the way out
            report.problems.append(f"file_sd list not updated on the way out: {exc}")
        for line in report.problems:
            self.log(line)

    def _write_problems(self) -> None:
        """PROBLEMS_FILE, when what is wrong with the source changed."""
        document = {
            "source": self.project.config.monitoring.source,
            "problem": self.source.said,
            "environments": {
                f"{service}/{env}": watch.source_problem
                for (service, env), watch in self.watches.items()
                if watch.source_problem
            },
        }
        if document != self._problems:
            with contextlib.suppress(OSError):
                write_problems(self.state_dir, document)
                self._problems = document

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
        from store.metrics.store import MetricStoreBusy

        watch = self._watch(service, env, policy)
        target = target_for(self.project, service, env)
        serving = target.serving()
        release = serving.release if serving is not None else state.release_id
        visit = Visit(service, env, release, policy, report.t, watch, report)
        # Stopped on purpose (relman down): nothing serves, and that is no outage.
        stopped = state.state not in HEALTHY and serving is None
        rows: dict[str, list[Any]] = {}
        latencies_stored = False
        try:
            if self.source.client is not None:
                self._read_prometheus(store, ledger, visit, state, serving is not None)
            if serving is not None:
                if self.source.client is None:
                    self._scrape(visit, serving.address)
                self._read_logs(visit, serving.log, rows)
            elif stopped:
                # Nor are the minutes in which a scrape failed while it was being stopped.
                watch.failed_minutes.clear()
            else:
                watch.failed_minutes.add(visit.now - visit.now % 60)
            if not report.busy:
                # A target that keeps no access log (none in front of it): no latencies.
                latencies = self._read_access_log(visit, getattr(target, "access_log", None))
                self._store_batch(store, visit, rows, latencies)
                rows, latencies_stored = {}, True
                self._evaluate(store, ledger, visit, watching=not stopped)
        except MetricStoreBusy as exc:
            report.busy = True
            held = len(watch.pending)
            visit.problem(f"{exc} (the collector holds {held} scrape(s) and tries next pass)")
        finally:
            # Rows not stored are read again next pass, from the offsets last stored.
            for folder in rows:
                watch.readers.pop(folder, None)
            if not latencies_stored:  # the access log likewise, from its offsets stored
                watch.access = None
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

    def _scrape(self, visit: Visit, address: str) -> None:
        """Scrape the instance: its row joins the pending batch, or the minute is marked
        failed; what was wrong with the answer is said once, until it changes."""
        from core.monitoring.scrape import fetch_metrics, parse_scrape
        from store.metrics.store import ScrapeRow

        watch, now = visit.watch, visit.now
        try:
            scrape = parse_scrape(fetch_metrics(address), now)
        except InfraError as exc:
            visit.problem(str(exc))
            watch.failed_minutes.add(now - now % 60)
            watch.source_problem = str(exc)
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
        watch.scrape_warning = watch.source_problem = warning

    def _read_prometheus(
        self, store: Any, ledger: Any, visit: Visit, state: Any, serving: bool
    ) -> None:
        """The environment's samples since the last read, from Prometheus (core.monitoring.
        prom_feed): its rows join the pending batch, the minutes whose scrape failed are
        marked; a gap is one line, several series or none one line until that changes.
        Prometheus down or slow: nothing is read (this pass asks it no more), and the
        minutes wait for it (the watch's ``prom.final``)."""
        from core.monitoring.prom_feed import read_feed, release_at, start_cursor
        from core.monitoring.prom_source import PrometheusError

        watch, source = visit.watch, self.source
        if source.failed is not None or source.client is None:
            return
        if watch.prom is None:
            last = store.last_scrape(visit.service, visit.env)
            stored = last.t if last is not None else None
            watch.prom = start_cursor(stored, visit.now, CATCH_UP_SECONDS)
        try:
            feed = read_feed(
                source.client,
                self.project.config.monitoring.labels,
                service=visit.service,
                env=visit.env,
                cursor=watch.prom,
                now=visit.now,
                interval=float(visit.policy["scrape_interval"]),
                release_at=release_at(ledger, visit.service, visit.env, visit.release, state.since),
                catch_up=CATCH_UP_SECONDS,
                serving=serving,
            )
        except PrometheusError as exc:
            source.failed = str(exc)
            return
        watch.pending.extend(feed.rows)
        watch.failed_minutes |= feed.failed
        if feed.rows:
            visit.report.scraped.append(visit.name)
        for line in feed.gaps:
            visit.problem(line)
        if feed.warning is not None and feed.warning != watch.scrape_warning:
            visit.problem(feed.warning)
        watch.scrape_warning = watch.source_problem = feed.warning

    def _read_logs(self, visit: Visit, log: str | None, rows: dict[str, list[Any]]) -> None:
        """The new monitor rows of the instance into ``rows``, by folder (the readers move
        on in memory; the offsets kept move only once the rows are stored)."""
        from core.targets.monitor_log import MonitorReader, monitor_folders

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

    def _read_access_log(self, visit: Visit, path: Path | None) -> list[Any]:
        """The latencies of the access log's lines written since the last pass
        (store.metrics.latency.LatencyRow, by minute and release); the reader moves on in
        memory, its offsets kept move only once they are stored. A new reader (nothing
        stored) starts at the first minute the watch judges."""
        from core.monitoring.latency_log import AccessLatencyReader

        watch = visit.watch
        if path is None:
            return []
        if watch.access is None:
            current = visit.now - visit.now % 60
            first = current if watch.last_minute is None else watch.last_minute + 60
            watch.access = AccessLatencyReader(
                path,
                watch.access_state,
                service=visit.service,
                env=visit.env,
                floor=max(first, current - CATCH_UP_SECONDS),
            )
        latencies: list[Any] = watch.access.read()
        for problem in watch.access.problems:
            visit.once(problem)
        return latencies

    def _store_batch(
        self, store: Any, visit: Visit, rows: dict[str, list[Any]], latencies: list[Any]
    ) -> None:
        """The pending scrapes, the new rows and latencies and the readers' offsets after
        them, in one transaction: all stored, or none."""
        from store.metrics.collector import ReaderOffset
        from store.metrics.store import AccessOffset, Feedback, Record

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
        read = {key: watch.readers[key].state() for key in rows}
        offsets = [
            ReaderOffset(service, env, key, state)
            for key, state in read.items()
            if state != watch.reader_states.get(key)  # only those that moved
        ]
        access = watch.access.state() if watch.access is not None else None
        moved = [] if access in (None, watch.access_state) else [AccessOffset(service, env, access)]
        pending = list(watch.pending)
        store.add_batch(pending, records, feedback, offsets, latencies, moved)
        del watch.pending[: len(pending)]
        watch.reader_states.update(read)
        watch.access_state = access
        if pending and pending[-1].t == visit.now and visit.name not in visit.report.scraped:
            visit.report.scraped.append(visit.name)
        if watch.dropped:
            visit.problem(
                f"the metric store takes writes again; {len(pending)} held scrape(s) stored, "
                f"{watch.dropped} dropped while it was locked"
            )
            watch.dropped = 0

    def _evaluate(self, store: Any, ledger: Any, visit: Visit, *, watching: bool) -> None:
        """Roll up and judge every minute completed since the last pass. Not ``watching``
        (stopped on purpose): rollups and rules go on, drift and accuracy rest."""
        from store.metrics.store import AlertChange, rollup, with_latency

        watch, service, env = visit.watch, visit.service, visit.env
        current = visit.now - visit.now % 60
        if watch.last_minute is None:
            # A new watch starts with the minute in progress: the minutes before it were
            # not watched, and judging them now (no scrapes: "down") would be a false alarm.
            watch.last_minute = current - 60
        # A minute is judged once the access log is read past its end by the lines'
        # disorder: its latencies are all counted (core.monitoring.latency_log).
        final = watch.access.final(visit.now) if watch.access is not None else math.inf
        if self.source.client is not None:  # and Prometheus read past its end
            prom = watch.prom.final if watch.prom is not None else None
            final = min(final, -math.inf if prom is None else prom)
        if not math.isfinite(final) and final < 0:
            end = watch.last_minute + 60  # no time read from the log yet: nothing is judged
        else:
            end = current if final >= current else min(current, int(final - final % 60))
        # After a long stop, at most the last hour is caught up.
        minutes = list(range(max(watch.last_minute + 60, current - CATCH_UP_SECONDS), end, 60))
        for minute in minutes:
            previous = store.last_scrape(service, env, before=minute)
            if previous is not None and minute - previous.t > BRIDGE_SECONDS:
                previous = None  # across a gap: the minute is measured from its own scrapes
            scrapes = store.scrapes(service, env, minute, minute + 60)
            rolled = rollup(previous, scrapes, minute) if scrapes else None
            latency = store.latency_minute(service, env, minute)
            if rolled is not None:
                rolled = with_latency(rolled, latency)
            # The minute's latency in each of its 10-second bins that had requests: points
            # finer than a minute, for the rules' trend test (docs/monitoring.md).
            samples = _samples(latency, str(visit.policy.get("leak_metric") or "p95_ms"))
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
                drift=watch.quality.drift(store, ledger, visit) if newest else None,
                accuracy=watch.quality.accuracy(store, ledger, visit) if newest else None,
                samples=samples,
                history=StoreHistory(
                    store, service, env, rolled.latency_source if rolled is not None else None
                ),
            )
            if watching and visit.policy.get("auto_rollback") and self.on_firing is not None:
                # An alert that joined an incident of its cause was acted on with it.
                transitions = [
                    self._act(store, rules, t, visit)
                    if t.state == "firing"
                    and not t.grouped_with
                    and current - minute <= ACT_WITHIN_SECONDS
                    else t
                    for t in transitions
                ]
            # Then the open alerts whose line changed (their latest value and worst): stored,
            # never announced, so the store's line reads as the minutes do.
            changes = [_change(AlertChange, t) for t in [*transitions, *rules.refreshed]]
            documents: list[dict[str, Any]] = [t.document() for t in transitions]
            webhook = visit.policy.get("webhook")
            states = [t.state for t in transitions]
            manager = self.project.config.monitoring.alertmanager_url  # docs/prometheus.md
            announce = announcer(str(webhook) if webhook else None, states, documents, manager)
            # The rollup, the alert changes of the minute and their posts: all stored, or none.
            store.record_minute([rolled] if rolled is not None else [], changes, announce)
            watch.rules, watch.last_minute = rules, minute
            watch.failed_minutes.discard(minute)
            for transition, document in zip(transitions, documents, strict=True):
                visit.report.transitions.append(document)
                self.log(f"alert {transition.rule} {transition.state}: {transition.detail}")

    def _act(self, store: Any, rules: Any, transition: Transition, visit: Visit) -> Transition:
        """Hand a firing alert to ``on_firing`` (core.monitoring.firing_action), beating
        meanwhile; the transition saying what it did (unchanged: it did nothing, or failed)."""
        assert self.on_firing is not None
        outcome = run_action(self.on_firing, self.project, transition, lambda: self._beat(store))
        if outcome.error is not None:
            visit.problem(f"the action on alert {transition.rule} failed: {outcome.error}")
            return transition
        if outcome.line is None:
            return transition
        self.log(f"{visit.name}: alert {transition.rule}: {outcome.line}")
        acted: Transition = rules.acted(transition, outcome.line)
        return acted

    def _beat(self, store: Any) -> None:
        """The heartbeat of run()'s claim, while a pass waits on something long."""
        from store.metrics.store import MetricStoreBusy

        if self._pid is None:
            return
        with contextlib.suppress(MetricStoreBusy):
            if not store.heartbeat(self._pid, int(self.clock())):
                self.log("another collector took over this project; stopping after this pass")

    # ------------------------------------------------------------------ state

    def _watch(self, service: str, env: str, policy: dict[str, Any]) -> Watch:
        key = (service, env)
        if key not in self.watches:
            saved = self._saved.get(f"{service}/{env}", {})
            offsets = self._offsets.get(key, {})
            self.watches[key] = restore_watch(
                saved,
                offsets,
                policy,
                service=service,
                env=env,
                root=self.project.root,
                label=getattr(self.project.config.services.get(service), "label", None),
                access_state=self._access_offsets.get(key),
            )
        return self.watches[key]

    # ------------------------------------------------------------------ the loop

    def run(self, *, once: bool = False) -> int:
        """Claim the project's collector slot and collect until SIGTERM (or one pass).
        A failing pass is one logged line and the next pass goes on; a full disk stops it
        (its line, exit 3), another collector holding or taking over the project too
        (BlockedError, exit 1)."""
        from store.metrics.store import MetricStoreFull

        pid, host = os.getpid(), this_host()
        store = self._open_store()
        signals = contextlib.ExitStack()
        try:
            claim_slot(store, pid, host, self.clock, self.log)
            self._pid = pid
            stop = signals.enter_context(stop_on_signals())
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
                except StoreFailure as exc:
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
            signals.close()
            self._last_file_sd()
            with contextlib.suppress(StoreFailure):
                store.release_collector(pid)
            store.close()
            self._store = self.outbox = None
            self._pid = None


def _samples(latency: Any, metric: str) -> dict[str, list[float | None]] | None:
    """``{metric: [the metric in each 10-second bin of the minute, None where it had no
    request]}`` from the minute's exact latencies (store.metrics.latency.LatencyMinute), or
    None."""
    if latency is None or metric not in ("p50_ms", "p95_ms", "p99_ms"):
        return None
    field = metric.removesuffix("_ms")
    values = [float(getattr(b, field)) if b is not None else None for b in latency.sub]
    return {metric: values} if any(v is not None for v in values) else None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _policy(project: Project, service: str, env: str) -> dict[str, Any]:
    from core.alerts.policies import effective_policy

    return dict(effective_policy(project, service, env).values)


def _change(change: Any, transition: Any) -> Any:
    """The store's AlertChange (class ``change``) of a core.alerts.alerting Transition."""
    t = transition
    fields = (t.since_minute, t.state, t.value, t.detail, t.release, t.rollback)
    return change(t.rule, t.kind, t.service, t.env, *fields, getattr(t, "grouped_with", None))

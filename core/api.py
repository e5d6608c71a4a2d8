"""relman's public entry points. Front ends (the CLI, the batch renderer, every screen) call
these functions and nothing deeper; each returns plain data or raises a ReleaseError."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from core.cancel import Cancelled
from core.config.model import Project, load_project, shown_path
from core.errors import ConfigError, ProjectError, guard_entry_points
from core.ledger.steps import quiet as _quiet

if TYPE_CHECKING:  # the --json documents (docs/json.md), as types
    from core.documents import (
        AlertsDocument,
        BuildDocument,
        DeployDocument,
        GateDocument,
        HistoryDocument,
        MetricsDocument,
        StatusDocument,
        SuiteRunDocument,
    )
    from core.targets.logs import LogPosition, LogTail

__all__ = [
    "Cancelled",
    "EnvironmentView",
    "Project",
    "ServiceView",
    "access_log",
    "alerts",
    "approve",
    "audit_verify",
    "build",
    "ci_workflow",
    "create_demo",
    "current_user",
    "diff",
    "down",
    "drift",
    "failed_tests",
    "feedback",
    "firing_before",
    "first_screen",
    "flat_metrics",
    "forbid_writes",
    "gate",
    "github_annotations",
    "history",
    "human_size",
    "init_project",
    "live_at",
    "load_project",
    "metrics",
    "monitor",
    "one_dvc_session",
    "overview",
    "pipeline_cancel",
    "pipeline_explain",
    "pipeline_list",
    "pipeline_resume",
    "pipeline_run",
    "pipeline_runs",
    "policy_backtest",
    "policy_explain",
    "policy_export",
    "progress_lines",
    "promote",
    "promote_detached",
    "read_project",
    "recorded_overview",
    "release",
    "rollback",
    "rollback_target",
    "rollout_action",
    "rollout_status",
    "run_tests",
    "serve_log",
    "shown_path",
    "status",
    "traffic",
    "traffic_detached",
    "traffic_stop",
    "watch",
    "watch_detached",
    "watcher_status",
]


@dataclass(frozen=True)
class EnvironmentView:
    """What is known of one service in one environment."""

    name: str
    url: str | None  # None: a stage relman reads and does not serve
    # None while nothing has been deployed there.
    release: str | None = None
    version: str | None = None
    # "not deployed", or the state the ledger records ("live", "down", ...).
    state: str = "not deployed"
    since: str | None = None
    # The status document's note (what the state means) and, while interrupted, the
    # command that takes it over (docs/json.md, ``status``).
    note: str | None = None
    next_step: str | None = None
    # An open canary or shadow rollout there: {"id", "phase", "strategy", "weight",
    # "stable", "canary", "interrupted", "command"} (docs/json.md, ``status``).
    rollout: dict[str, Any] | None = None


@dataclass(frozen=True)
class ServiceView:
    name: str
    bento: str | None  # None: lineage only, nothing to build yet
    environments: list[EnvironmentView]


def overview(project: Project) -> list[ServiceView]:
    """Services x environments, in promotion order, with what the ledger knows of each (the
    alerts firing there are :func:`alerts`' answer, not read here)."""
    from core.delivery.status import environments

    live = environments(project, alerts=False)
    services = []
    for name, service in project.config.services.items():
        envs = [
            EnvironmentView(
                name=env_name,
                url=known["url"],
                release=known["release"],
                version=known["version"],
                state=str(known["state"]),
                since=known["since"],
                note=known.get("note"),
                next_step=known.get("next"),
                rollout=cast("dict[str, Any] | None", known.get("rollout")),
            )
            for env_name, known in live[name].items()
        ]
        services.append(ServiceView(name=name, bento=service.bento, environments=envs))
    return services


def recorded_overview(project: Project, *, busy_timeout: float = 0.1) -> list[ServiceView]:
    """:func:`overview` as the ledger last recorded it, for a first paint: one query through
    the standard library (no sqlite-utils), without upgrading an older ledger (that raises)
    nor looking at what really serves, which :func:`overview` does after. A ledger busy for
    ``busy_timeout`` seconds raises too."""
    from core.lineage.stages_held import held_stages

    recorded = []
    if project.ledger_path.exists():  # else nothing was recorded: spare the store's imports
        from store.ledger.snapshot import environment_states

        recorded = environment_states(project.ledger_path, busy_timeout=busy_timeout)
    states = {(state.service, state.env): state for state in recorded}
    held = held_stages(project)  # the stages relman reads and does not serve
    services = []
    for name, service in project.config.services.items():
        envs = []
        for env_name, env in project.config.environments.items():
            url = env.url
            state = states.get((name, env_name))
            if (name, env_name) in held:
                version, stage = held[(name, env_name)]
                envs.append(
                    EnvironmentView(
                        name=env_name, url=url, version=version, state=f"stage {stage} (git tags)"
                    )
                )
                continue
            if not env.served:
                envs.append(EnvironmentView(name=env_name, url=url, state="not served"))
                continue
            if state is None or state.release_id is None:
                envs.append(EnvironmentView(name=env_name, url=url))
                continue
            envs.append(
                EnvironmentView(
                    name=env_name,
                    url=state.url or url,
                    release=state.release_id,
                    version=state.version,
                    state=state.state,
                    since=state.since,
                )
            )
        services.append(ServiceView(name=name, bento=service.bento, environments=envs))
    return services


def first_screen(project_dir: Path | None = None) -> tuple[Project, list[ServiceView] | None]:
    """What the interface paints first, read in one go before it opens: the project
    (:func:`read_project` ``quick``: a broken relman.toml raises here, before the screen is
    taken over) and its rows as the ledger recorded them (:func:`recorded_overview`; None
    when they cannot be read so: an older schema, a busy or broken ledger, for the screen's
    first poll to say why). The git tags are read once for both: the stages of a repository
    without relman.toml, then the versions they hold."""
    from core.lineage.gitinfo import shared_tags

    with shared_tags():
        project = read_project(project_dir, quick=True)
        try:
            return project, recorded_overview(project)
        except Exception:  # whatever it is, the first poll reads again and says it
            return project, None


def create_demo(
    target: Path, *, force: bool = False, log: Callable[[str], None] | None = None
) -> Path:
    """Create the self-contained demo project in ``target``; return its root."""
    from core.scaffold.demo import create_demo as _create

    return _create(target, force=force, log=log)


def init_project(
    root: Path, *, force: bool = False, scaffold: bool = False, service: str | None = None
) -> dict[str, Any]:
    """Write relman.toml for an existing DVC repository (with a BentoML service or not; with
    ``scaffold``, a minimal one is written first; ``service``: the one of several models it
    serves); the ``init`` document: ``config`` (its path), ``services``, ``deployable``,
    ``serves``, ``next``."""
    from core.scaffold.init import init_project as _init

    written = _init(root, force=force, scaffold=scaffold, service=service)
    return {
        "ok": True,
        "config": str(written.path),
        "services": written.services,
        "deployable": written.deployable,
        "serves": written.serves,
        "next": written.next,
        "scaffolded": written.scaffolded,
        "notes": written.notes,
    }


def status(project: Project) -> StatusDocument:
    """The `status` document (docs/json.md): each service's candidate and its environments."""
    from core.delivery.status import build_status

    return build_status(project)


def flat_metrics(by_file: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Metrics ``{file: {key: value}}`` (nested as in the files) as one flat view with dotted
    keys, ``file:key`` where two files hold the same key."""
    from core.lineage.dvcinfo import flat_view

    return flat_view(by_file)


def human_size(size: float | None) -> str:
    """A byte count as every front end and report writes it, in binary units: ``1536`` ->
    ``1.5 KiB``; empty when unknown."""
    from core.delivery.summary import human_size as _human_size

    return _human_size(size)


def history(
    project: Project,
    *,
    service: str | None = None,
    env: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> HistoryDocument:
    """One page of history, newest first, with GTO registry tags merged in."""
    from core.ledger.history import history as _history

    return _history(project, service=service, env=env, limit=limit, before=before)


def live_at(
    project: Project, moment: str, *, service: str | None = None, env: str | None = None
) -> dict[str, Any]:
    """What was live in each environment at ``moment`` (ISO-8601 or HH:MM), made of what."""
    from core.ledger.history import live_at as _live_at
    from core.ledger.history import parse_moment

    return _live_at(project, parse_moment(moment), service=service, env=env)


def diff(project: Project, a: str, b: str) -> dict[str, Any]:
    """Two releases (id, id prefix or version; or ``candidate``) side by side."""
    from core.ledger.history import diff as _diff

    return _diff(project, a, b)


def audit_verify(project: Project) -> dict[str, Any]:
    """Check the audit log's hash chain."""
    from core.ledger.releases import open_ledger

    with open_ledger(project, read_only=True) as ledger:
        report = ledger.verify_chain()
    return {
        "ok": report.ok,
        "checked": report.checked,
        "first_broken": report.first_broken,
        "problem": report.problem,
        "detail": report.line,
    }


def run_tests(
    project: Project,
    suites: list[str] | None = None,
    *,
    junit: Path | None = None,
    on_event: Callable[[Any], None] | None = None,
    log: Callable[[str], None] | None = None,
    read_only: bool = False,
    cancel: threading.Event | None = None,
) -> SuiteRunDocument:
    """Run test suites (all declared when none named) against the candidate; record them.
    Setting ``cancel`` (from another thread) stops the suites' processes, records the runs
    cancelled and raises core.cancel.Cancelled (a ReleaseError, exit 1)."""
    from core.testing.suites import run_tests as _run_tests

    report = _run_tests(
        project,
        suites,
        junit=junit,
        on_event=on_event,
        log=log,
        read_only=read_only,
        cancel=cancel,
    )
    return report.to_dict()


def failed_tests(document: Mapping[str, Any]) -> list[str]:
    """``FAILED nodeid: message`` for each failing test of a run document (``test``,
    ``release``), in the order they ran."""
    from core.testing.failures import failure_lines

    return failure_lines(document)


def github_annotations(document: Mapping[str, Any]) -> list[str]:
    """The ``::error file=...,line=...::message`` workflow commands of a failed run's failing
    tests when GitHub Actions runs relman (``GITHUB_ACTIONS=true``); otherwise none."""
    from core.testing.failures import github_annotations as _annotations

    return _annotations(document)


def progress_lines(write: Callable[[str], None]) -> Callable[[Any], None]:
    """An ``on_event`` for :func:`run_tests` that writes a progress line for each suite's
    collection and end, and at most one every half second in between."""
    from core.testing.suites import ProgressThrottle

    return ProgressThrottle(write)


def gate(project: Project, service: str, env: str, *, release: str | None = None) -> GateDocument:
    """Dry run: every check that would block the candidate of ``service`` (or the recorded
    ``release``: id, id prefix or version) from ``env``."""
    from core.delivery.gating import gate_report

    return gate_report(project, service, env, release=release).to_dict()


def firing_before(project: Project, service: str, env: str, release: str) -> str | None:
    """Why the order gate blocks ``release`` from ``env``: alerts firing for it in the
    environment before (their lines; ``relman promote --force`` passes over them); None
    while none fires, or ``env`` is the first."""
    from core.delivery.firing import firing_line

    order = project.config.environment_order
    index = order.index(env)
    return firing_line(project, service, order[index - 1], release) if index > 0 else None


def promote(
    project: Project,
    service: str,
    env: str,
    *,
    release: str | None = None,
    force: bool = False,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    strategy: str | None = None,
    cancel: threading.Event | None = None,
) -> DeployDocument:
    """Deploy a release (default: the candidate) to ``env`` through its gates, all at once
    or by the rollout ``strategy`` (default: the environment's)."""
    from core.delivery.promote import promote as _promote

    return _promote(
        project,
        service,
        env,
        release=release,
        force=force,
        read_only=read_only,
        log=log or _quiet,
        strategy=strategy,
        cancel=cancel,
    ).to_dict()


def promote_detached(
    project: Project,
    service: str,
    env: str,
    *,
    release: str | None = None,
    strategy: str | None = None,
    force: bool = False,
    read_only: bool = False,
) -> dict[str, Any]:
    """:func:`promote` driven by a relman of its own in the background; returns once its
    rollout began (or it ended first: then its own document)."""
    from core.delivery.rollout_detach import promote_detached as _promote_detached

    return _promote_detached(
        project,
        service,
        env,
        release=release,
        strategy=strategy,
        force=force,
        read_only=read_only,
    )


def rollout_status(project: Project, service: str, env: str) -> dict[str, Any]:
    """The latest canary or shadow rollout of ``service`` in ``env`` (docs/json.md,
    ``rollout status``): phase, weight, steps and the latest analysis."""
    from core.delivery.rollout_control import rollout_status as _rollout_status

    return _rollout_status(project, service, env)


def rollout_action(
    project: Project,
    service: str,
    env: str,
    action: str,
    *,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``pause``, ``resume``, ``abort`` or ``promote`` the open rollout of ``service`` in
    ``env``; returns its document after (docs/rollouts.md)."""
    from core.delivery.rollout_control import rollout_action as _rollout_action

    return _rollout_action(project, service, env, action, read_only=read_only, log=log or _quiet)


def rollback(
    project: Project,
    service: str,
    env: str,
    *,
    to: str | None = None,
    reason: str = "",
    force: bool = False,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
) -> DeployDocument:
    """Back to the last release that was live in ``env`` (or the one named; one never live
    there needs ``env``'s approvals, or ``force`` with a ``reason``)."""
    from core.delivery.rollback import rollback as _rollback

    return _rollback(
        project,
        service,
        env,
        to=to,
        reason=reason,
        force=force,
        read_only=read_only,
        log=log or _quiet,
    ).to_dict()


def rollback_target(
    project: Project, service: str, env: str, *, to: str | None = None
) -> dict[str, Any] | None:
    """What :func:`rollback` would go back to now (``to``, or the release live before),
    ``{"release", "version", "approvals"}`` where ``approvals`` is the step it would record
    (``failed``: it would be blocked); None when no earlier release was live in ``env``."""
    from core.delivery.rollback import rollback_target as _rollback_target

    target = _rollback_target(project, service, env, to=to)
    if target is None:
        return None
    record = target.release
    return {
        "release": record.id,
        "version": record.version,
        "approvals": target.clearance.step.to_step(),
    }


def approve(
    project: Project, release: str, env: str, *, comment: str = "", read_only: bool = False
) -> dict[str, Any]:
    """Record the current user's approval of a release for ``env``."""
    from core.delivery.environments import approve as _approve

    return _approve(project, release, env, comment=comment, read_only=read_only)


def down(
    project: Project,
    env: str | None = None,
    *,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Stop the locally served environments (all, or ``env``)."""
    from core.delivery.environments import down as _down
    from core.pipelines.watch_process import stop_watcher

    say = log or _quiet
    if env is None and not read_only and stop_watcher(project):
        say("stopped the watcher")
        document = _down(project, env, read_only=read_only, log=say)
        watcher = {"service": None, "env": None, "stopped": True, "watcher": True}
        document["environments"] = [watcher, *document.get("environments", [])]
        return document
    return _down(project, env, read_only=read_only, log=say)


# ------------------------------------------------------------------ pipelines and triggers


def pipeline_list(project: Project) -> dict[str, Any]:
    """Every pipeline (the built-in ``release`` unless redefined), its steps and triggers,
    and the services each is assigned to."""
    from core.pipelines.definition import listing

    return listing(project.config)


def pipeline_explain(project: Project, name: str, service: str | None = None) -> dict[str, Any]:
    """Pipeline ``name`` for ``service``: each step's timeout, retries and strategy, and
    the layer that set each."""
    from core.pipelines.definition import explain

    return explain(project.config, name, _one_service(project, service, f"pipeline {name}"))


def pipeline_run(
    project: Project,
    name: str,
    service: str | None = None,
    *,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    junit: Path | None = None,
    summary: Path | None = None,
) -> dict[str, Any]:
    """Start pipeline ``name`` for ``service`` and drive it to its end, a wait for an
    approval (exit 1, ``waiting_for`` says what to run) or a failure."""
    from core.pipelines.runner import run_pipeline

    return run_pipeline(
        project,
        name,
        service,
        read_only=read_only,
        log=log or _quiet,
        cancel=cancel,
        junit=junit,
        summary=summary,
    )


def pipeline_resume(
    project: Project,
    run_id: int,
    *,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Take over run ``run_id`` (waiting, or left by a relman that died) and drive it on."""
    from core.pipelines.runner import resume

    return resume(project, run_id, read_only=read_only, log=log or _quiet, cancel=cancel)


def pipeline_cancel(project: Project, run_id: int, *, read_only: bool = False) -> dict[str, Any]:
    """End run ``run_id`` for good (one that waits or was interrupted; no watcher resumes
    it), as the acting user."""
    from core.pipelines.runner import cancel_run

    return cancel_run(project, run_id, read_only=read_only)


def pipeline_runs(
    project: Project,
    *,
    pipeline: str | None = None,
    service: str | None = None,
    limit: int = 20,
) -> dict[str, Any]:
    """The newest runs with their steps, and the watcher's state."""
    from core.pipelines.runner import runs_document
    from core.pipelines.watch import watcher_status as _status

    document = runs_document(project, pipeline=pipeline, service=service, limit=limit)
    document["watcher"] = _status(project)
    return document


def watcher_status(project: Project) -> dict[str, Any]:
    """Whether the project's watcher runs, and what it last started."""
    from core.pipelines.watch import watcher_status as _status

    return _status(project)


def watch(
    project: Project,
    *,
    once: bool = False,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """The watcher in this process, until ``stop`` is set (or one round with ``once``)."""
    from core.errors import ReadOnlyError
    from core.pipelines.watch import watch as _watch

    if read_only:
        raise ReadOnlyError("read-only mode: relman watch starts pipelines, so it is refused")
    return _watch(project, once=once, log=log or _quiet, stop=stop or threading.Event())


def watch_detached(project: Project, *, read_only: bool = False) -> dict[str, Any]:
    """Start the watcher in the background; ``{"ok", "pid", "log"}``."""
    from core.errors import ReadOnlyError
    from core.pipelines.watch import LOG_NAME
    from core.pipelines.watch_process import start_watcher

    if read_only:
        raise ReadOnlyError("read-only mode: relman watch starts pipelines, so it is refused")
    pid = start_watcher(project)
    return {"ok": True, "pid": pid, "log": str(project.state_dir / LOG_NAME)}


def ci_workflow(
    project: Project,
    kind: str,
    *,
    out: Path | None = None,
    pipelines: Sequence[str] = (),
    branch: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """`relman ci github|gitlab`: write the CI workflow that runs relman --batch (docs/ci.md)."""
    from core.ci.files import write_ci
    from core.config.pipelines import steps_of
    from core.pipelines.definition import assigned

    config = project.config
    uses: list[tuple[str, str | None, list[str], list[str]]] = []
    for name, pipeline in config.pipelines.named.items():
        on = [str(trigger) for trigger in pipeline.on]
        kinds = [step.kind for step in steps_of(pipeline)]
        served: list[str | None] = [s for s in config.services if name in assigned(config, s)]
        uses += [(name, service, on, kinds) for service in served or [None]]
    return write_ci(
        project.root,
        config.project.name,
        kind,
        uses,
        chosen=pipelines,
        out=out,
        force=force,
        branch=branch,
        project_python=config.project.python,
    )


def _one_service(project: Project, service: str | None, what: str) -> str:
    from core.errors import UsageError

    services = list(project.config.services)
    if service is None:
        if len(services) > 1:
            raise UsageError(f"{what}: give --service (services: {', '.join(services)})")
        return services[0]
    project.config.check_names(service=service)
    return service


def release(
    project: Project,
    *,
    to: str | None = None,
    service: str | None = None,
    junit: Path | None = None,
    summary: Path | None = None,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    on_event: Callable[[Any], None] | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """The whole pipeline: verify, test, gate, build, then promote env by env up to ``to``.
    Setting ``cancel`` stops it (tests and build at once, a promotion once it is done): the
    document then says ``"cancelled": true``. ``on_event`` hears the suites' progress (as
    for :func:`run_tests`)."""
    from core.delivery.release import release as _release

    return _release(
        project,
        to=to,
        service=service,
        junit=junit,
        summary=summary,
        read_only=read_only,
        log=log or _quiet,
        cancel=cancel,
        on_event=on_event,
        strategy=strategy,
    )


def build(
    project: Project,
    service: str | None = None,
    *,
    log: Callable[[str], None] | None = None,
    read_only: bool = False,
    cancel: threading.Event | None = None,
    image: bool = False,
) -> BuildDocument:
    """Build (or reuse) the Bento of the candidate of ``service`` (every service when None),
    and with ``image`` its OCI image (docs/targets.md, Images). Setting ``cancel`` stops the
    build process, records the run cancelled and raises core.cancel.Cancelled."""
    from core.build.bento import build as _build
    from core.build.bento import build_document

    results = _build(
        project, service, log=log or _quiet, read_only=read_only, cancel=cancel, image=image
    )
    return build_document(results)


def policy_explain(project: Project, service: str, env: str) -> dict[str, Any]:
    """Each effective monitoring parameter of ``service`` in ``env`` and the layer that set it."""
    from core.alerts.policies import explain

    return explain(project, service, env)


def policy_export(project: Project, format_: str, *, out: Path | None = None) -> dict[str, Any]:
    """The effective policies of every service and environment as a rule file of
    ``format_`` (``prometheus``; another is a UsageError), written atomically to ``out`` when
    given (else its text is in the document): docs/prometheus.md, docs/json.md."""
    from core.alerts.prom_rules import compile_rules
    from core.alerts.prom_yaml import export_document, render, write_atomic
    from core.errors import UsageError

    if format_ != "prometheus":
        raise UsageError(f"policy export: unknown format {format_!r}; the one format is prometheus")
    rule_file = compile_rules(project.config)
    text = render(rule_file)
    if out is not None:
        write_atomic(out, text)
    return export_document(rule_file, text, out)


def monitor(
    project: Project, *, once: bool = False, log: Callable[[str], None] | None = None
) -> int:
    """Run the project's collector (until SIGTERM, or one pass); its exit code. Where the
    policy sets ``auto_rollback``, a firing alert rolls its environment back
    (core.delivery.auto_rollback, handed to the collector, which may not import it)."""
    from functools import partial

    from core.delivery.auto_rollback import roll_back_on_firing
    from core.monitoring.collector import Collector

    say = log or _quiet
    act = partial(roll_back_on_firing, log=say)
    return Collector(project, log=say, on_firing=act).run(once=once)


def metrics(project: Project, service: str, env: str, range_: str = "1h") -> MetricsDocument:
    """The per-minute series of ``service`` in ``env`` (docs/json.md's ``metrics``)."""
    from core.monitoring.queries import metrics as _metrics

    return _metrics(project, service, env, range_)


def alerts(project: Project) -> AlertsDocument:
    """Firing, pending and past alerts (docs/json.md's ``alerts``)."""
    from core.monitoring.queries import alerts as _alerts

    return _alerts(project)


def drift(project: Project, service: str, env: str) -> dict[str, Any]:
    """Drift of the release live in ``env``: per feature PSI and KS, and the prediction
    class shares, over the policy's drift window against its training data (read-only).
    ``{"ok", "service", "env", "release", "version", "window_minutes", "min_records",
    "psi_max", "records", "reference", "measured", "note", "features": [{"name", "psi",
    "ks", "live_n", "reference_n", "live_mean", "reference_mean", "state", "detail"}],
    "predictions": {"psi", "state", "live_n", "classes": [{"name", "live", "reference"}],
    "detail"} | None}``; ``state`` is ok, drift (PSI above ``psi_max``) or unmeasured."""
    from core.monitoring.drift_live import live_drift

    return live_drift(project, service, env)


def read_project(project_dir: Path | None = None, *, quick: bool = False) -> Project:
    """The project, for a command that only reads: relman.toml when there is one; else, in a
    git + DVC repository, what the repository declares (core/lineage/infer.py), with the rest
    of the process made read-only (``project.inferred`` says so). ``quick``: enough for a
    first screen (its services' data are read again later, with the rest)."""
    from core.config.model import MissingConfig

    try:
        return load_project(project_dir)
    except MissingConfig as missing:
        root = _repository_root(project_dir)
        if root is None:
            raise
        from core.lineage.infer import infer_project

        try:
            project = infer_project(root, quick=quick)
        except ProjectError as exc:
            raise ConfigError(f"{missing}; nor can it be read without one: {exc}") from exc
        forbid_writes()
        return project


@contextlib.contextmanager
def one_dvc_session() -> Iterator[None]:
    """A block whose reads of one repository share one DVC session (its index built once)
    and one reading of its git tags (core/lineage/gitinfo.py ``shared_tags``): ``with
    api.one_dvc_session(): status(read_project(...))``. For reads only."""
    from core.lineage.dvcinfo import shared_sessions
    from core.lineage.gitinfo import shared_tags

    with shared_sessions(), shared_tags():
        yield


def _repository_root(project_dir: Path | None) -> Path | None:
    """The top of the git repository at ``project_dir`` (or the current folder), None when
    it is not in one."""
    import os
    import subprocess

    where = Path(project_dir) if project_dir is not None else Path.cwd()
    if not {"GIT_DIR", "GIT_WORK_TREE"} & set(os.environ):
        # Where git takes its repository from the folders alone: found as git finds it
        # (a .git folder, or a .git file in a worktree), sparing the TUI's first paint a git.
        for folder in (where.resolve(), *where.resolve().parents):
            if (folder / ".git").exists():
                return folder
        return None
    done = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=where,
        capture_output=True,
        text=True,
        check=False,
    )
    return Path(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else None


def forbid_writes() -> None:
    """Make the rest of this process read-only for the engine too: nothing may write, not
    even a ledger migration (the processes it starts inherit that)."""
    import os

    from core.ledger.upgrade import READ_ONLY_VARIABLE

    os.environ[READ_ONLY_VARIABLE] = "1"


def current_user(project: Project) -> str:
    """Who acts from this session, as the ledger records it (RELMAN_USER, git email, login)."""
    from core.ledger.identity import current_user as _current_user

    return _current_user(project.root)


def feedback(
    project: Project, service: str, env: str, path: Path, *, read_only: bool = False
) -> dict[str, Any]:
    """Store late ground truth (``request_id,label`` rows) for live accuracy."""
    from core.monitoring.queries import feedback as _feedback

    return _feedback(project, service, env, path, read_only=read_only)


def policy_backtest(
    project: Project, service: str, env: str, series: Path, metric: str
) -> dict[str, Any]:
    """The alerts the effective policy would have raised on a recorded series."""
    from core.monitoring.queries import backtest

    return backtest(project, service, env, series, metric)


def traffic(
    project: Project,
    service: str,
    env: str,
    *,
    rate: float = 5.0,
    duration: float = 60.0,
    inject: str | None = None,
    read_only: bool = False,
    log: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
    target: Literal["stable", "canary"] = "stable",
) -> dict[str, Any]:
    """Demo load on ``service`` in ``env`` (duration 0: until Ctrl-C or ``stop``), with a
    fault to inject (latency-leak, latency-spike, error-burst, drift) into the stable
    release or the canary of a rollout (``target``); the counts."""
    from core.traffic.load import run_traffic

    return run_traffic(
        project,
        service,
        env,
        rate=rate,
        duration=duration,
        inject=inject,
        read_only=read_only,
        log=log or _quiet,
        stop=stop,
        target=target,
    ).to_dict()


def traffic_detached(
    project: Project,
    service: str,
    env: str,
    *,
    rate: float = 5.0,
    duration: float = 0.0,
    inject: str | None = None,
    log: Callable[[str], None] | None = None,
    target: Literal["stable", "canary"] = "stable",
) -> int:
    """`relman traffic` in the background (stopped by `relman down`); its pid. One runs per
    environment: an earlier one is stopped, and ``log`` says so."""
    from core.traffic.load import start_detached

    return start_detached(
        project, service, env, rate=rate, duration=duration, inject=inject, log=log, target=target
    )


def traffic_stop(project: Project, service: str, env: str, *, read_only: bool = False) -> bool:
    """Stop the background load on ``service`` in ``env`` (`relman traffic --detach`); its
    fault, if it injected one, is removed on the way out. Whether one was running."""
    from core.errors import ReadOnlyError
    from core.host.processes import stop_tagged
    from core.traffic.load import traffic_tag

    project.config.check_names(service=service, env=env)
    if read_only:
        raise ReadOnlyError("read-only mode: traffic refused")
    return stop_tagged(traffic_tag(project, service, env), None)


def serve_log(
    project: Project, service: str, env: str, *, after: LogPosition | None = None, lines: int = 200
) -> LogTail:
    """The output of the `bentoml serve` instance serving ``env`` (else of its last one):
    its last ``lines`` lines, or those appended since ``after`` (the ``position`` of the
    previous answer)."""
    from core.targets.logs import serve_log_of, tail

    path, title = serve_log_of(project, service, env)
    return tail(path, title, after=after, lines=lines)


def access_log(
    project: Project, service: str, env: str, *, after: LogPosition | None = None, lines: int = 200
) -> LogTail:
    """The proxy's access log of ``env`` (one JSON line per request), as serve_log reads."""
    from core.targets.logs import access_log_of, tail

    path, title = access_log_of(project, service, env)
    return tail(path, title, after=after, lines=lines)


# Last, so that it covers every entry point above: a store error (store.errors: a line, no exit
# code) leaves the engine as the ReleaseError of its exit code (core.errors.STORE_ERRORS), so a
# front end catches one family.
guard_entry_points(globals())

"""The deploy sequence shared by promote and rollback, each step recorded before and after,
and the run that records it (:func:`recorded_run`, :class:`DeployReport`).

lock -> validate (start the release's Bento on a side port, wait for /readyz, send the
sample request) -> switch (route the environment to it, check its health at the
environment's own address) -> stop the previous instance. A failure at any point restores
what served before (it was never stopped), records why, and raises InfraError (exit 3)
with the last lines of the Bento's log.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.config.model import Project
from core.delivery.gates import GateResult
from core.delivery.recovery import holder_alive, locked_error, recover, sweep
from core.errors import (
    REPORTED,
    BlockedError,
    ConfigError,
    InfraError,
    ReleaseError,
    release_error,
)
from core.host.processes import this_host
from core.ledger.runs import finishing_runs
from core.ledger.steps import Log, step
from core.targets import Instance, Provenance, Target, target_for
from store import Ledger, PromotionOpen, PromotionRecord, ReleaseRecord
from store.ledger.records import RunStatus

if TYPE_CHECKING:
    from core.documents import DeployDocument, Step, StepExtras, StepStatus


@dataclass
class Steps:
    """The steps of one run: each recorded ``running`` before it acts and with its result
    after, in the ledger and in the JSON document."""

    ledger: Ledger
    run_id: int
    log: Log
    done: list[Step] = field(default_factory=list)

    def add(self, result: GateResult) -> None:
        """A decision already made (a gate): recorded as is."""
        self._record(result.name, result.status, result.seconds, result.detail, result.kind)

    def skipped(self, name: str, detail: str) -> None:
        self._record(name, "skipped", 0.0, detail)

    def passed(self, name: str, detail: str, seconds: float = 0.0) -> None:
        self._record(name, "passed", seconds, detail)

    def failed(self, name: str, detail: str) -> None:
        self._record(name, "failed", 0.0, detail)

    @contextmanager
    def running(self, name: str) -> Iterator[list[str]]:
        """Record ``name`` as running, run the block, record it passed with the detail the
        block appended (or failed with the error's line, re-raised)."""
        self.ledger.record_step(self.run_id, name, "running", detail="started")
        failpoint(f"{name}:start")
        self.log(f"{name} ...")
        started = time.perf_counter()
        detail: list[str] = []
        try:
            yield detail
        except REPORTED as exc:  # the store's errors too (a locked ledger): their line
            self._record(name, "failed", time.perf_counter() - started, str(exc))
            raise
        except KeyboardInterrupt:
            self._record(name, "failed", time.perf_counter() - started, "interrupted (Ctrl-C)")
            raise
        except BaseException as exc:
            line = " ".join(f"{type(exc).__name__}: {exc}".split())
            self._record(name, "failed", time.perf_counter() - started, f"error: {line}")
            raise
        self._record(name, "passed", time.perf_counter() - started, "; ".join(detail))
        failpoint(f"{name}:done")

    def _record(
        self, name: str, status: StepStatus, seconds: float, detail: str, kind: str | None = None
    ) -> None:
        self.ledger.record_step(self.run_id, name, status, seconds=seconds, detail=detail)
        extra: StepExtras = {"kind": kind} if kind else {}
        self.done.append(step(name, status, seconds, detail, **extra))
        # A check that says no (a gate, the order, approvals) blocked the run: nothing failed.
        shown = "blocked" if status == "failed" and kind else status
        self.log(f"{shown:<7} {name}  {detail}")


FAILPOINT_VARIABLE = "RELMAN_FAILPOINT"


def failpoint(name: str) -> None:
    """Crash-safety tests kill relman at a step boundary: ``RELMAN_FAILPOINT=validate:done``
    makes the process SIGKILL itself right after the validate step recorded its result."""
    if os.environ.get(FAILPOINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def lock(
    project: Project,
    ledger: Ledger,
    release: ReleaseRecord,
    env: str,
    *,
    kind: str,
    reason: str,
    log: Log,
) -> PromotionRecord:
    """Open the promotion (the environment's lock), taking over a dead holder's first; then,
    holding it, stop whatever instance the environment does not route to."""
    service = release.service
    for _attempt in range(3):
        try:
            promotion = ledger.begin_promotion(
                service,
                env,
                release.id,
                kind=kind,  # type: ignore[arg-type]
                reason=reason,
                pid=os.getpid(),
                host=this_host(),
            )
        except PromotionOpen as exc:
            if holder_alive(exc.promotion):
                raise locked_error(exc.promotion) from None
            recover(project, ledger, service, env, log)
            continue
        sweep(project, ledger, service, env, log)
        return promotion
    raise locked_error(ledger.open_promotions(service, env)[0])


def deploy(
    project: Project,
    ledger: Ledger,
    target: Target,
    release: ReleaseRecord,
    bento: str,
    promotion: PromotionRecord,
    steps: Steps,
) -> Instance:
    """Validate, switch, check, stop the previous instance; finish the promotion. On failure
    the previous instance keeps (or goes back to) serving and InfraError is raised."""
    previous = target.serving()
    instance: Instance | None = None
    switched = False
    try:
        instance = validate_instance(project, target, release, bento, steps, promotion.id)
        with steps.running("switch") as detail:
            switched = True  # before: a switch that fails half-way is undone all the same
            target.switch(instance)
            problem = target.health()
            if problem:
                raise InfraError(f"{target.env} unhealthy after the switch: {problem}")
            detail.append(f"{target.env} serves {release.version or release.id} at {target.url}")
    except BaseException as exc:
        restored = _restore(target, previous, instance, switched)
        why = str(exc) if isinstance(exc, REPORTED) else f"interrupted: {exc!r}"
        ledger.finish_promotion(promotion.id, "undone", reason=f"{why}; {restored}")
        if isinstance(exc, ReleaseError) and not isinstance(exc, InfraError):
            raise
        if isinstance(exc, InfraError):
            raise InfraError(f"{exc}; {restored}") from exc
        raise
    if previous is not None and previous.address != instance.address:
        with steps.running("retire") as detail:
            target.stop(previous)
            detail.append(f"stopped {previous.release} on {previous.address}")
    ledger.finish_promotion(promotion.id, "done", url=target.url, pid=instance.pid)
    return instance


def validate_instance(
    project: Project,
    target: Target,
    release: ReleaseRecord,
    bento: str,
    steps: Steps,
    promotion: int | None = None,
) -> Instance:
    """The validate step: ``bento`` started beside what serves, ready, and answering the
    sample request; stopped again (and the error raised) when it is not."""
    env_config = project.config.environments[target.env]
    service_config = project.config.services[target.service]
    instance: Instance | None = None
    provenance = Provenance(release.version, release.git_commit, steps.run_id, promotion)
    try:
        with steps.running("validate") as detail:
            instance = target.start(bento, release.id, log=steps.log, provenance=provenance)
            ready = target.wait_ready(instance, env_config.ready_timeout)
            detail.append(f"{bento} ready in {ready:.1f} s on {instance.address}")
            if service_config.sample_request:
                body = (project.root / service_config.sample_request).read_bytes()
                smoke = target.smoke(instance, body, service_config.endpoint)
                detail.append(smoke.detail)
    except BaseException:
        if instance is not None:
            target.stop(instance)
        raise
    return instance


def _restore(
    target: Target, previous: Instance | None, instance: Instance | None, switched: bool
) -> str:
    """Put ``previous`` back in front and stop the failed ``instance``."""
    if switched and previous is not None:
        try:
            target.switch(previous)
        except ReleaseError as exc:
            return f"could not switch back to {previous.release}: {exc}"
    if instance is not None:
        target.stop(instance)
    if previous is not None:
        return f"{previous.release} still serves {target.env}"
    if switched:
        target.down()
    return f"nothing was live in {target.env} before; nothing serves it now"


@dataclass
class DeployReport:
    """What a promote or rollback did: its steps, and the error that stopped it, if any."""

    kind: str
    service: str
    env: str
    release: str | None = None
    version: str | None = None
    url: str | None = None
    steps: list[Step] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_dict(self) -> DeployDocument:
        """The document ``relman promote`` and ``relman rollback`` print (docs/json.md)."""
        return {
            "ok": self.ok,
            "kind": self.kind,
            "service": self.service,
            "env": self.env,
            "release": self.release,
            "version": self.version,
            "url": self.url,
            "steps": self.steps,
            "error": self.error,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
        }


@contextmanager
def recorded_run(
    ledger: Ledger,
    report: DeployReport,
    started: float,
    log: Log,
    *,
    details: dict[str, Any],
) -> Iterator[Steps]:
    """The run of ``report`` in the ledger, its steps recorded as they go. A ReleaseError
    ends it in the report (blocked: failed, exit 1; infrastructure: error, exit 3); anything
    else (Ctrl-C, a bug) closes the run and propagates."""
    assert report.release is not None
    run = ledger.start_run(
        report.kind,  # type: ignore[arg-type]
        service=report.service,
        env=report.env,
        release_id=report.release,
        # Who runs it, so that recovery can tell a run left behind by a killed relman.
        details={**details, "pid": os.getpid(), "host": this_host()},
    )
    steps = Steps(ledger, run.id, log)
    try:
        with finishing_runs(
            ledger, [run.id], interrupted=f"{report.kind} interrupted", failed=report.kind
        ):
            try:
                yield steps
            except REPORTED as caught:
                exc = release_error(caught)  # a store error: its exit code (core.errors)
                report.error, report.exit_code = str(exc), exc.exit_code
                status: RunStatus = "failed" if isinstance(exc, BlockedError) else "error"
                ledger.finish_run(run.id, status, reason=str(exc))
            else:
                ledger.finish_run(run.id, "passed", reason=f"{report.release} live in {report.env}")
    finally:
        report.steps = steps.done
        report.seconds = time.perf_counter() - started


def lock_and_deploy(
    project: Project,
    ledger: Ledger,
    record: ReleaseRecord,
    env: str,
    bento: str,
    kind: str,
    reason: str,
    steps: Steps,
) -> None:
    """The lock step (which also stops orphans, holding the lock), then :func:`deploy`."""
    check_image(project, record, env)
    target = target_for(project, record.service, env)
    with steps.running("lock") as detail:
        promotion = lock(project, ledger, record, env, kind=kind, reason=reason, log=steps.log)
        try:
            target.prepare()
        except ReleaseError as exc:
            ledger.finish_promotion(promotion.id, "failed", reason=str(exc))
            raise
        detail.append(f"{env} locked by {promotion.actor} (promotion #{promotion.id})")
    deploy(project, ledger, target, record, bento, promotion, steps)
    if project.config.environments[env].target != "local":
        return  # the collector reads local environments only (docs/targets.md)
    from core.monitoring.collector_process import ensure_collector

    started = ensure_collector(project)  # monitoring goes on with no TUI open
    if started is not None:
        steps.log(f"started the collector (pid {started}); `relman down` stops it")


def check_runtime(project: Project, env: str) -> None:
    """ProjectError (exit 2) before anything starts when ``env`` runs images
    (``runtime = "image"``) and podman is not installed."""
    if project.config.environments[env].runtime == "image":
        from core.host.containers import require_engine

        require_engine(f'[environments.{env}] runtime = "image"', "podman")


def runnable(project: Project, record: ReleaseRecord, env: str, bento: str, steps: Steps) -> str:
    """What ``env`` starts of ``record``: its Bento's tag, or where it runs images
    (``runtime = "image"``) its image, built from the Bento now (an ``image`` step) when
    podman's storage has none (docs/targets.md, Images)."""
    if project.config.environments[env].runtime != "image":
        return bento
    from core.build.bento_store import find_bento
    from core.build.image import build_image, find_image, image_ref
    from core.host.containers import require_engine

    engine = require_engine(f'[environments.{env}] runtime = "image"', "podman")
    if find_image(engine, record.service, record.id) is not None:
        return image_ref(record.service, record.id)
    found = find_bento(record.service, record.id)
    if found is None:
        raise BlockedError(
            f"no Bento of {record.service} {record.version or record.id} to build its image "
            f"from; check out commit {record.git_commit[:12]} and run `relman build --image "
            f"{record.service}`"
        )
    with steps.running("image") as detail:
        made = build_image(project, engine, found, log=steps.log)
        detail.append(made.detail)
    return made.ref


def check_image(project: Project, record: ReleaseRecord, env: str) -> None:
    """A kubernetes environment runs the release's image: BlockedError (exit 1) naming
    `relman build --image` before the lock when it has none."""
    config = project.config.environments[env].kubernetes
    if config is not None:
        from core.targets.k8s_image import release_image

        release_image(record.service, record.id, env, config)


def recover_step(project: Project, ledger: Ledger, service: str, env: str, steps: Steps) -> None:
    """Finish or undo what a killed relman left in ``env`` before deciding anything on it;
    a step only when there was something to do."""
    try:
        done = recover(project, ledger, service, env, steps.log)
    except BlockedError as exc:  # a live relman holds the environment
        steps.failed("lock", str(exc))
        raise
    if done:
        steps.passed("recover", "; ".join(done))


def check_sample_request(project: Project, service: str) -> None:
    """ConfigError (exit 2) before anything starts when the smoke request cannot be read."""
    sample = project.config.services[service].sample_request
    if sample is None:
        return
    path = project.root / sample
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"relman.toml: [services.{service}] sample_request = {sample!r}: cannot read it "
            f"({exc.strerror}); point it at a JSON request body"
        ) from exc
    try:
        json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{sample}: not JSON ({exc}); [services.{service}] sample_request must be a JSON "
            "request body"
        ) from exc


def env_url(project: Project, env: str) -> str | None:
    return project.config.environments[env].url


# ---------------------------------------------------------------------------------- helpers

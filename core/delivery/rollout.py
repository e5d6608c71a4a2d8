"""Rollouts: the new release started beside the stable one, traffic moved to it step by step
(canary) or mirrored to it (shadow), judged against the stable release over the same minutes,
then promoted, or aborted back to stable (docs/rollouts.md).

The rollout runs under the environment's lock (its open promotion) and is a recorded state
machine: the ledger's ``rollouts`` row says which step it is at and what routing it set, and
each step is a run step recorded before and after it acts. A relman killed at any point
leaves an open promotion with a dead holder; the next command that takes the environment
(:func:`core.delivery.recovery.recover`) sends every request back to the stable release, or
completes the promotion when the new release already served everything. Commands from other
processes (`relman rollout pause|resume|abort|promote`) are requests in that row, which the
driver acts on at its next poll.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.cancel import CancelSignal
from core.config.common import Strategy
from core.config.durations import parse_duration
from core.config.model import Project
from core.delivery.deploy import Steps, deploy, lock
from core.delivery.rollout_plan import PlanStep, analysis_config, describe_plan
from core.errors import REPORTED, BlockedError, InfraError, ReleaseError
from core.host.processes import pid_alive, this_host
from core.targets import Instance, Target, target_for

if TYPE_CHECKING:
    from core.analysis import CheckResult
    from store import Ledger, PromotionRecord, ReleaseRecord, RolloutRecord

POLL = 0.25  # how often a waiting driver looks at requests and at its two instances
Mode = Literal["canary", "shadow"]


class _Abort(BlockedError):
    """The rollout must go back to stable: its analysis failed, or a person asked."""

    def __init__(self, line: str, *, asked: bool = False) -> None:
        super().__init__(line)
        self.asked = asked


class _PromoteNow(Exception):
    """`relman rollout promote`: skip the remaining steps."""


@dataclass
class Driver:
    """One rollout being driven by this process."""

    project: Project
    ledger: Ledger
    target: Target
    release: ReleaseRecord
    promotion: PromotionRecord
    rollout: RolloutRecord
    plan: list[PlanStep]
    stable: Instance
    candidate: Instance
    steps: Steps
    mode: Mode
    sticky: str | None
    stable_label: str
    cancel: CancelSignal | None = None
    window_start: float = 0.0

    # -- the machine -------------------------------------------------------------------

    def run(self) -> None:
        """Drive the plan from the rollout's current step to promoted, or back to stable
        (BlockedError when aborted, InfraError when something broke; re-raised otherwise)."""
        from core.analysis import forget

        try:
            self._run()
        finally:
            forget()  # what the analysis kept of the logs between measurements

    def _run(self) -> None:
        try:
            try:
                for index in range(self.rollout.step, len(self.plan)):
                    self._step(index, self.plan[index])
            except _PromoteNow:
                self.steps.passed("promote now", "asked by `relman rollout promote`")
            self._promote()
        except _Abort as exc:
            restored = self._back_to_stable(str(exc))
            verb = "aborted on request" if exc.asked else "aborted by analysis"
            raise BlockedError(
                f"rollout of {self._label(self.release.id)} in {self.target.env} {verb}: "
                f"{exc}; {restored}"
            ) from None
        except BaseException as exc:
            why = str(exc) if isinstance(exc, REPORTED) else f"interrupted: {exc!r}"
            restored = self._back_to_stable(why)
            if isinstance(exc, InfraError):
                raise InfraError(f"{exc}; {restored}") from exc
            raise

    def _step(self, index: int, step: PlanStep) -> None:
        self._check_requests()
        self.rollout = self.ledger.update_rollout(self.rollout.id, step=index)
        cut_short = False
        with self.steps.running(step.name) as detail:
            try:
                self._act(index, step, detail)
            except _PromoteNow:
                detail.append("cut short by `relman rollout promote`")
                cut_short = True
        if cut_short:
            raise _PromoteNow()

    def _act(self, index: int, step: PlanStep, detail: list[str]) -> None:
        if step.kind == "weight":
            assert step.weight is not None
            self.target.split(
                self.stable, self.candidate, step.weight, mode=self.mode, sticky=self.sticky
            )
            self.window_start = time.time()
            self.rollout = self.ledger.update_rollout(self.rollout.id, weight=step.weight)
            verb = "mirrored to" if self.mode == "shadow" else "routed to"
            detail.append(f"{step.weight}% of requests {verb} {self._label(self.release.id)}")
        elif step.kind == "pause":
            waited = self._wait(step.seconds)
            detail.append(f"waited {waited:.0f} s")
        else:
            assert step.analysis is not None
            detail.append(self._analyse(index, step.analysis))

    def _analyse(self, index: int, name: str) -> str:
        """Measure every interval over the window since the weight was set; the line that
        says why it passed, or _Abort with the failing check's line."""
        from core.analysis import measure, verdict

        config = analysis_config(self.project, name)
        interval = parse_duration(config.interval)
        failures, taken, extra = 0, 0, 0
        if not self.window_start:
            self.window_start = time.time()
        while True:
            self._wait(interval)
            folders = {
                self.stable.release: _folder(self.stable),
                self.candidate.release: _folder(self.candidate),
            }
            results = measure(
                self.project,
                self.target.service,
                self.target.env,
                config,
                since=self.window_start,
                until=time.time(),
                stable=self.stable.release,
                canary=self.candidate.release,
                mode=self.mode,
                access_log=self.target.access_log,
                instance_folders={k: v for k, v in folders.items() if v is not None},
            )
            taken += 1
            now = time.time()
            self.rollout = self.ledger.update_rollout(
                self.rollout.id,
                analysis_append=[_measurement(r, now, index) for r in results],
            )
            for result in results:
                self.steps.log(f"  {result.verdict:<12} {result.detail}")
            outcome = verdict(results)
            failing = [r for r in results if r.verdict == "fail"]
            if outcome == "fail":
                failures += 1
                if failures > config.failure_limit:
                    raise _Abort(failing[0].detail)
            if taken < config.count:
                continue
            if outcome != "inconclusive":
                return f"{outcome} after {taken} measurement(s): " + _summary(results)
            unsure = next(r for r in results if r.verdict == "inconclusive")
            if config.inconclusive == "wait" and extra < config.count:
                extra += 1
                continue
            if config.inconclusive == "pause":
                self._pause(f"analysis inconclusive ({unsure.detail}); resume or abort it")
                return f"resumed by a person after an inconclusive analysis: {unsure.detail}"
            raise _Abort(f"inconclusive after {taken} measurements: {unsure.detail}")

    def _promote(self) -> None:
        with self.steps.running("promote") as detail:
            self.target.switch(self.candidate)
            problem = self.target.health()
            if problem:
                raise InfraError(f"{self.target.env} unhealthy after the switch: {problem}")
            detail.append(
                f"{self.target.env} serves {self._label(self.release.id)} to every request "
                f"at {self.target.url}"
            )
        with self.steps.running("retire") as detail:
            self.target.stop(self.stable)
            detail.append(f"stopped {self._label(self.stable.release)} on {self.stable.address}")
        # The rollout first: a kill between the two leaves an open promotion whose new
        # release serves, which recovery completes.
        self.ledger.update_rollout(
            self.rollout.id,
            phase="promoted",
            weight=100,
            detail=f"{self._label(self.release.id)} serves every request",
        )
        self.ledger.finish_promotion(
            self.promotion.id, "done", url=self.target.url, pid=self.candidate.pid
        )

    def _back_to_stable(self, why: str) -> str:
        """Every request to the stable release again, the candidate stopped, the promotion
        undone and the rollout aborted; the line that says where that left things."""
        try:
            self.target.switch(self.stable)
            restored = f"{self._label(self.stable.release)} serves all requests again"
        except ReleaseError as exc:
            restored = f"could not route back to {self._label(self.stable.release)}: {exc}"
        self.target.stop(self.candidate)
        self.ledger.update_rollout(
            self.rollout.id, phase="aborted", weight=0, detail=f"{why}; {restored}"
        )
        self.ledger.finish_promotion(self.promotion.id, "undone", reason=f"{why}; {restored}")
        self.steps.log(f"aborted: {why}; {restored}")
        return restored

    # -- waiting, requests -------------------------------------------------------------

    def _wait(self, seconds: float | None) -> float:
        """Wait ``seconds`` (None: until resumed), acting on requests meanwhile; a pause
        requested meanwhile stops the clock. Returns the seconds waited."""
        started = time.monotonic()
        remaining = seconds
        last = started
        while remaining is None or remaining > 0:
            paused = self._check_requests()
            if paused:
                last = time.monotonic()  # the time spent paused does not count
            time.sleep(POLL if remaining is None else min(POLL, remaining))
            now = time.monotonic()
            if remaining is not None:
                remaining -= now - last
            last = now
        return time.monotonic() - started

    def _check_requests(self) -> bool:
        """Act on what another command asked (True when it paused, then resumed);
        InfraError when an instance died; back to stable on SIGTERM or SIGHUP."""
        if self.cancel is not None and self.cancel.is_set():
            raise _Abort("relman was stopped (SIGTERM or SIGHUP)", asked=True)
        for instance, role in ((self.stable, "stable"), (self.candidate, "new")):
            if instance.pid is not None and not pid_alive(instance.pid):
                tail = " | ".join(self.target.log_tail(instance, 3))
                raise InfraError(
                    f"the {role} release {self._label(instance.release)} stopped during the "
                    f"rollout: {tail or 'no output'}"
                )
        request = self.ledger.get_rollout(self.rollout.id).request
        if request is None or not self.ledger.clear_request(self.rollout.id, request):
            return False
        if request == "abort":
            raise _Abort("`relman rollout abort`", asked=True)
        if request == "promote":
            raise _PromoteNow()
        if request == "pause":
            self._pause("paused by `relman rollout pause`")
            return True
        return False

    def _pause(self, why: str) -> None:
        """Phase ``paused`` until `relman rollout resume` (or abort, promote)."""
        self.rollout = self.ledger.update_rollout(self.rollout.id, phase="paused", detail=why)
        self.steps.log(f"paused: {why}")
        while True:
            time.sleep(POLL)
            if self.cancel is not None and self.cancel.is_set():
                raise _Abort("relman was stopped (SIGTERM or SIGHUP)", asked=True)
            request = self.ledger.get_rollout(self.rollout.id).request
            if request == "pause":
                self.ledger.clear_request(self.rollout.id, request)
                continue
            if request is None or not self.ledger.clear_request(self.rollout.id, request):
                continue
            if request == "abort":
                raise _Abort("`relman rollout abort`", asked=True)
            if request == "promote":
                raise _PromoteNow()
            self.rollout = self.ledger.update_rollout(
                self.rollout.id, phase="progressing", detail="resumed"
            )
            self.steps.log("resumed")
            return

    def _label(self, release_id: str) -> str:
        if release_id == self.release.id:
            return self.release.version or release_id
        if release_id == self.stable.release:
            return self.stable_label
        return release_id


def run_rollout(
    project: Project,
    ledger: Ledger,
    release: ReleaseRecord,
    env: str,
    bento: str,
    strategy: Strategy,
    plan: list[PlanStep],
    steps: Steps,
    cancel: CancelSignal | None = None,
) -> None:
    """Lock ``env``, start ``release`` beside the stable release and drive ``plan``; with
    nothing live to compare with, the release is switched in at once (said in a step)."""
    from core.delivery.deploy import validate_instance

    target = target_for(project, release.service, env)
    with steps.running("lock") as detail:
        promotion = lock(project, ledger, release, env, kind="promote", reason="", log=steps.log)
        try:
            target.prepare()
        except ReleaseError as exc:
            ledger.finish_promotion(promotion.id, "failed", reason=str(exc))
            raise
        detail.append(f"{env} locked by {promotion.actor} (promotion #{promotion.id})")
    stable = target.serving()
    if stable is None or stable.release == release.id:
        why = "nothing serves" if stable is None else "the release already serves"
        steps.skipped(strategy, f"{why} {env}: no stable release to compare with; all at once")
        deploy(project, ledger, target, release, bento, promotion, steps)
        return
    mode: Mode = "shadow" if strategy == "shadow" else "canary"
    try:
        candidate = validate_instance(project, target, release, bento, steps, promotion.id)
    except BaseException as exc:
        why = str(exc) if isinstance(exc, REPORTED) else f"interrupted: {exc!r}"
        ledger.finish_promotion(promotion.id, "undone", reason=f"{why}; {stable.release} serves")
        raise
    rollout = ledger.begin_rollout(
        release.service,
        env,
        promotion_id=promotion.id,
        run_id=steps.run_id,
        strategy=strategy,
        stable=stable.release,
        canary=release.id,
        plan=[step.to_json() for step in plan],
        pid=os.getpid(),
        host=this_host(),
    )
    steps.log(f"{strategy} rollout #{rollout.id}: {describe_plan(plan)}")
    Driver(
        project,
        ledger,
        target,
        release,
        promotion,
        rollout,
        plan,
        stable,
        candidate,
        steps,
        mode,
        sticky=project.config.environments[env].rollout.sticky,
        stable_label=ledger.get_release(stable.release).version or stable.release,
        cancel=cancel,
    ).run()


def _folder(instance: Instance) -> Path | None:
    return Path(instance.log).parent if instance.log else None


def _measurement(result: CheckResult, t: float, step: int) -> dict[str, Any]:
    return {
        "check": result.check,
        "stable": result.stable,
        "canary": result.canary,
        "verdict": result.verdict,
        "detail": result.detail,
        "t": round(t, 3),
        "step": step,
    }


def _summary(results: list[CheckResult]) -> str:
    return "; ".join(r.detail for r in results) or "no checks"

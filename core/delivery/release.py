"""`relman release`: verify -> test -> gate -> build -> promote, environment by environment.

Stops at the first blocked or failed step. The run document (docs/json.md's shape, plus the
lineage) is what ``--json`` prints, what the JUnit report and the Markdown summary are made
from, so all three say the same line for each step.

``cancel`` (a :class:`threading.Event` set from another thread) stops the pipeline: the test
suites and the build are stopped where they are (their processes ended, the test runs
recorded cancelled); otherwise it takes effect at the next step boundary. A promotion in
progress is never cut in half: it runs to its end (or its own undo), and the environments
after it are not started. The document then says ``"cancelled": true`` (exit code 1) and its
last step is the one cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cancel import Cancelled, CancelSignal
from core.config.model import Project
from core.errors import REPORTED, ReadOnlyError, UsageError, release_error
from core.ledger.steps import quiet as _quiet
from core.ledger.steps import step
from core.lineage.candidate import Candidate

if TYPE_CHECKING:
    from core.documents import Step, StepStatus
    from core.testing.results import OnEvent

Log = Callable[[str], None]


def release(
    project: Project,
    *,
    to: str | None = None,
    service: str | None = None,
    junit: Path | None = None,
    summary: Path | None = None,
    read_only: bool = False,
    log: Log = _quiet,
    cancel: CancelSignal | None = None,
    on_event: OnEvent | None = None,
    strategy: str | None = None,
) -> dict[str, Any]:
    """Run the whole pipeline for ``service`` (default: every service) up to ``to``
    (default: the first environment). Returns the run document; ``exit_code`` says how it
    ended (0 done, 1 blocked or cancelled, 3 failed with the previous release restored).
    ``log`` hears each step as it ends, ``on_event`` the test suites' progress."""
    config = project.config
    config.check_names(service=service, env=to)
    if read_only:
        raise ReadOnlyError("read-only mode: release refused")
    order = config.environment_order
    envs = order[: order.index(to) + 1] if to else order[:1]
    # What cannot be built or served stops the release before its first step (exit 2).
    for name in [service] if service else list(config.services):
        config.require_service(name)
    for env in envs:
        config.require_port(env)
    for path, option in ((junit, "--junit"), (summary, "--summary")):
        _check_writable(path, option)
    # --strategy applies to the environment released to; the others keep their own.
    from core.delivery.rollout_plan import strategy_for

    strategies = {
        env: strategy_for(project, env, strategy if env == envs[-1] else None) for env in envs
    }
    services = [service] if service else list(config.services)
    started = time.perf_counter()
    document: dict[str, Any] = {"ok": True, "steps": [], "environments": envs, "exit_code": 0}
    documents = []
    from core.lineage.candidate import project_candidates

    lineage = project_candidates(project)  # once: verify, test and promote share it
    collecting = time.perf_counter() - started  # counted in the first verify step
    for name in services:
        one = _release_service(
            project, name, envs, lineage, log, collecting, cancel, on_event, strategies
        )
        collecting = 0.0
        documents.append(one)
        prefix = f"{name}: " if len(services) > 1 else ""
        document["steps"] += [{**s, "name": prefix + s["name"]} for s in one["steps"]]
        if not one["ok"]:
            document.update(ok=False, exit_code=one["exit_code"], error=one.get("error"))
            if one.get("cancelled"):
                document["cancelled"] = True
            break
    if len(services) == 1:
        first = documents[0]
        document.update({key: first.get(key) for key in ("service", "release", "version")})
        document["lineage"] = first.get("lineage")
    else:
        document["services"] = documents
    document["seconds"] = round(time.perf_counter() - started, 3)
    _write_reports(document, junit, summary)
    return document


def _release_service(
    project: Project,
    service: str,
    envs: list[str],
    lineage: dict[str, Candidate],
    log: Log,
    collecting: float,
    cancel: CancelSignal | None = None,
    on_event: OnEvent | None = None,
    strategies: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    steps: list[Step] = []
    document: dict[str, Any] = {"service": service, "ok": True, "steps": steps, "exit_code": 0}

    def stop(caught: Exception) -> dict[str, Any]:
        exc = release_error(caught)  # a store error (the tests' ledger): its exit code
        document.update(ok=False, exit_code=exc.exit_code, error=str(exc))
        if isinstance(exc, Cancelled):
            document["cancelled"] = True
        return document

    def cancelled_before(name: str, what: str | None = None) -> dict[str, Any] | None:
        """The document of a pipeline cancelled before step ``name`` (``what`` says it in
        words), or None to go on."""
        if cancel is None or not cancel.is_set():
            return None
        what = what or name
        done = _done_so_far(steps)
        detail = f"cancelled before {what} started"
        steps.append({**step(name, "failed", 0.0, detail), "cancelled": True})
        log(f"failed  {name}  {detail}")
        return stop(Cancelled(f"release cancelled before {what}: {done}"))

    # verify
    started = time.perf_counter() - collecting
    cand = lineage[service]
    document["release"] = cand.release
    document["lineage"] = _lineage(cand.to_dict())
    blocked = cand.verify_line()
    if blocked is not None:
        detail = blocked
        steps.append(step("verify", "failed", time.perf_counter() - started, detail))
        log(f"failed  verify  {detail}")
        document.update(ok=False, exit_code=1, error=f"verify: {detail}")
        return document
    detail = f"{service} {cand.release} at {cand.git.commit[:12]}: no lineage problems"
    steps.append(step("verify", "passed", time.perf_counter() - started, detail))
    log(f"passed  verify  {detail}")

    # test: the suites any of the target environments requires (all declared when none)
    from core.testing.suites import run_tests

    if (ended := cancelled_before("test")) is not None:
        return ended
    needed = list(dict.fromkeys(s for env in envs for s in project.config.environments[env].suites))
    try:
        tests = run_tests(
            project, needed or None, log=log, on_event=on_event, lineage=lineage, cancel=cancel
        )
    except Cancelled as exc:
        steps += [{**s, "name": f"test {s['name']}"} for s in exc.steps]
        return stop(exc)
    except REPORTED as exc:
        steps.append(step("test", "failed", 0.0, str(exc)))
        return stop(exc)
    for suite in tests.suites:
        name = f"test {suite.name}"
        status: StepStatus = "passed" if suite.status == "passed" else "failed"
        steps.append({**suite.to_step(), "name": name, "status": status})
    if not tests.ok:
        failed = next(s for s in tests.suites if s.status != "passed")
        document.update(ok=False, exit_code=1, error=f"test {failed.name}: {failed.detail}")
        return document

    # gate: what would block the first environment, before paying for a build
    from core.delivery.gating import candidate_artifacts, evaluate_release
    from core.ledger.releases import open_ledger, record_candidate

    if (ended := cancelled_before("gate")) is not None:
        return ended
    started = time.perf_counter()
    with open_ledger(project, read_only=False) as ledger:
        version = record_candidate(ledger, project, service, cand).version
        results = evaluate_release(
            project, ledger, service, envs[0], cand.release, cand.metrics, candidate_artifacts(cand)
        )
    blocking = [result for result in results if result.blocks]
    if blocking:
        detail = f"{envs[0]}: {blocking[0].name}: {blocking[0].detail}"
        steps.append(step("gate", "failed", time.perf_counter() - started, detail))
        log(f"failed  gate  {detail}")
        document.update(ok=False, exit_code=1, error=f"gate {detail}")
        return document
    passed = sum(1 for result in results if result.status == "passed")
    detail = f"{envs[0]}: {passed} checks passed, {len(results) - passed} not needed"
    steps.append(step("gate", "passed", time.perf_counter() - started, detail))
    log(f"passed  gate  {detail}")

    # build once; promote env by env, every environment serving this very Bento
    from core.build.bento import build_release
    from core.delivery.promote import promote

    if (ended := cancelled_before("build")) is not None:
        return ended
    started = time.perf_counter()
    try:
        built = build_release(project, service, cand, version=version, log=log, cancel=cancel)
    except REPORTED as exc:
        ended_step = step("build", "failed", time.perf_counter() - started, str(exc))
        if isinstance(exc, Cancelled):
            ended_step["cancelled"] = True
        steps.append(ended_step)
        return stop(exc)
    built_step = built.to_step()
    steps.append(built_step)
    log(f"{built_step['status']:<7} build  {built_step['detail']}")
    document["bento"] = built.bento.tag
    for env in envs:
        if (ended := cancelled_before(f"{env}: promote", f"the promotion to {env}")) is not None:
            return ended
        strategy = (strategies or {}).get(env)
        report = promote(
            project, service, env, log=log, candidate=cand, strategy=strategy, cancel=cancel
        )
        document["version"] = report.version
        for entry in report.steps:
            steps.append({**entry, "name": f"{env}: {entry['name']}"})
        if not report.ok:
            document.update(ok=False, exit_code=report.exit_code, error=report.error)
            return document
        document.setdefault("urls", {})[env] = report.url
    return document


def _done_so_far(steps: list[Step]) -> str:
    """``verify, test unit passed`` or ``nothing had run``: what went before a cancel."""
    done = [s["name"] for s in steps if s["status"] == "passed"]
    return f"{', '.join(done)} passed" if done else "nothing had passed yet"


def _check_writable(path: Path | None, option: str) -> None:
    """A report path that cannot be written fails before anything runs (exit 2)."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a folder; give a file path")
    if not path.parent.is_dir():
        raise UsageError(f"{option} {path}: folder {path.parent} does not exist; create it first")


def _lineage(candidate: Mapping[str, Any]) -> dict[str, Any]:
    return {key: candidate.get(key) for key in ("git", "model", "data", "params", "metrics")}


def _write_reports(document: dict[str, Any], junit: Path | None, summary: Path | None) -> None:
    from core.delivery.summary import write_summary
    from core.testing.junit import steps_junit

    if junit is not None:
        steps_junit(document, junit)
    written = write_summary(document, summary)
    document["reports"] = [str(path) for path in written] + ([str(junit)] if junit else [])

"""The rollout state machine against a real ledger and a recording target: each step
recorded, requests from other commands acted on, an analysis that fails sends every request
back to the stable release, and the environment's lock is held throughout. (Real processes:
tests/e2e/test_rollouts.py.)"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core import api
from core.analysis import CheckResult
from core.delivery import recovery, rollout
from core.delivery.deploy import Steps
from core.delivery.rollout_plan import plan_for
from core.errors import BlockedError, InfraError
from core.targets import Instance
from core.targets.proxy_control import Routing
from store import Ledger
from tests.store import add_release, open_ledger
from tests.waiting import wait_for

TOML = """\
[project]
name = "fraud"

[services.fraud]
bento = "service:Fraud"
model = ["model.pkl"]

[environments.dev]
port = 3101

[environments.dev.rollout]
strategy = "canary"
steps = [ { weight = 25 }, { analysis = "quick" }, { weight = 75 }, { analysis = "quick" } ]

[analysis.quick]
interval = "10ms"
count = 1
inconclusive = "pause"
"""
STABLE, NEW = "aaaaaaaaaaaa", "bbbbbbbbbbbb"


@dataclass
class FakeTarget:
    """Records what the driver asks for; instances are addresses, nothing runs."""

    service: str = "fraud"
    env: str = "dev"
    access_log: Path = Path("/nonexistent/access.log")
    route: Routing | None = None
    running: dict[str, Instance] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "http://127.0.0.1:3101"

    def prepare(self) -> None:
        pass

    def start(
        self, bento: str, release: str, *, log: Callable[[str], None], provenance: Any = None
    ) -> Instance:
        instance = Instance(release, f"127.0.0.1:{4000 + len(self.running)}", None)
        self.running[release] = instance
        self.calls.append(f"start {release}")
        return instance

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        return 0.1

    def split(
        self, stable: Instance, candidate: Instance, weight: int, *, mode: str = "canary",
        sticky: str | None = None,
    ) -> None:  # fmt: skip
        self.route = Routing(stable.address, stable.release, candidate.address,
                             candidate.release, weight, mode)  # type: ignore[arg-type]  # fmt: skip
        self.calls.append(f"split {weight}")

    def switch(self, instance: Instance) -> None:
        self.route = Routing(instance.address, instance.release)
        self.calls.append(f"switch {instance.release}")

    def routing(self) -> Routing | None:
        return self.route

    def serving(self) -> Instance | None:
        if self.route is None:
            return None
        return next((i for i in self.running.values() if i.address == self.route.stable), None)

    def candidate(self) -> Instance | None:
        if self.route is None or self.route.canary is None:
            return None
        return next((i for i in self.running.values() if i.address == self.route.canary), None)

    def instances(self) -> list[Instance]:
        return list(self.running.values())

    def health(self) -> str | None:
        return None

    def stop(self, instance: Instance) -> None:
        self.running.pop(instance.release, None)
        self.calls.append(f"stop {instance.release}")

    def sweep(self, keep: Any) -> list[str]:
        return []

    def down(self) -> bool:
        return False

    def log_tail(self, instance: Instance, lines: int = 12) -> list[str]:
        return []


@pytest.fixture
def project(tmp_path: Path) -> api.Project:
    (tmp_path / "relman.toml").write_text(TOML)
    return api.load_project(tmp_path)


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> FakeTarget:
    fake = FakeTarget()
    fake.start("bento:stable", STABLE, log=print)
    fake.switch(fake.running[STABLE])
    fake.calls.clear()
    for module in (rollout, recovery):
        monkeypatch.setattr(module, "target_for", lambda *_: fake)
    monkeypatch.setattr("core.delivery.deploy.target_for", lambda *_: fake, raising=False)
    return fake


@pytest.fixture
def ledger(project: api.Project) -> Iterator[Ledger]:
    with open_ledger(project.root) as opened:
        add_release(opened, STABLE, version="v1.0.0")
        add_release(opened, NEW, version="v1.1.0")
        promotion = opened.begin_promotion("fraud", "dev", STABLE, kind="promote")
        opened.finish_promotion(promotion.id, "done")
        yield opened


def verdicts(monkeypatch: pytest.MonkeyPatch, answer: Callable[[int], str]) -> list[int]:
    """Make each measurement's checks say ``answer(n)`` (n counts measurements)."""
    taken: list[int] = []

    def measure(*_: Any, **__: Any) -> list[CheckResult]:
        taken.append(len(taken))
        said = answer(len(taken) - 1)
        return [CheckResult("latency", "31 ms", "412 ms", said, f"p95 412 ms vs 31 ms: {said}")]

    monkeypatch.setattr("core.analysis.measure", measure)
    return taken


def run(project: api.Project, ledger: Ledger) -> Steps:
    run_record = ledger.start_run("promote", service="fraud", env="dev", release_id=NEW)
    steps = Steps(ledger, run_record.id, lambda line: None)
    plan = plan_for(project, "dev", "canary")
    release = ledger.get_release(NEW)
    rollout.run_rollout(project, ledger, release, "dev", "bento:new", "canary", plan, steps)
    return steps


def drive_in_thread(project: api.Project) -> tuple[threading.Thread, list[BaseException]]:
    """The rollout driven by another thread (its own ledger connection), as by another
    relman; what it raised is kept in the list."""
    errors: list[BaseException] = []

    def drive() -> None:
        with open_ledger(project.root) as own:
            try:
                run(project, own)
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=drive, daemon=True)
    thread.start()
    return thread, errors


def test_a_passing_analysis_moves_step_by_step_to_promoted(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = verdicts(monkeypatch, lambda _: "pass")
    steps = run(project, ledger)
    assert target.calls == [
        f"start {NEW}",
        "split 25",
        "split 75",
        f"switch {NEW}",
        f"stop {STABLE}",
    ]
    assert len(taken) == 2
    names = [(s["name"], s["status"]) for s in steps.done]
    assert names == [
        ("lock", "passed"), ("validate", "passed"), ("weight 25%", "passed"),
        ("analysis quick at 25%", "passed"), ("weight 75%", "passed"),
        ("analysis quick at 75%", "passed"),
        ("promote", "passed"), ("retire", "passed"),
    ]  # fmt: skip
    done = ledger.latest_rollout("fraud", "dev")
    assert done is not None and (done.phase, done.weight) == ("promoted", 100)
    assert not ledger.open_promotions("fraud", "dev")
    document = api.rollout_status(project, "fraud", "dev")
    assert document["phase"] == "promoted" and document["canary_version"] == "v1.1.0"
    assert document["analysis"][0]["verdict"] == "pass"
    assert document["measurements"] == 2


def test_a_failing_check_aborts_back_to_stable_with_its_line(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts(monkeypatch, lambda n: "pass" if n == 0 else "fail")
    with pytest.raises(BlockedError) as caught:
        run(project, ledger)
    line = str(caught.value)
    assert "aborted by analysis: p95 412 ms vs 31 ms: fail" in line, line
    assert "v1.0.0 serves all requests again" in line
    assert target.calls[-2:] == [f"switch {STABLE}", f"stop {NEW}"]
    assert target.route == Routing(target.running[STABLE].address, STABLE)
    done = ledger.latest_rollout("fraud", "dev")
    assert done is not None and (done.phase, done.weight) == ("aborted", 0)
    assert not ledger.open_promotions("fraud", "dev")
    document = api.rollout_status(project, "fraud", "dev")
    assert document["phase"] == "aborted" and not document["ok"]
    assert [c["verdict"] for c in document["analysis"]] == ["fail"]


def test_inconclusive_waits_then_pauses_for_a_person_who_resumes(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first measurement is inconclusive: with inconclusive = "pause", a person decides.
    verdicts(monkeypatch, lambda n: "inconclusive" if n < 1 else "pass")
    thread, errors = drive_in_thread(project)
    try:
        wait_for(
            lambda: (
                (r := ledger.latest_rollout("fraud", "dev")) is not None and r.phase == "paused"
            ),
            "the rollout to pause on an inconclusive analysis",
        )
        paused = api.rollout_status(project, "fraud", "dev")
        assert "inconclusive" in paused["detail"]
        api.rollout_action(project, "fraud", "dev", "resume")
    finally:
        thread.join(timeout=60)
    assert not errors, errors
    done = ledger.latest_rollout("fraud", "dev")
    assert done is not None and done.phase == "promoted"


def test_still_inconclusive_after_waiting_aborts(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = project.config_path
    config.write_text(config.read_text().replace('inconclusive = "pause"', 'inconclusive = "wait"'))
    project = api.load_project(project.root)
    taken = verdicts(monkeypatch, lambda _: "inconclusive")
    with pytest.raises(BlockedError, match="inconclusive after 2 measurements: p95 412 ms"):
        run(project, ledger)
    assert len(taken) == 2  # count 1, then 1 more
    done = ledger.latest_rollout("fraud", "dev")
    assert done is not None and done.phase == "aborted"


def test_sigterm_sends_the_rollout_back_to_stable(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()

    def measure(*_: Any, **__: Any) -> list[CheckResult]:
        cancel.set()  # the signal arrives during the first analysis
        return [CheckResult("latency", "31 ms", "30 ms", "pass", "p95 30 ms vs 31 ms: pass")]

    monkeypatch.setattr("core.analysis.measure", measure)
    run_record = ledger.start_run("promote", service="fraud", env="dev", release_id=NEW)
    steps = Steps(ledger, run_record.id, lambda line: None)
    plan = plan_for(project, "dev", "canary")
    release = ledger.get_release(NEW)
    with pytest.raises(BlockedError, match="relman was stopped"):
        rollout.run_rollout(
            project, ledger, release, "dev", "bento:new", "canary", plan, steps, cancel=cancel
        )
    assert target.route == Routing(target.running[STABLE].address, STABLE)
    assert NEW not in target.running


def test_abort_asked_by_another_command(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    verdicts(monkeypatch, lambda _: "inconclusive")  # it would wait, then pause
    thread, errors = drive_in_thread(project)
    try:
        wait_for(
            lambda: (r := ledger.latest_rollout("fraud", "dev")) is not None and r.open,
            "the rollout to begin",
        )
        with pytest.raises(BlockedError, match="being promoted"):
            ledger_promotions = ledger.open_promotions("fraud", "dev")
            raise recovery.locked_error(ledger_promotions[0])
        document = api.rollout_action(project, "fraud", "dev", "abort")
    finally:
        thread.join(timeout=60)
    assert document["phase"] == "aborted", document
    assert len(errors) == 1 and isinstance(errors[0], BlockedError)
    assert "aborted on request" in str(errors[0])
    assert target.route is not None and target.route.stable == target.running[STABLE].address


def test_an_instance_that_dies_is_infrastructure_and_goes_back_to_stable(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def measure(*_: Any, **__: Any) -> list[CheckResult]:
        raise InfraError("the new release v1.1.0 stopped during the rollout: killed")

    monkeypatch.setattr("core.analysis.measure", measure)
    with pytest.raises(InfraError, match=r"stopped during the rollout.*serves all requests again"):
        run(project, ledger)
    done = ledger.latest_rollout("fraud", "dev")
    assert done is not None and done.phase == "aborted"


def test_nothing_live_means_all_at_once(
    project: api.Project, target: FakeTarget, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.route = None
    target.running.clear()
    verdicts(monkeypatch, lambda _: "pass")
    steps = run(project, ledger)
    skipped = [s for s in steps.done if s["status"] == "skipped"]
    assert skipped and "no stable release to compare with" in skipped[0]["detail"]
    assert ledger.latest_rollout("fraud", "dev") is None

"""What the pipeline view draws of hand-built ``pipeline runs`` and watcher documents
(screens/pipelines_view.py): the runs' rows, the selected run's steps with their marks,
times and retries, what a waiting run waits for and the keys that give it, the output of a
step, and the overview's watcher line. Plain functions: no app."""

from __future__ import annotations

from typing import Any

from screens import pipelines_view as view

RELEASE = "a1b2c3d4e5f6a7b8"


def step(name: str, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "kind": name.partition(":")[0],
        "status": status,
        "seconds": fields.pop("seconds", 0.0),
        "detail": fields.pop("detail", ""),
        "attempts": fields.pop("attempts", 1 if status != "pending" else 0),
        "started": None,
        "finished": None,
        "output": fields.pop("output", []),
        **fields,
    }


def waiting_run() -> dict[str, Any]:
    return {
        "run": 3,
        "pipeline": "retrain",
        "service": "iris",
        "status": "waiting",
        "trigger": "data",
        "reason": "data/iris.csv changed",
        "actor": "alice",
        "release": RELEASE,
        "version": "v1.4.0",
        "detail": "prod: 0 of 1 approval(s)",
        "started": "2026-11-27T11:00:00+00:00",
        "finished": None,
        "driver": {"pid": 812, "host": "box"},
        "waiting_for": {
            "step": "approve:prod",
            "env": "prod",
            "release": RELEASE,
            "command": "relman approve a1b2c3d4e5f6 --env prod",
        },
        "steps": [
            step("repro", "passed", seconds=12.34, detail="2 stages ran"),
            step("test", "passed", seconds=75.0, attempts=2, detail="unit: 12 passed"),
            step("deploy:staging", "passed", seconds=3.2, detail="staging: serves v1.4.0"),
            step("approve:prod", "waiting", detail="prod: 0 of 1 approval(s)"),
            step("deploy:prod", "pending"),
        ],
    }


def test_steps_have_a_mark_a_time_retries_and_their_detail() -> None:
    lines = view.step_lines(waiting_run())
    assert [(line.mark, line.name, line.time, line.retries, line.detail) for line in lines] == [
        ("✓", "repro", "12.3s", "", "2 stages ran"),
        ("✓", "test", "1m15s", "x2", "unit: 12 passed"),
        ("✓", "deploy:staging", "3.2s", "", "staging: serves v1.4.0"),
        ("‖", "approve:prod", "", "", "prod: 0 of 1 approval(s)"),
        ("·", "deploy:prod", "", "", ""),
    ]
    # Keys belong to the run: switching runs never mixes their rows.
    assert lines[0].key == "3:0"


def test_every_status_has_its_own_mark() -> None:
    statuses = ("pending", "running", "passed", "failed", "waiting", "skipped")
    marks = [view.MARKS[status] for status in statuses]
    assert len(set(marks)) == len(statuses)


def test_a_waiting_run_says_what_it_waits_for_and_the_keys_that_give_it() -> None:
    run = waiting_run()
    assert view.approval_of(run) == (RELEASE, "prod")
    assert view.resumable(run)
    assert view.hint_lines(run, read_only=False) == [
        ("pending", "waiting at approve:prod: prod: 0 of 1 approval(s)"),
        (
            "skipped",
            "a approves it (asks first: relman approve a1b2c3d4e5f6 --env prod), "
            "then r resumes the run",
        ),
    ]


def test_a_read_only_session_is_given_the_commands_instead_of_the_keys() -> None:
    hints = view.hint_lines(waiting_run(), read_only=True)
    assert hints[-1] == (
        "skipped",
        "read-only: from a session that may act, run relman approve a1b2c3d4e5f6 --env prod, "
        "then relman pipeline resume 3",
    )
    assert not any("a approves" in line for _style, line in hints)


def test_a_run_waiting_for_something_else_than_an_approval_offers_resume_only() -> None:
    run = {**waiting_run(), "waiting_for": {"step": "soak:prod", "env": None, "release": None}}
    assert view.approval_of(run) is None
    assert view.hint_lines(run, read_only=False)[-1] == (
        "skipped",
        "r resumes the run (relman pipeline resume 3)",
    )


def test_interrupted_failed_and_passed_runs() -> None:
    interrupted = {**waiting_run(), "status": "interrupted", "waiting_for": None, "detail": ""}
    assert view.approval_of(interrupted) is None
    assert view.resumable(interrupted)
    assert view.hint_lines(interrupted, read_only=False) == [
        ("interrupted", "interrupted: the relman that drove it stopped"),
        ("skipped", "r resumes it (relman pipeline resume 3)"),
    ]
    failed = {**waiting_run(), "status": "failed", "waiting_for": None, "detail": "test: 1 failed"}
    assert not view.resumable(failed)
    assert view.hint_lines(failed, read_only=False) == [("failed", "failed: test: 1 failed")]
    passed = {**waiting_run(), "status": "passed", "waiting_for": None}
    assert view.hint_lines(passed, read_only=False) == []
    assert not view.resumable(passed) and view.approval_of(passed) is None


def test_the_header_says_what_started_the_run_and_how_far_it_got() -> None:
    run = waiting_run()
    assert view.run_title(run) == "#3 retrain · iris · v1.4.0 (a1b2c3d)"
    assert view.trigger_line(run) == "data: data/iris.csv changed · by alice · 3 of 5 steps done"
    manual = {**run, "trigger": "manual", "reason": "", "actor": None, "release": None}
    assert view.run_title(manual) == "#3 retrain · iris"
    assert view.trigger_line(manual) == "manual · 3 of 5 steps done"


def test_rows_of_the_list_and_its_summary() -> None:
    older = {**waiting_run(), "run": 2, "status": "passed", "trigger": "commit", "detail": "ok"}
    document = {"ok": True, "runs": [waiting_run(), older, {"no": "run number"}]}
    rows = [view.run_row(run) for run in view.runs_of(document)]
    assert [(r.key, r.number, r.pipeline, r.status, r.trigger) for r in rows] == [
        ("3", "#3", "retrain", "waiting", "data"),
        ("2", "#2", "retrain", "passed", "commit"),
    ]
    assert view.summary(document) == "2 runs · 1 waiting"
    assert view.find_run(document, "2") is older
    assert view.summary({"runs": []}) == "no pipeline runs yet"
    assert view.summary(None) == "no pipeline runs yet"


def test_the_step_to_point_at_first() -> None:
    run = waiting_run()
    assert view.notable_step(run) == 3  # the approval it waits at
    done = {**run, "steps": [step("repro", "passed"), step("test", "passed")]}
    assert view.notable_step(done) == 1
    assert view.notable_step({"steps": []}) == 0


def test_the_output_of_a_step_is_its_whole_detail_then_its_lines() -> None:
    failed = step(
        "test", "failed", seconds=4.1, attempts=2, detail="unit: 1 failed", output=["F.", "E1"]
    )
    assert view.output_lines(failed) == ["unit: 1 failed", "", "F.", "E1"]
    assert view.output_title(waiting_run(), failed) == "#3 retrain · test · failed · x2 · 4.1s"
    assert view.output_lines(step("deploy:prod", "pending")) == ["no output yet"]
    assert view.output_lines(step("repro", "passed")) == ["no output recorded"]


def test_the_watcher_line() -> None:
    started = {
        "run": 3,
        "pipeline": "retrain",
        "service": "iris",
        "trigger": "data",
        "reason": "data/iris.csv changed",
        "at": "2026-11-27T11:00:00+00:00",
    }
    running = {"running": True, "pid": 900, "branch": "main", "last_started": started}
    assert view.watcher_line(running) == (
        "watcher: running on main, last started run #3 retrain for iris (data)"
    )
    assert view.watcher_line(running, last_started=False) == "watcher: running on main"
    assert view.watcher_line({"running": False}) == "watcher: off (relman watch --detach)"
    assert view.watcher_line({"running": False}, read_only=True) == "watcher: off"
    assert view.watcher_line(None) == "watcher: off (relman watch --detach)"
    failing = {"running": True, "branch": "main", "last_error": "git fetch:\n no remote"}
    assert (
        view.watcher_line(failing) == "watcher: running on main · last error: git fetch: no remote"
    )


def test_fields_the_engine_leaves_out_never_crash() -> None:
    bare: dict[str, Any] = {"run": 9}
    assert view.step_lines(bare) == []
    assert view.run_row(bare).status == "unknown"
    assert view.trigger_line(bare) == "—"
    assert view.hint_lines(bare, read_only=False) == []
    assert view.duration(None) == "" and view.duration(True) == ""
    assert view.duration(7260) == "2h01m"

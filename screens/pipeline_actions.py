"""The actions of the pipeline view (screens/pipelines.py) on the selected run, as plans
the confirmation dialog says and the app runs (screens/actions.py): the approval a waiting
run waits for (``relman approve ID --env ENV``) and driving a run on (``relman pipeline
resume RUN``). Built from the ``pipeline runs`` document alone: nothing to read first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core import api
from screens.actions import ActionPlan, EngineCall
from screens.pipelines_view import approval_of, release_name, steps_of


def approve_plan(project: api.Project, run: Mapping[str, Any]) -> ActionPlan | None:
    """The approval a waiting run waits for, as ``relman approve ID --env ENV`` gives it;
    None when the run waits for no approval."""
    found = approval_of(run)
    if found is None:
        return None
    release, env = found
    service = str(run.get("service") or "")
    number = run.get("run")
    name = release_name({**run, "release": release}) or release[:12]
    waiting = run.get("waiting_for") or {}
    step = waiting.get("step") if isinstance(waiting, Mapping) else None
    text = (
        f"approve {service} {name} for {env}: pipeline run #{number} ({run.get('pipeline')}) "
        f"waits for it at {step or 'its approval step'}; now: {run.get('detail') or '—'}. "
        "Four-eyes: an approval counts for a promotion run by anyone but its approver. "
        "r resumes the run afterwards."
    )

    def call(engine: EngineCall) -> dict[str, Any]:
        document = api.approve(project, release, env, read_only=engine.read_only)
        engine.log(f"passed  approve  {document.get('approver')} approved {release} for {env}")
        engine.log(str(document.get("note", "")))
        engine.log(f"r on the pipelines screen (relman pipeline resume {number}) goes on")
        return document

    title = f"approve {service} {name} for {env}"
    return ActionPlan(
        "approve",
        title,
        text,
        ("approve", release[:12], "--env", env),
        call,
        project,
        quit_text=f"{title} is being recorded and cannot be interrupted safely",
    )


def resume_plan(project: api.Project, run: Mapping[str, Any]) -> ActionPlan:
    """``relman pipeline resume RUN``: this relman drives the run on from its first step
    not done, to its end, the next wait or a failure."""
    number = int(run["run"])
    pipeline, service = run.get("pipeline"), run.get("service")
    left = [
        str(step.get("name"))
        for step in steps_of(run)
        if step.get("status") not in ("passed", "skipped")
    ]
    text = (
        f"drive pipeline run #{number} ({pipeline} for {service}, {run.get('status')}) on "
        f"from {left[0] if left else 'its end'}"
        + (f": {', '.join(left)}" if len(left) > 1 else "")
        + "; it stops at its end, the next approval it waits for, or a failure"
    )

    def call(engine: EngineCall) -> dict[str, Any]:
        return api.pipeline_resume(
            project, number, read_only=engine.read_only, log=engine.log, cancel=engine.cancel
        )

    title = f"resume pipeline run #{number} {pipeline} for {service}"
    return ActionPlan(
        "resume",
        title,
        text,
        ("pipeline", "resume", str(number)),
        call,
        project,
        cancel_text=(
            f"stop pipeline run #{number} at its current step: the run is recorded "
            f"interrupted and relman pipeline resume {number} goes on from there"
        ),
        quit_text=(
            f"pipeline run #{number} is stopped at its current step and recorded "
            f"interrupted (relman pipeline resume {number} goes on from there)"
        ),
        processes=f"the processes of the current step of pipeline run #{number}",
    )

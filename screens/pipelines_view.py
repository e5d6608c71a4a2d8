"""What the pipeline view (screens/pipelines.py) and the overview's watcher line draw of the
documents ``api.pipeline_runs`` and ``api.watcher_status`` return (docs/json.md, ``pipeline
runs``): plain functions of those documents, to plain strings and status words, read
defensively (a field the engine leaves out is shown as unknown, never a crash). No Textual
here: the screen styles what these say, and the tests read them without an app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NONE = "—"
# One mark a step status, each a different shape, so that colour only helps.
MARKS = {
    "passed": "✓",
    "failed": "✗",
    "running": "▸",
    "waiting": "‖",
    "pending": "·",
    "skipped": "-",
}
# How a run's or a step's status is styled, as screens/common.py STATUS_CLASS names them.
STATUS_STYLE = {"waiting": "pending", "pending": "skipped"}
# Runs a person can drive on (``relman pipeline resume``).
RESUMABLE = frozenset({"waiting", "interrupted"})
# Where the view points first in a run: the step that is going on or that stopped it.
NOTABLE = ("running", "waiting", "failed")
WATCH_COMMAND = "relman watch --detach"


# ---------------------------------------------------------------------- the documents


def runs_of(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The runs of a ``pipeline runs`` document, newest first as the engine gives them."""
    runs = (document or {}).get("runs")
    if not isinstance(runs, list):
        return []
    return [run for run in runs if isinstance(run, Mapping) and run.get("run") is not None]


def steps_of(run: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    steps = (run or {}).get("steps")
    return [step for step in steps if isinstance(step, Mapping)] if isinstance(steps, list) else []


def run_key(run: Mapping[str, Any]) -> str:
    return str(run.get("run"))


def find_run(document: Mapping[str, Any] | None, key: str | None) -> Mapping[str, Any] | None:
    return next((run for run in runs_of(document) if run_key(run) == key), None)


def text(value: Any) -> str:
    """A field as one line (the engine's details may hold newlines); ``—`` when empty."""
    words = " ".join(str(value).split()) if value is not None else ""
    return words or NONE


def duration(seconds: Any) -> str:
    """``4.2s``, ``1m05s``, ``2h03m``; empty when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def release_name(run: Mapping[str, Any]) -> str:
    """``v1.4.0 (a1b2c3d)``, ``a1b2c3d`` without a version; empty before the run has one."""
    release = run.get("release")
    if not release:
        return ""
    version = run.get("version")
    short = str(release)[:7]
    return f"{version} ({short})" if version and version != release else short


# ---------------------------------------------------------------------- the list of runs


@dataclass(frozen=True)
class RunRow:
    """One run in the list: ``#3  retrain  iris  waiting  data  …``."""

    key: str
    number: str
    pipeline: str
    service: str
    status: str
    trigger: str
    started: str | None  # ISO-8601: the screen writes its age
    detail: str


def run_row(run: Mapping[str, Any]) -> RunRow:
    return RunRow(
        key=run_key(run),
        number=f"#{run.get('run')}",
        pipeline=text(run.get("pipeline")),
        service=text(run.get("service")),
        status=str(run.get("status") or "unknown"),
        trigger=text(run.get("trigger")),
        started=run.get("started"),
        detail=" ".join(str(run.get("detail") or "").split()),
    )


def summary(document: Mapping[str, Any] | None) -> str:
    """``4 runs · 1 waiting · 1 running``: what the list holds, what needs a person first."""
    runs = runs_of(document)
    if not runs:
        return "no pipeline runs yet"
    parts = [f"{len(runs)} run" + ("s" if len(runs) != 1 else "")]
    for status in ("running", "waiting", "interrupted", "failed"):
        count = sum(run.get("status") == status for run in runs)
        if count:
            parts.append(f"{count} {status}")
    return " · ".join(parts)


def no_runs_hint(service: str | None, *, read_only: bool) -> str:
    """What the empty view says: how a run starts."""
    if read_only:
        return "No pipeline has run yet in this project."
    target = f" --service {service}" if service else ""
    return (
        f"No pipeline has run yet: relman pipeline run release{target} starts one, "
        f"{WATCH_COMMAND} starts them on new commits and data."
    )


# ---------------------------------------------------------------------- the selected run


def run_title(run: Mapping[str, Any]) -> str:
    """``#3 retrain · iris · v1.4.0 (a1b2c3d)`` (the status is drawn after it, styled)."""
    parts = [f"#{run.get('run')} {text(run.get('pipeline'))}", text(run.get("service"))]
    release = release_name(run)
    if release:
        parts.append(release)
    return " · ".join(parts)


def trigger_line(run: Mapping[str, Any]) -> str:
    """``data: data/iris.csv changed · by alice · 2 of 9 steps done``: why it started, who
    started it, how far it got."""
    trigger = str(run.get("trigger") or "")
    reason = " ".join(str(run.get("reason") or "").split())
    started = f"{trigger}: {reason}" if trigger and reason else (reason or trigger or NONE)
    parts = [started]
    if run.get("actor"):
        parts.append(f"by {run['actor']}")
    steps = steps_of(run)
    if steps:
        done = sum(step.get("status") in ("passed", "skipped") for step in steps)
        parts.append(f"{done} of {len(steps)} steps done")
    return " · ".join(parts)


def waiting_command(run: Mapping[str, Any]) -> str:
    """The command that gives what a waiting run waits for (the engine's own words)."""
    waiting = run.get("waiting_for")
    if not isinstance(waiting, Mapping):
        return ""
    command = waiting.get("command")
    if command:
        return str(command)
    approval = approval_of(run)
    if approval is not None:
        release, env = approval
        return f"relman approve {release[:12]} --env {env}"
    return ""


def hint_lines(run: Mapping[str, Any], *, read_only: bool) -> list[tuple[str, str]]:
    """What the selected run asks of a person, as (style, line) pairs (the style a status
    screens/common.py STATUS_CLASS names: pending, interrupted...): what a waiting run
    waits for and the keys that give it; how an interrupted run goes on; why one failed."""
    status = str(run.get("status") or "")
    number = run.get("run")
    resume = f"relman pipeline resume {number}"
    if status == "waiting":
        waiting = run.get("waiting_for")
        step = waiting.get("step") if isinstance(waiting, Mapping) else None
        env = waiting.get("env") if isinstance(waiting, Mapping) else None
        what = f"{step}" + (f" ({env})" if env and env not in str(step) else "")
        lines = [("pending", f"waiting at {what if step else 'a step'}: {text(run.get('detail'))}")]
        command = waiting_command(run)
        if read_only:
            then = f"{command}, then {resume}" if command else resume
            lines.append(("skipped", f"read-only: from a session that may act, run {then}"))
        elif approval_of(run) is not None:
            lines.append(
                ("skipped", f"a approves it (asks first: {command}), then r resumes the run")
            )
        else:
            lines.append(("skipped", f"r resumes the run ({resume})"))
        return lines
    if status == "interrupted":
        line = text(run.get("detail"))
        if line == NONE:
            line = "the relman that drove it stopped"
        keys = f"run {resume}" if read_only else f"r resumes it ({resume})"
        return [("interrupted", f"interrupted: {line}"), ("skipped", keys)]
    if status in ("failed", "cancelled"):
        return [(status, f"{status}: {text(run.get('detail'))}")]
    if status == "running":
        driver = run.get("driver")
        pid = driver.get("pid") if isinstance(driver, Mapping) else None
        host = driver.get("host") if isinstance(driver, Mapping) else None
        by = f"pid {pid}" + (f" on {host}" if host else "") if pid else "another relman"
        return [("running", f"running, driven by {by}")]
    return []


def approval_of(run: Mapping[str, Any]) -> tuple[str, str] | None:
    """(release, env) of the approval a waiting run waits for; None when it waits for none."""
    if run.get("status") != "waiting":
        return None
    waiting = run.get("waiting_for")
    if not isinstance(waiting, Mapping):
        return None
    release = waiting.get("release") or run.get("release")
    env = waiting.get("env")
    if not release or not env:
        return None
    return str(release), str(env)


def resumable(run: Mapping[str, Any] | None) -> bool:
    return run is not None and run.get("status") in RESUMABLE


# ---------------------------------------------------------------------- the steps


@dataclass(frozen=True)
class StepLine:
    """One step of the selected run: ``✓ test  4.1s  x2  unit: 12 passed``."""

    key: str
    mark: str
    status: str
    name: str
    time: str
    retries: str
    detail: str


def step_time(step: Mapping[str, Any]) -> str:
    """A step's time: none before it starts, nor while it runs with none recorded yet."""
    status = step.get("status")
    seconds = step.get("seconds")
    if status in ("pending", "skipped") or (status in ("running", "waiting") and not seconds):
        return ""
    return duration(seconds)


def retries(step: Mapping[str, Any]) -> str:
    """``x2`` when the step was tried more than once."""
    attempts = step.get("attempts")
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1:
        return f"x{attempts}"
    return ""


def step_lines(run: Mapping[str, Any]) -> list[StepLine]:
    number = run.get("run")
    lines = []
    for index, step in enumerate(steps_of(run)):
        status = str(step.get("status") or "pending")
        detail = " ".join(str(step.get("detail") or "").split())
        lines.append(
            StepLine(
                key=f"{number}:{index}",
                mark=MARKS.get(status, "?"),
                status=status,
                name=text(step.get("name")),
                time=step_time(step),
                retries=retries(step),
                detail=detail,
            )
        )
    return lines


def notable_step(run: Mapping[str, Any]) -> int:
    """The step to point at first: the one going on or that stopped the run, else the last
    one that ran, else the first."""
    steps = steps_of(run)
    for index, step in enumerate(steps):
        if step.get("status") in NOTABLE:
            return index
    ran = [i for i, step in enumerate(steps) if step.get("status") in ("passed", "skipped")]
    return ran[-1] if ran else 0


def output_title(run: Mapping[str, Any], step: Mapping[str, Any]) -> str:
    """``#3 retrain · test · failed · x2 · 4.1s``."""
    parts = [f"#{run.get('run')} {text(run.get('pipeline'))}", text(step.get("name"))]
    parts.append(str(step.get("status") or "pending"))
    for extra in (retries(step), step_time(step)):
        if extra:
            parts.append(extra)
    return " · ".join(parts)


def output_lines(step: Mapping[str, Any]) -> list[str]:
    """The step's whole detail, then its output lines (as recorded)."""
    lines = []
    detail = str(step.get("detail") or "").strip()
    if detail:
        lines += detail.splitlines()
        lines.append("")
    output = step.get("output")
    recorded = [str(line) for line in output] if isinstance(output, Sequence) else []
    if isinstance(output, str):
        recorded = output.splitlines()
    if recorded:
        lines += recorded
    else:
        status = step.get("status")
        lines.append(
            "no output yet" if status in ("pending", "running", "waiting") else "no output recorded"
        )
    return lines


# ---------------------------------------------------------------------- the watcher


def watcher_line(
    watcher: Mapping[str, Any] | None, *, read_only: bool = False, last_started: bool = True
) -> str:
    """``watcher: running on main, last started run #3 retrain for iris (data)``, or
    ``watcher: off (relman watch --detach)`` (read-only sessions are not told to start it).
    The pipeline view, which lists the runs, leaves out what it last started."""
    watcher = watcher or {}
    if watcher.get("running"):
        branch = watcher.get("branch")
        line = "watcher: running" + (f" on {branch}" if branch else "")
    else:
        line = "watcher: off" + ("" if read_only else f" ({WATCH_COMMAND})")
    started = watcher.get("last_started")
    if last_started and isinstance(started, Mapping) and started.get("run") is not None:
        what = f"run #{started['run']} {text(started.get('pipeline'))}"
        if started.get("service"):
            what += f" for {started['service']}"
        if started.get("trigger"):
            what += f" ({started['trigger']})"
        line += f", last started {what}"
    error = watcher.get("last_error")
    if error and watcher.get("running"):
        line += f" · last error: {' '.join(str(error).split())}"
    return line

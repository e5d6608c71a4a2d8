"""What the rollout pane (screens/rollout.py) draws of a RolloutDocument (docs/json.md,
``rollout status``), and what its confirmations say: plain functions of the document, read
defensively (a field the engine leaves out is shown as unknown, never a crash). Each line is
meant for one line at 80 columns: tables cut their details with an ellipsis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from screens.common import NONE, StatusStatic, age, status_text
from screens.overview_rows import OPEN_PHASES, PHASE_STATUS

# The status (screens/common.py STATUS_CLASS) each step status and verdict is styled as.
STEP_STATUS = {"waiting": "skipped", "pending": "skipped", "aborted": "undone"}
# Steps behind the rollout (done: "passed" as the engine records them).
DONE = frozenset({"done", "passed", "skipped"})
# Steps not started yet: no time to show.
NOT_STARTED = frozenset({"waiting", "pending"})
VERDICT_STATUS = {"pass": "passed", "fail": "failed", "inconclusive": "pending"}
# The widest the narrow columns get before their text is cut with an ellipsis.
STEP_WIDTH = 22
CHECK_WIDTH = 16
FIGURE_WIDTH = 18
# Steps named in the promote-now dialog; more are counted.
STEPS_NAMED = 3

# ---------------------------------------------------------------------- the document


def phase_of(document: Mapping[str, Any] | None) -> str:
    return str((document or {}).get("phase") or "none")


def release_name(value: Any, version: Any = None) -> str:
    """``v1.4.0 (a1b2c3d)``, ``a1b2c3d`` without a version; the release may come as its id
    or as ``{"release", "version"}``."""
    if isinstance(value, Mapping):
        version = value.get("version") or version
        value = value.get("release") or value.get("id")
    if not value:
        return NONE
    release = str(value)
    # The engine gives the id again as the version of a release that has none.
    return f"{version} ({release[:7]})" if version and version != release else release[:7]


def stable_name(document: Mapping[str, Any]) -> str:
    return release_name(document.get("stable"), document.get("stable_version"))


def canary_name(document: Mapping[str, Any]) -> str:
    return release_name(document.get("canary"), document.get("canary_version"))


def steps_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    steps = document.get("steps")
    return [step for step in steps if isinstance(step, Mapping)] if isinstance(steps, list) else []


def checks_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    checks = document.get("analysis")
    if not isinstance(checks, list):
        return []
    return [check for check in checks if isinstance(check, Mapping)]


def current_step(steps: Sequence[Mapping[str, Any]]) -> tuple[int, str] | None:
    """(1-based position, name) of the running step; None when none runs."""
    for index, step in enumerate(steps):
        if step.get("status") == "running":
            return index + 1, str(step.get("name") or "")
    return None


def weight_words(document: Mapping[str, Any]) -> str:
    """``at 10%`` (a canary's share of requests), ``mirrors 100%`` (a shadow's)."""
    weight = document.get("weight")
    if not isinstance(weight, int | float):
        return ""
    share = f"{weight:g}%"
    return f"mirrors {share}" if document.get("strategy") == "shadow" else f"at {share}"


def duration(seconds: Any) -> str:
    """``4.2s``, ``1m05s``; empty when unknown."""
    if not isinstance(seconds, int | float) or seconds < 0:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def step_time(status: str, seconds: Any) -> str:
    """A step's time: none before it starts, nor while it runs with none recorded yet (the
    engine records a step's seconds when it ends)."""
    if status in NOT_STARTED or (status == "running" and not seconds):
        return ""
    return duration(seconds)


def driver_gone(document: Mapping[str, Any]) -> bool:
    """Whether the relman driving an open rollout has stopped (no step moves until a
    person aborts or promotes it)."""
    driver = document.get("driver")
    return (
        phase_of(document) in OPEN_PHASES
        and isinstance(driver, Mapping)
        and driver.get("alive") is False
    )


def title_text(widget: StatusStatic, service: str, env: str, document: Mapping[str, Any]) -> Text:
    """``iris in dev · canary rollout · progressing``."""
    phase = phase_of(document)
    strategy = str(document.get("strategy") or "")
    line = Text(f"{service} in {env} · ")
    if phase == "none":
        line.append("no rollout")
        return line
    line.append(f"{strategy} rollout · " if strategy else "rollout · ")
    line.append_text(status_text(widget, PHASE_STATUS.get(phase, phase), phase))
    if driver_gone(document):
        line.append(" · ")
        line.append_text(status_text(widget, "interrupted"))
    return line


def releases_line(document: Mapping[str, Any]) -> str:
    """``stable v1.3.2 (0f9e8d7) · canary v1.4.0 (a1b2c3d) at 10% · step 2/6 · for 3m``:
    the releases and the weight first, what fits at 80 columns."""
    if phase_of(document) == "none":
        return ""
    role = "shadow" if document.get("strategy") == "shadow" else "canary"
    new = f"{role} {canary_name(document)}"
    weight = weight_words(document)
    parts = [f"stable {stable_name(document)}", f"{new} {weight}" if weight else new]
    steps = steps_of(document)
    running = current_step(steps)
    if running is not None:
        parts.append(f"step {running[0]}/{len(steps)}")
    if document.get("since"):
        parts.append(f"for {age(str(document['since']))}")
    return " · ".join(parts)


def detail_text(widget: StatusStatic, service: str, env: str, document: Mapping[str, Any]) -> Text:
    """The document's ``detail`` (why it paused or aborted, what it waits for; that its
    driver stopped), empty when there is nothing to say; where no rollout ever ran, the
    command that starts one."""
    phase = phase_of(document)
    if phase == "none":
        # The command on a line of its own: at 80 columns it is never cut.
        return Text.assemble(
            (f"no rollout has run in {env}; one starts with:\n", "dim"),
            (f"relman promote {service} --to {env} --strategy canary", "bold"),
        )
    detail = str(document.get("detail") or "")
    if driver_gone(document):
        driver = document["driver"]
        where = f" on {driver['host']}" if driver.get("host") else ""
        # The engine's detail says so when it knows; else this does.
        detail = (
            detail or f"interrupted: the relman driving it (pid {driver.get('pid')}{where}) stopped"
        )
        return status_text(widget, "interrupted", detail)
    if not detail:
        return Text("")
    status = "failed" if phase == "aborted" else PHASE_STATUS.get(phase, "skipped")
    return status_text(widget, status, detail)


def clipped(width: int) -> dict[str, Any]:
    """A column of at most ``width`` cells, its text cut with an ellipsis, never wrapped."""
    return {"max_width": width, "no_wrap": True, "overflow": "ellipsis"}


def steps_table(widget: StatusStatic, document: Mapping[str, Any]) -> RenderableType:
    """One line a step: its status, name, time and detail (cut with an ellipsis)."""
    steps = steps_of(document)
    if not steps:
        return Text("no steps recorded yet", style="dim")
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(**clipped(8))
    table.add_column(**clipped(STEP_WIDTH))
    table.add_column(justify="right", **clipped(6))
    table.add_column(ratio=1, **clipped(200))
    for step in steps:
        status = str(step.get("status") or "waiting")
        table.add_row(
            status_text(widget, STEP_STATUS.get(status, status), status),
            Text(str(step.get("name") or "")),
            Text(step_time(status, step.get("seconds")), style="dim"),
            Text(str(step.get("detail") or ""), style="dim"),
        )
    return table


def checks_table(widget: StatusStatic, document: Mapping[str, Any]) -> RenderableType:
    """One line a check: the stable's and the canary's figures side by side, the verdict,
    and its detail (cut with an ellipsis)."""
    checks = checks_of(document)
    if not checks:
        waiting = phase_of(document) in OPEN_PHASES
        return Text(
            "nothing measured yet: an analysis step checks the canary against the stable release"
            if waiting
            else "no check was measured",
            style="dim",
        )
    role = "shadow" if document.get("strategy") == "shadow" else "canary"
    table = Table(
        box=None, padding=(0, 1), expand=True, show_edge=False, pad_edge=False, header_style="bold"
    )
    table.add_column("check", **clipped(CHECK_WIDTH))
    table.add_column("stable", **clipped(FIGURE_WIDTH))
    table.add_column(role, **clipped(FIGURE_WIDTH))
    table.add_column("verdict", **clipped(12))
    table.add_column("detail", ratio=1, **clipped(200))
    for check in checks:
        verdict = str(check.get("verdict") or "")
        table.add_row(
            Text(str(check.get("check") or "")),
            Text(str(check.get("stable") or NONE)),
            Text(str(check.get("canary") or NONE)),
            status_text(widget, VERDICT_STATUS.get(verdict, verdict), verdict or NONE),
            Text(str(check.get("detail") or ""), style="dim"),
        )
    return table


# ---------------------------------------------------------------------- the actions


def left_steps(document: Mapping[str, Any]) -> str:
    """``weight 50%, pause 20s and 1 more``: the steps not done yet."""
    left = [str(s.get("name") or "") for s in steps_of(document) if s.get("status") not in DONE]
    if not left:
        return ""
    named = ", ".join(left[:STEPS_NAMED])
    return named + (f" and {len(left) - STEPS_NAMED} more" if len(left) > STEPS_NAMED else "")


def plan_text(verb: str, service: str, env: str, document: Mapping[str, Any] | None) -> str:
    """Exactly what ``verb`` (pause, resume, abort, promote) does to the rollout shown."""
    document = document or {}
    strategy = str(document.get("strategy") or "")
    rollout = f"the {strategy} rollout" if strategy else "the rollout"
    stable, canary = stable_name(document), canary_name(document)
    shadow = strategy == "shadow"
    weight = document.get("weight")
    at = f" at {weight:g}%" if isinstance(weight, int | float) else ""
    running = current_step(steps_of(document))
    if verb == "pause":
        now = f" (now: {running[1]})" if running else ""
        split = "requests stay mirrored" if shadow else "traffic stays split"
        return (
            f"pause {rollout} of {service} in {env}{at}{now}: {split} as it is and no further "
            "step starts until it is resumed (p)"
        )
    if verb == "resume":
        left = left_steps(document)
        return f"resume {rollout} of {service} in {env}{at}" + (
            f": the steps left run ({left})" if left else ""
        )
    if verb == "abort":
        if shadow:
            return (
                f"abort {rollout} of {service} in {env}: requests are no longer mirrored to "
                f"{canary}, which is stopped; {stable} goes on serving every request"
            )
        return (
            f"abort {rollout} of {service} in {env}: {stable} serves every request again "
            f"and the canary {canary} is stopped"
        )
    left = left_steps(document)
    skipped = f", skipping the steps left ({left}) and their analysis" if left else ""
    return (
        f"promote the {strategy or 'new'} release {canary} of {service} in {env} now: it serves "
        f"every request at once{skipped}; {stable} is retired"
    )

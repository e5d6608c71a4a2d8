"""The overview's rows: each service's environments in promotion order, then its candidate,
as table cells (rich Text, never read as markup), in the columns that fit the width.

At 80 columns the traffic of a deployed environment (request rate, error rate, newest p95,
and as much of the p95 sparkline as fits) takes the last column, where the URL of an
environment not deployed yet and the candidate's reasons are; wider, request rate, error rate
and a p95 sparkline get columns of their own beside the URL. A firing alert is said in the
state: ``live, 1 firing``; a rollout in progress takes the place of ``live``: ``canary 10%``,
``shadow 100%``, ``paused 50%``, ``aborted`` (the status document's per-environment
``rollout``, docs/json.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.content import Content

from screens.charts import ms, percent, rate, spark
from screens.common import (
    NONE,
    StatusTable,
    age,
    fit_last_column,
    last_column_room,
    short,
    status_style,
)
from screens.live_data import SPARK_MINUTES, EnvFigures, LiveFigures

if TYPE_CHECKING:
    from core import api
    from core.api import ServiceView

Columns = tuple[tuple[str, str], ...]
# (column key, label), left to right. The first five are in both layouts.
FIRST: Columns = (
    ("service", "Service"),
    ("env", "Env"),
    ("release", "Release"),
    ("state", "State"),
    ("since", "Since"),
)
NARROW: Columns = (*FIRST, ("detail", "Traffic / URL / why"))
WIDE: Columns = (
    *FIRST,
    ("rps", "Req/s"),
    ("errors", "Errors"),
    ("p95", f"p95, last {SPARK_MINUTES} min"),
    ("detail", "URL / why"),
)
# COLUMNS: the narrow layout, the one a test at 80 columns sees.
COLUMNS = NARROW
# The wide layout is taken when its last column keeps at least this many cells (a URL, and
# the start of the candidate's reason: the line under the table has all of it).
WIDE_ROOM = 18

NOT_DEPLOYED = "not deployed"
CANDIDATE = "@candidate"
_NONE = Text(NONE, style="dim")

Row = tuple[Text, ...]

# A rollout's phases that still split (or mirror) the traffic: the pane's keys act on them.
OPEN_PHASES = frozenset({"progressing", "paused"})
# The states a rollout's label never hides: they need someone before the rollout does.
ATTENTION = frozenset({"interrupted", "down", "failed", "error"})
# The status (screens/common.py STATUS_CLASS) each phase is styled as.
PHASE_STATUS = {"progressing": "running", "paused": "pending", "aborted": "undone"}


def row_key(service: str, environment: str) -> str:
    """The key of the table row of ``service`` in ``environment`` (or its CANDIDATE)."""
    return f"{service}/{environment}"


def url_text(url: str | None) -> str:
    """``127.0.0.1:3100``: the scheme is left out when it is plain http, to fit 80 columns;
    ``—`` for a stage relman reads and does not serve."""
    return "—" if url is None else url.removeprefix("http://")


def rollout_of(environment: object) -> dict[str, Any] | None:
    """The environment's ``rollout`` (``{"phase", "strategy", "weight", "canary",
    "canary_version", "interrupted", ...}``), None when it has none, or when the engine says
    nothing of rollouts (read with getattr: an older engine's view has no such field)."""
    rollout = getattr(environment, "rollout", None)
    return rollout if isinstance(rollout, dict) and rollout.get("phase") else None


def rollout_label(rollout: dict[str, Any] | None) -> tuple[str, str] | None:
    """``("canary 10%", "running")``: what the state cell says of a rollout, and the status
    it is styled as; None when there is nothing to say (none, or promoted: the release is
    simply live)."""
    if not rollout:
        return None
    phase = str(rollout.get("phase") or "")
    weight = rollout.get("weight")
    share = f" {weight}%" if isinstance(weight, int | float) else ""
    if phase == "progressing":
        return f"{rollout.get('strategy') or 'rollout'}{share}", PHASE_STATUS[phase]
    if phase == "paused":
        return f"paused{share}", PHASE_STATUS[phase]
    if phase == "aborted":
        return "aborted", PHASE_STATUS[phase]
    return None


def state_cell(table: StatusTable, environment: object) -> Text:
    """The state of an environment's row: the rollout going on there (``canary 10%``), else
    the recorded state (``live``); a state that needs someone (interrupted, down) first, and
    ``interrupted`` where the relman driving the rollout stopped."""
    state = str(getattr(environment, "state", ""))
    rollout = rollout_of(environment)
    label = rollout_label(rollout)
    if label is not None and rollout is not None and rollout.get("interrupted"):
        state = "interrupted"  # its driver stopped: nothing moves until a person acts
    elif label is not None and state not in ATTENTION:
        return Text(label[0], style=status_style(table, label[1]))
    return Text(state, style=status_style(table, state))


def candidate_state(candidate: dict[str, Any] | None) -> tuple[str, str]:
    """``clean``, ``dirty`` or ``stale``, and the first reason (the commit when clean)."""
    if candidate is None:
        return "loading", "reading git and DVC…"
    if "error" in candidate:
        return "unknown", str(candidate["error"])
    problems = list(candidate.get("problems") or [])
    git = candidate.get("git") or {}
    # Dirty only when the changes touch what the release serves (its id ends in -dirty): an
    # edited relman.toml or README leaves the candidate releasable (docs/json.md).
    if str(candidate.get("release", "")).endswith("-dirty"):
        return "dirty", problems[0] if problems else "uncommitted changes"
    if problems:
        return "stale", problems[0]
    return "clean", f"{git.get('short', '')} {git.get('message', '')}".strip()


def first_cells(
    table: StatusTable, services: Iterable[ServiceView], candidates: dict[str, dict[str, Any]]
) -> dict[str, tuple[Row, Text]]:
    """Each row's first five cells and its detail (the URL, or the candidate's reason), keyed
    by (service, environment): each service's environments in promotion order, then its
    candidate. Cells are rich Text, never read as markup."""
    rows: dict[str, tuple[Row, Text]] = {}
    for service in services:
        for env in service.environments:
            if env.release:
                release = Text(short(env.release))
                if env.version:
                    release.append(f" {env.version}", style="dim")
            elif env.version:  # a stage relman reads: the version its tags assign
                release = Text(env.version, style="dim")
            else:
                release = _NONE
            cells = (
                Text(service.name),
                Text(env.name),
                release,
                state_cell(table, env),
                Text(age(env.since)) if env.since else _NONE,
            )
            rows[row_key(service.name, env.name)] = (cells, Text(url_text(env.url)))
        candidate = candidates.get(service.name)
        state, why = candidate_state(candidate)
        release_id = str((candidate or {}).get("release") or "")
        shown = short(release_id) + ("-dirty" if release_id.endswith("-dirty") else "")
        committed = ((candidate or {}).get("git") or {}).get("committed_at")
        cells = (
            Text(service.name),
            Text("candidate", style="italic"),
            Text(shown) if release_id else _NONE,
            Text(state, style=status_style(table, state)),
            Text(age(committed)) if committed else _NONE,
        )
        rows[row_key(service.name, CANDIDATE)] = (cells, Text(why))
    return rows


def with_firing(table: StatusTable, state: Text, firing: int) -> Text:
    """``live, 1 firing``: the state, and the alerts firing there."""
    if not firing:
        return state
    return Text.assemble(state, (f", {firing} firing", status_style(table, "firing")))


def errors_text(table: StatusTable, errors: float | None) -> Text:
    """``31%``: the newest minute's error rate, in the style of a failure when above zero."""
    if errors is None:
        return Text(NONE, style="dim")
    return Text(percent(errors), style=status_style(table, "failed") if errors > 0 else "dim")


def traffic_text(table: StatusTable, figures: EnvFigures, room: int) -> Text:
    """``4.9/s  0% err p95  48ms ▂▃▅▇▆``: the newest request rate, error rate and p95, then as
    much of the p95 sparkline as ``room`` leaves (none under five cells); ``—`` without
    figures. Where ``room`` is short (an alert firing widens the state), the padding goes,
    then the word p95: the error rate stays."""
    if figures.rps is None and not figures.p95:
        return Text(NONE, style="dim")
    speed, errors, p95 = rate(figures.rps), errors_text(table, figures.errors), ms(figures.last_p95)
    padded = Text.assemble(f"{speed:>5} {'':>{4 - len(errors)}}", errors.copy())
    padded.append(f" err p95 {p95:>5}")
    cells = min(SPARK_MINUTES, room - padded.cell_len - 1)
    if figures.p95 and cells >= 5:
        padded.append(" " + spark(figures.p95[-cells:]), style="bold")
        return padded
    for text in (
        padded,
        Text.assemble(f"{speed} ", errors.copy(), f" err p95 {p95}"),
        Text.assemble(f"{speed} ", errors.copy(), f" err {p95}"),
    ):
        if text.cell_len <= room:
            return text
    return text


def overview_rows(
    table: StatusTable,
    services: Iterable[ServiceView],
    candidates: dict[str, dict[str, Any]] | None = None,
    live: LiveFigures | None = None,
    width: int = 80,
) -> tuple[Columns, dict[str, Row]]:
    """The columns that fit ``width`` and the table's rows in them, keyed by (service,
    environment); the last cell is clipped to fit."""
    live = live or LiveFigures()
    services = list(services)
    first = first_cells(table, services, candidates or {})
    rows: dict[str, Row] = {}
    for key, (cells, _detail) in first.items():
        state = with_firing(table, cells[3], live.of(key).firing)
        rows[key] = (*cells[:3], state, cells[4])
    is_env = {key: not key.endswith(f"/{CANDIDATE}") for key in rows}
    wide_cells = {
        key: (
            Text(rate(live.of(key).rps)) if is_env[key] and live.of(key).rps is not None else _NONE,
            errors_text(table, live.of(key).errors) if is_env[key] else _NONE,
            p95_cell(live.of(key)) if is_env[key] else _NONE,
        )
        for key in rows
    }
    wide_labels = [label for _key, label in WIDE]
    wide_rows = [(*rows[key], *wide_cells[key]) for key in rows]
    if last_column_room(wide_rows, width, wide_labels) >= WIDE_ROOM:
        columns = WIDE
        shown = {key: (*rows[key], *wide_cells[key], first[key][1]) for key in rows}
    else:
        columns = NARROW
        labels = [label for _key, label in NARROW]
        # The column is as wide as its label at least, whatever room is left.
        room = max(len(labels[-1]), last_column_room(rows.values(), width, labels))
        # Where nothing is deployed, the URL it will serve at (there is no traffic to show).
        deployed = {
            f"{service.name}/{env.name}"
            for service in services
            for env in service.environments
            if env.release
        }
        shown = {
            key: (
                *cells,
                traffic_text(table, live.of(key), room) if key in deployed else first[key][1],
            )
            for key, cells in rows.items()
        }
    return columns, fit_last_column(shown, width, [label for _key, label in columns])


def p95_cell(figures: EnvFigures) -> Text:
    """The p95 sparkline of the last minutes (blank where a minute had no requests), then
    the newest value."""
    if not figures.p95:
        return _NONE
    cells = spark(figures.p95).rjust(SPARK_MINUTES)
    return Text.assemble((cells, "bold"), f" {ms(figures.last_p95)}")


def nothing_deployed(
    project: api.Project, services: Iterable[ServiceView], *, read_only: bool
) -> Content:
    """The line above the table while no environment of any service has a release (empty
    once one has): where to start."""
    if project.inferred:
        return Content.assemble(
            "Reading without a relman.toml — ",
            ("relman init", "bold"),
            " writes one",
        )
    if any(env.release for service in services for env in service.environments):
        return Content("")
    if read_only:
        return Content("Nothing deployed yet.")
    first = next(iter(project.config.environments), "dev")
    service = next(iter(project.config.services), "SERVICE")
    if all(view.bento is None for view in services):  # lineage only: nothing to release yet
        return Content.assemble(
            "Nothing to deploy yet — add a BentoML service to relman.toml, or ",
            (project.config.scaffold_command(service), "bold"),
        )
    return Content.assemble(
        "Nothing deployed yet — ",
        ("relman release", "bold"),
        f" tests, builds and deploys {service} to {first}",
    )

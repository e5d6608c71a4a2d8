"""What on-call reads first on the overview, and the header's short form of it.

Above the table: each alert firing (where, its rule and its line) and each environment a
killed relman left ``interrupted``, with the command that takes it over on a line of its own
(docs/json.md, ``status``: ``next``), so that at 80 columns the command is never cut. The
header's sub-title counts them (``1 firing · 1 interrupted``) on every screen. Under the
table, the selected row's whole story, one fact a line, and what happened lately (api.history,
newest first), in the room the table leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from screens.charts import ms, percent, rate
from screens.common import StatusStatic, age, status_style
from screens.live_data import EnvFigures, FiringAlert
from screens.overview_rows import OPEN_PHASES, rollout_label, rollout_of, url_text

if TYPE_CHECKING:
    from textual.widget import Widget

    from core.api import EnvironmentView, ServiceView

# Firing alerts named above the table; more are counted (the alerts screen, !, lists all).
TOP_FIRING = 3
INTERRUPTED = "interrupted"
# What to run when the engine did not say (an older ledger): the general rule.
TAKE_OVER = "the next promote, rollback or down finishes or undoes it"
# History statuses of things that went as planned.
QUIET = frozenset({"done", "passed", "ok", "approved", ""})


def interrupted(services: Iterable[ServiceView]) -> list[tuple[str, EnvironmentView]]:
    """(service, environment) of every environment a killed relman left interrupted."""
    return [
        (service.name, env)
        for service in services
        for env in service.environments
        if env.state == INTERRUPTED
    ]


def clip(text: Text, width: int) -> Text:
    """``text`` on one line of ``width`` cells, ending in ``…`` when it was longer."""
    if text.cell_len <= width:
        return text
    text = text.copy()
    text.truncate(max(1, width - 1))
    text.append("…")
    return text


def signal_lines(
    widget: Widget,
    services: Sequence[ServiceView],
    firing: Sequence[FiringAlert],
    width: int,
) -> Text:
    """The lines above the table (empty when all is well): the firing alerts, one line each
    clipped to ``width``, then each interrupted environment and, on a line of its own, the
    command that finishes or undoes it (wrapped, never clipped)."""
    lines: list[Text] = []
    several = len({service.name for service in services}) > 1
    for alert in firing[:TOP_FIRING]:
        where = f"{alert.service}/{alert.env}" if several else alert.env
        line = Text.assemble(
            ("firing", status_style(widget, "firing")),
            f" {alert.name} in {where}: {alert.detail}",
        )
        lines.append(clip(line, width))
    if len(firing) > TOP_FIRING:
        lines.append(Text(f"… {len(firing) - TOP_FIRING} more firing (! lists them)", "dim"))
    for service, env in interrupted(services):
        where = f"{service}/{env.name}" if several else env.name
        # Short enough for one line at 80 columns; wrapped, never clipped, when longer.
        lines.append(
            Text.assemble(
                (INTERRUPTED, status_style(widget, INTERRUPTED)),
                f" in {where}: relman was killed mid-way; "
                + ("to finish or undo it, run:" if env.next_step else TAKE_OVER),
            )
        )
        if env.next_step:
            lines.append(Text.assemble("  ", (env.next_step, "bold")))
    return Text("\n").join(lines)


def header_summary(services: Iterable[ServiceView], firing: Sequence[FiringAlert]) -> str:
    """``1 firing · 1 interrupted`` for the header's sub-title; empty when all is well."""
    parts = []
    if firing:
        parts.append(f"{len(firing)} firing")
    stuck = len(interrupted(services))
    if stuck:
        parts.append(f"{stuck} {INTERRUPTED}")
    return " · ".join(parts)


def traffic_line(figures: EnvFigures) -> str:
    """``now 4.9/s, 0% errors, p95 48ms``; empty without figures."""
    if figures.rps is None and not figures.p95:
        return ""
    return f"now {rate(figures.rps)}, {percent(figures.errors)} errors, p95 {ms(figures.last_p95)}"


def rollout_line(environment: EnvironmentView) -> str:
    """``rollout: canary 10% of v1.4.0 (a1b2c3d) · R shows its steps and checks``; empty
    when no rollout is going on (or was aborted) there."""
    rollout = rollout_of(environment)
    label = rollout_label(rollout)
    if rollout is None or label is None:
        return ""
    canary = str(rollout.get("canary") or "")
    version = rollout.get("canary_version")
    of = f" of {version} ({canary[:7]})" if version and canary else ""
    of = of or (f" of {canary[:7]}" if canary else "")
    if rollout.get("interrupted"):
        return f"rollout: {label[0]}{of}, its driver stopped · R shows what to do"
    keys = "its steps and checks" if rollout.get("phase") in OPEN_PHASES else "why"
    return f"rollout: {label[0]}{of} · R shows {keys}"


def environment_story(service: str, environment: EnvironmentView, figures: EnvFigures) -> str:
    """The whole story of an environment's row, for the lines under the table: one fact a
    line (they wrap at the width, nothing is cut)."""
    first = f"{service} in {environment.name}: {environment.state} at {url_text(environment.url)}"
    if environment.release:
        version = f" ({environment.version})" if environment.version else ""
        first += f" · release {environment.release}{version}"
    lines = [first]
    rollout = rollout_line(environment)
    if rollout:
        lines.append(rollout)
    now = traffic_line(figures)
    if figures.firing:
        now += ("; " if now else "") + f"{figures.firing} alert(s) firing (! lists them)"
    if now:
        lines.append(now)
    if environment.note:
        lines.append(environment.note)
    if environment.next_step:
        lines.append(f"next: {environment.next_step}")
    return "\n".join(lines)


def recent_lines(widget: Widget, entries: Sequence[dict[str, Any]]) -> Text:
    """What happened lately, newest first: ``  3m  promote a1b2c3d (v1.4.0) to dev: done``.
    The widget clips each line to its width (no wrap) and shows as many as fit."""
    if not entries:
        return Text("nothing recorded yet", style="dim")
    lines = []
    for entry in entries:
        status = str(entry.get("status") or "")
        line = Text(f"{age(entry.get('at')):>4}  ", style="dim")
        # What went wrong stands out; what went as planned is plain text.
        style = status_style(widget, status) if status not in QUIET else ""
        line.append(str(entry.get("summary") or ""), style=style)
        actor = entry.get("actor")
        if actor:
            line.append(f" · {actor}", style="dim")
        lines.append(line)
    return Text("\n").join(lines)


class SignalsBar(StatusStatic):
    """The lines above the overview's table (see signal_lines), hidden when all is well;
    drawn again at a new width (the alerts' lines are clipped to it)."""

    def __init__(self, *, id: str) -> None:
        super().__init__("", id=id, markup=False)
        self.services: Sequence[ServiceView] = ()
        self.firing: Sequence[FiringAlert] = ()
        self.display = False

    def show(self, services: Sequence[ServiceView], firing: Sequence[FiringAlert]) -> None:
        self.services, self.firing = services, firing
        self.draw()

    def draw(self) -> None:
        # Padding one cell each side: the width of the screen, which a first draw may
        # precede this widget's own layout.
        lines = signal_lines(self, self.services, self.firing, self.screen.size.width - 2)
        self.update(lines)
        self.display = bool(lines.plain)

    def on_resize(self) -> None:
        self.draw()


class RecentPanel(StatusStatic):
    """What happened lately (see recent_lines), under the overview's table: as many lines as
    the room the table leaves."""

    BORDER_TITLE = "Recent"

    def show(self, entries: Sequence[dict[str, Any]], error: str = "") -> None:
        if error:
            self.update(Text(error, style=status_style(self, "error")))
        else:
            self.update(recent_lines(self, entries))

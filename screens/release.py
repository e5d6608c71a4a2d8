"""The release screen: one release (or the candidate) of a service, and what can be done to it.

Lineage (commit, data and model, params), metrics against what each environment runs, the
tests, the gates of the next environment, and this release's history; all read in a worker
(screens/release_data.py). The actions go through plan -> confirm -> run (screens/base.py).
"""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from core import api
from core.errors import ReleaseError
from screens.actions import Subject
from screens.base import ActionScreen
from screens.common import (
    NONE,
    StatusStatic,
    age,
    clock,
    grid,
    number,
    size,
    status_style,
    status_text,
)
from screens.messages import EngineFailed, ReleaseLoaded
from screens.release_data import ReleaseDetail, load_release

SECTIONS = ("lineage", "metrics", "tests", "gates", "history")


def delta_text(delta: float | None) -> str:
    if delta is None:
        return NONE
    if delta == 0:
        return "±0"
    return f"{delta:+.4g}"


class ReleaseScreen(ActionScreen):
    """Lineage, metrics, tests, gates and history of a release; its actions as keys."""

    CSS_PATH = "release.tcss"
    BINDING_GROUP_TITLE = "Release"
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Back to the overview"),
        Binding("p", "promote", "Promote", tooltip="Deploy it to the next environment"),
        Binding("a", "approve", "Approve", tooltip="Approve it for the next env that needs it"),
        Binding(
            "b", "rollback", "Rollback", tooltip="Roll back the environment it was opened from"
        ),
        Binding("t", "test", "Tests", tooltip="Run the test suites against the candidate"),
        Binding("u", "build", "Build", tooltip="Build the candidate's Bento"),
        Binding("r", "refresh", "Refresh", tooltip="Read the release again", show=False),
    ]
    ACTIONS = frozenset({"promote", "approve", "rollback", "test", "build"})
    MUTATING = frozenset({"promote", "approve", "rollback", "build"})

    def __init__(self, subject: Subject) -> None:
        super().__init__()
        self.subject = subject
        self.detail: ReleaseDetail | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(self.heading(), id="release-title", markup=False)
        with VerticalScroll(id="release-body"):
            for name in SECTIONS:
                yield Static(name.capitalize(), id=f"{name}-heading", classes="heading")
                yield StatusStatic("", id=f"release-{name}", classes="section")
        # Six actions fill 80 columns: ctrl+p is left out of the footer (the help lists it).
        yield Footer(compact=True, show_command_palette=False)

    def heading(self) -> str:
        subject = self.subject
        what = subject.release or "candidate"
        where = f" in {subject.env}" if subject.env and subject.release else ""
        return f"{subject.service} {what}{where} · loading…"

    def on_mount(self) -> None:
        body = self.query_one("#release-body", VerticalScroll)
        body.loading = True
        self.load()

    def action_back(self) -> None:
        self.dismiss()

    def action_refresh(self) -> None:
        self.load()

    def on_run_ended(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="release")
    def load(self) -> None:
        project = self.relman.project
        try:
            if project is None:
                project = api.load_project(None)
            detail = load_release(project, self.subject)
        except ReleaseError as error:
            self.post_message(EngineFailed("Cannot read the release", error.message))
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            message = f"{type(error).__name__}: {error}"
            self.post_message(EngineFailed("Cannot read the release", message))
        else:
            self.post_message(ReleaseLoaded(detail))

    def on_engine_failed(self, message: EngineFailed) -> None:
        body = self.query_one("#release-body", VerticalScroll)
        if body.loading:
            body.loading = False
            self.query_one("#release-title", Static).update(message.error)

    # ------------------------------------------------------------------ actions

    def applicable(self, action: str) -> bool:
        detail = self.detail
        if detail is None:
            return False
        facts = detail.facts
        if action == "promote":
            return facts.next_env is not None
        if action == "approve":
            order = list(facts.environments)
            start = order.index(facts.next_env) if facts.next_env else len(order)
            config = self.relman.project.config if self.relman.project else None
            return config is not None and any(
                config.environments[env].approvals for env in order[start:]
            )
        if action == "rollback":
            env = self.subject.env
            return env is not None and bool(facts.environments.get(env, {}).get("release"))
        return facts.is_candidate  # tests and builds are of the working tree

    def action_promote(self) -> None:
        self.prepare("promote", self.subject)

    def action_approve(self) -> None:
        self.prepare("approve", self.subject)

    def action_rollback(self) -> None:
        self.prepare("rollback", self.subject)

    def action_test(self) -> None:
        self.prepare("test", self.subject)

    def action_build(self) -> None:
        self.prepare("build", self.subject)

    # ------------------------------------------------------------------ showing

    def on_release_loaded(self, message: ReleaseLoaded) -> None:
        message.stop()
        detail = self.detail = message.detail
        with self.app.batch_update():
            self.query_one("#release-body", VerticalScroll).loading = False
            self.query_one("#release-title", Static).update(detail.title)
            for name in SECTIONS:
                section = self.query_one(f"#release-{name}", StatusStatic)
                section.update(getattr(self, f"render_{name}")(section, detail))
            gates = self.query_one("#gates-heading", Static)
            env = detail.facts.next_env
            gates.update(f"Gates for {env}" if env and detail.gate else "Gates")
        self.refresh_bindings()

    def render_lineage(self, section: StatusStatic, detail: ReleaseDetail) -> RenderableType:
        git = detail.git
        table = grid(8, None)
        table.add_row("commit", Text(f"{git.get('short') or NONE} {git.get('message') or ''}"))
        author = git.get("author") or "not recorded for this release"
        when = f" · {age(git['committed_at'])} ago" if git.get("committed_at") else ""
        table.add_row("author", Text(f"{author}{when}"))
        for artifact in detail.artifacts:
            cache = artifact["cache"] or "cache not checked"
            cache_status = "passed" if artifact["cache"] == "local" else "skipped"
            table.add_row(
                artifact["kind"],
                Text.assemble(
                    str(artifact["path"]),
                    f"  {str(artifact['md5'] or NONE)[:8]}  {size(artifact['size'])}  ",
                    (cache, status_style(section, cache_status)),
                ),
            )
        params = " · ".join(f"{key}={value}" for key, value in detail.params.items())
        table.add_row("params", Text(params or NONE))
        for problem in detail.problems:
            table.add_row(status_text(section, "stale", "problem"), Text(problem))
        return table

    def render_metrics(self, section: StatusStatic, detail: ReleaseDetail) -> RenderableType:
        if not detail.metrics:
            return Text("No metrics recorded.")
        envs = list(detail.facts.environments)
        table = Table(box=None, padding=(0, 1), show_edge=False, header_style="bold")
        table.add_column("metric", no_wrap=True, overflow="ellipsis", max_width=20)
        table.add_column("this", justify="right")
        for env in envs:
            table.add_column(f"vs {env}", justify="right")
        for key, value in detail.metrics.items():
            cells = []
            for env in envs:
                deltas = detail.deltas.get(env, {})
                if env not in detail.deltas:
                    cells.append(Text(NONE, style="dim"))
                elif deltas is None:
                    cells.append(Text("same", style="dim"))
                else:
                    cells.append(Text(delta_text(deltas.get(key))))
            table.add_row(key, number(value), *cells)
        return table

    def render_tests(self, section: StatusStatic, detail: ReleaseDetail) -> RenderableType:
        if not detail.suites:
            if detail.facts.is_candidate:
                return Text("No suite is required by any environment.")
            return Text("No test run recorded for this release.")
        table = grid(10, 8, None)
        for suite in detail.suites:
            status = suite["status"]
            shown = "not run" if "has not run" in suite["detail"] else status
            line = suite["detail"].removeprefix(f"suite {suite['name']} ")
            table.add_row(suite["name"], status_text(section, status, shown), Text(line))
        return table

    def render_gates(self, section: StatusStatic, detail: ReleaseDetail) -> RenderableType:
        if detail.gate is None:
            return Text(detail.gate_note or "No gate to show.")
        steps: list[dict[str, Any]] = detail.gate["steps"]
        table = grid(8, 16, None)
        for step in steps:
            status = "blocked" if step["status"] == "failed" else step["status"]
            table.add_row(status_text(section, status), Text(step["name"]), Text(step["detail"]))
        return table

    def render_history(self, section: StatusStatic, detail: ReleaseDetail) -> RenderableType:
        if not detail.history:
            return Text("Nothing recorded for this release yet.")
        table = grid(16, None)
        for entry in detail.history:
            table.add_row(clock(entry["at"]), Text(entry["summary"]))
        return table

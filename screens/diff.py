"""Two releases side by side (``api.diff``, as ``relman diff A B`` prints it): the params that
differ, every metric with its change, the data and model files, and the commits between.
Opened from the command palette's Diff; read in a thread worker."""

from __future__ import annotations

from typing import Any

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from core import api
from core.errors import ReleaseError
from screens.common import NONE, StatusStatic, grid, label, number, size, status_text


def choose_other_side(app: App[Any], service: str, release: str | None) -> None:
    """What changes from the release the user picks (the candidate, or what an environment
    runs: read in a worker) to ``release`` of ``service`` (None: the candidate)."""
    from screens.subjects import ask, project_of

    project = project_of(app)
    if project is None:
        return
    mine = release or "candidate"

    def read() -> None:
        try:
            views = api.overview(project)
        except ReleaseError as error:
            app.call_from_thread(app.notify, error.message, title="Cannot diff", severity="error")
            return
        envs: dict[str, list[str]] = {}
        versions: dict[str, str | None] = {}
        for env in next((view.environments for view in views if view.name == service), []):
            if env.release and env.release != release:
                envs.setdefault(env.release, []).append(env.name)
                versions[env.release] = env.version
        choices = [] if mine == "candidate" else [("candidate", "candidate (the working tree)")]
        choices += [
            (other, f"{label(other, versions[other])}, live in {', '.join(names)}")
            for other, names in envs.items()
        ]
        app.call_from_thread(offer, choices)

    def offer(choices: list[tuple[str, str]]) -> None:
        if not choices:
            app.notify(f"{service} has no other release to compare {mine} with.")
            return
        ask(
            app,
            f"What changes from which release to {service} {mine}?",
            choices,
            lambda other: app.push_screen(DiffScreen(other, mine)),
        )

    app.run_worker(read, thread=True, exit_on_error=False, group="plan", name="diff choices")


def side(document: dict[str, Any]) -> str:
    """``v1.3.2 (0f9e8d7c6b5a, 3f9a2c1)``, or ``candidate (a1b2c3d4e5f6, 3f9a2c1)``."""
    shown = document.get("version") or "candidate"
    commit = str(document.get("commit") or "")[:7]
    return f"{shown} ({document.get('release') or NONE}" + (f", {commit})" if commit else ")")


def change(row: dict[str, Any]) -> str:
    """``+0.0055 (+0.6%)`` of a metric, ``—`` when either side is not a number."""
    delta, relative = row.get("delta"), row.get("relative")
    if delta is None:
        return NONE
    text = "±0" if delta == 0 else f"{delta:+.4g}"
    return text + (f" ({relative:+.1%})" if relative else "")


class DiffScreen(Screen[None]):
    """``A -> B``: what changes from release A to release B."""

    CSS_PATH = "release.tcss"
    BINDING_GROUP_TITLE = "Diff"
    BINDINGS = [Binding("escape", "back", "Back", tooltip="Back to the screen before")]

    def __init__(self, a: str, b: str) -> None:
        super().__init__()
        self.a, self.b = a, b

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"diff {self.a} -> {self.b} · reading…", id="release-title", markup=False)
        with VerticalScroll(id="release-body"):
            for name in ("params", "metrics", "artifacts", "commits"):
                heading = "Data and model" if name == "artifacts" else name.capitalize()
                yield Static(heading, classes="heading")
                yield StatusStatic("", id=f"diff-{name}", classes="section")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#release-body").loading = True
        self.load()

    def action_back(self) -> None:
        self.dismiss()

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff")
    def load(self) -> None:
        try:
            project = getattr(self.app, "project", None) or api.load_project(None)
            document = api.diff(project, self.a, self.b)
        except ReleaseError as error:
            self.app.call_from_thread(self.failed, error.message)
        except Exception as error:  # a bug or an I/O failure: say it, never crash the UI
            self.app.call_from_thread(self.failed, f"{type(error).__name__}: {error}")
        else:
            self.app.call_from_thread(self.show, document)

    def failed(self, error: str) -> None:
        self.query_one("#release-body").loading = False
        self.query_one("#release-title", Static).update(f"diff {self.a} -> {self.b}: {error}")
        self.notify(error, title="Cannot diff", severity="error", timeout=10)

    def show(self, document: dict[str, Any]) -> None:
        self.query_one("#release-body").loading = False
        title = f"{document['a'].get('service') or ''} {side(document['a'])} -> "
        self.query_one("#release-title", Static).update(title + side(document["b"]))
        for name in ("params", "metrics", "artifacts", "commits"):
            section = self.query_one(f"#diff-{name}", StatusStatic)
            section.update(getattr(self, f"render_{name}")(section, document))

    def render_params(self, section: StatusStatic, document: dict[str, Any]) -> RenderableType:
        if not document["params"]:
            return Text("unchanged")
        table = grid(24, None)
        for row in document["params"]:
            table.add_row(Text(row["key"]), Text(f"{number(row['a'])} -> {number(row['b'])}"))
        return table

    def render_metrics(self, section: StatusStatic, document: dict[str, Any]) -> RenderableType:
        if not document["metrics"]:
            return Text("no metrics recorded")
        table = grid(24, None)
        for row in document["metrics"]:
            line = f"{number(row['a'])} -> {number(row['b'])}  {change(row)}"
            table.add_row(Text(row["key"]), Text(line))
        return table

    def render_artifacts(self, section: StatusStatic, document: dict[str, Any]) -> RenderableType:
        if not document["artifacts"]:
            return Text("no data or model declared")
        table = grid(8, None)
        for row in document["artifacts"]:
            shown = status_text(
                section,
                "stale" if row["changed"] else "skipped",
                "changed" if row["changed"] else "same",
            )
            sizes = f"{size(row['a_size'])} -> {size(row['b_size'])}"
            table.add_row(shown, Text(f"{row['kind']} {row['path']}  {sizes}"))
        return table

    def render_commits(self, section: StatusStatic, document: dict[str, Any]) -> RenderableType:
        commits = document["commits"]
        if not commits:
            return Text("the same commit")
        return Text("\n".join(commits))

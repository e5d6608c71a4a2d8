"""The views ``:`` jumps to and the palette's ``Go to`` opens: the overview, a release, the
monitor and the logs of an environment, the alerts, the history, the pipeline runs, the last
run, the keys.

A jump replaces what is open above the overview (escape then leads back to it), as k9s
switches its main view, so that jumping around never piles screens up. A view of one
environment takes it from the words after its name (``monitor prod``, ``logs iris/prod``),
else from the selection (screens/subjects.py), else asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.screen import Screen

from screens.subjects import project_of, selection, with_environment, with_service

Open = Callable[[App[Any], Screen[Any], str], None]


@dataclass(frozen=True)
class View:
    name: str
    help: str
    open: Open
    # The action of the key that opens it too (the palette offers that key's command instead).
    action: str = ""
    aliases: tuple[str, ...] = ()
    # Whether the words after the name may name an environment (``monitor prod``).
    takes_env: bool = False


def replace_stack(app: App[Any], screen: Screen[Any]) -> None:
    """Show ``screen`` right above the overview (the screens between are closed)."""
    while len(app.screen_stack) > 1:
        app.pop_screen()
    app.push_screen(screen)


def go_overview(app: App[Any], screen: Screen[Any], words: str) -> None:
    while len(app.screen_stack) > 1:
        app.pop_screen()


def go_release(app: App[Any], screen: Screen[Any], words: str) -> None:
    from screens.actions import Subject
    from screens.release import ReleaseScreen

    subject = selection(screen)
    if subject is not None and subject.env is not None and subject.release is None:
        subject = Subject(subject.service)  # nothing deployed there: its candidate
    if subject is not None:
        replace_stack(app, ReleaseScreen(subject))
        return
    with_service(
        app,
        None,
        lambda service: replace_stack(app, ReleaseScreen(Subject(service))),
        "The release of which service?",
    )


def environment_view(make: Callable[[str, str, list[str]], Screen[Any]], question: str) -> Open:
    """A view of one environment: ``make(service, env, the service's environments)``."""

    def go(app: App[Any], screen: Screen[Any], words: str) -> None:
        from screens.actions import Subject

        project = project_of(app)
        if project is None:
            return
        order = list(project.config.environment_order)
        subject = selection(screen)
        if words:
            service, _, env = words.rpartition("/")
            service = service or (
                subject.service if subject else next(iter(project.config.services))
            )
            if service not in project.config.services or env not in order:
                app.notify(
                    f"no environment {words!r}: name one of {', '.join(order)} "
                    f"(or SERVICE/ENV, services: {', '.join(project.config.services)})",
                    severity="warning",
                )
                return
            subject = Subject(service, None, env)

        def chosen(service: str, env: str) -> None:
            replace_stack(app, make(service, env, order))

        with_environment(app, subject, chosen, question)

    return go


def monitor_screen(service: str, env: str, envs: list[str]) -> Screen[Any]:
    from screens.monitor import MonitorScreen

    return MonitorScreen(service, env, envs)


def logs_screen(service: str, env: str, envs: list[str]) -> Screen[Any]:
    from screens.logs import LogsScreen

    return LogsScreen(service, env, envs)


def pushing(module: str, name: str) -> Open:
    """A view of the whole project (alerts, history)."""

    def go(app: App[Any], screen: Screen[Any], words: str) -> None:
        import importlib

        replace_stack(app, getattr(importlib.import_module(module), name)())

    return go


def go_run(app: App[Any], screen: Screen[Any], words: str) -> None:
    from screens.run import RunScreen

    run = getattr(app, "current_run", None)
    if run is None:
        app.notify("Nothing has run from this session yet.")
        return
    replace_stack(app, RunScreen(run))


def go_help(app: App[Any], screen: Screen[Any], words: str) -> None:
    show_help = getattr(app, "action_help", None)
    if callable(show_help):
        show_help()  # over the screen it is called from, as ? does


VIEWS = (
    View("overview", "What is live in each environment", go_overview),
    View("release", "The selected release (else the candidate)", go_release),
    View(
        "monitor",
        "Charts, drift and alerts of an environment",
        environment_view(monitor_screen, "Monitor which environment?"),
        "monitor",
        takes_env=True,
    ),
    View(
        "logs",
        "The served process's output and the access log",
        environment_view(logs_screen, "The logs of which environment?"),
        "logs",
        aliases=("log",),
        takes_env=True,
    ),
    View("alerts", "Firing and past alerts", pushing("screens.alerts", "AlertsScreen"), "alerts"),
    View(
        "history",
        "The history and the audit chain check",
        pushing("screens.audit", "AuditScreen"),
        "audit",
        aliases=("audit",),
    ),
    View(
        "pipelines",
        "Pipeline runs, their steps, and the watcher",
        pushing("screens.pipelines", "PipelinesScreen"),
        "pipelines",
        aliases=("pipeline", "watcher"),
    ),
    View("run", "The run in progress, or the last one", go_run, "last_run", ("runs", "last")),
    View("help", "Every key of this screen", go_help, "help", ("keys",)),
)


def find_view(name: str) -> View | None:
    """The view named ``name`` or one of its aliases, else the only one it begins."""
    name = name.lower()
    exact = [view for view in VIEWS if name == view.name or name in view.aliases]
    if exact:
        return exact[0]
    starting = [view for view in VIEWS if view.name.startswith(name)]
    return starting[0] if len(starting) == 1 and name else None


def jump(app: App[Any], screen: Screen[Any], line: str) -> bool:
    """Open the view ``line`` names (``monitor prod``); False, having said why, when none."""
    name, _, words = line.strip().partition(" ")
    view = find_view(name)
    if view is None:
        names = ", ".join(view.name for view in VIEWS)
        app.notify(f"no view {name!r}: views are {names}", severity="warning")
        return False
    if words.strip() and not view.takes_env:
        app.notify(f"{view.name} takes no environment", severity="warning")
        return False
    view.open(app, screen, words.strip())
    return True


def completions(app: App[Any]) -> list[str]:
    """What ``:`` completes: every view, and ``monitor ENV``, ``logs ENV`` for each env."""
    project = getattr(app, "project", None)
    envs = list(project.config.environment_order) if project is not None else []
    found = []
    for view in VIEWS:
        found.append(view.name)
        if view.takes_env:
            found += [f"{view.name} {env}" for env in envs]
    return found

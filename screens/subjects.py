"""What an action of the command palette or a view of ``:`` is about: the service, the
environment, the release. What the screen selects (the overview's row, the release shown,
the monitor's or the log's environment, the alert selected), else what the overview selects
under it; what neither gives is asked with a short list (screens/picker.py).

Screens are read by what they have (``subject``, ``selected``, ``service`` and ``env``), so
a screen need not know the palette exists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.screen import Screen

if TYPE_CHECKING:
    from core.api import Project
    from screens.actions import Subject


def selection(screen: Screen[Any]) -> Subject | None:
    """The subject ``screen`` selects, else the one the overview (under it) selects."""
    found = subject_of(screen)
    stack = screen.app.screen_stack
    if found is None and stack and stack[0] is not screen:
        found = subject_of(stack[0])
    return found


def subject_of(screen: Screen[Any]) -> Subject | None:
    from screens.actions import Subject

    subject = getattr(screen, "subject", None)
    if callable(subject):  # the overview: its cursor row
        subject = subject()
    if isinstance(subject, Subject):  # the release screen, the overview
        return subject
    selected = getattr(screen, "selected", None)
    alert = selected() if callable(selected) else None
    if isinstance(alert, dict) and alert.get("service") and alert.get("env"):  # the alerts
        return Subject(str(alert["service"]), alert.get("release"), str(alert["env"]))
    service, env = getattr(screen, "service", None), getattr(screen, "env", None)
    if isinstance(service, str) and isinstance(env, str):  # the monitor, the logs
        environment = getattr(getattr(screen, "view", None), "environment", None)
        return Subject(service, getattr(environment, "release", None), env)
    return None


def project_of(app: App[Any]) -> Project | None:
    """The app's loaded project; when there is none yet, the user is told."""
    project: Project | None = getattr(app, "project", None)
    if project is None:
        app.notify("The project is not loaded yet.", severity="warning")
    return project


def ask(
    app: App[Any],
    question: str,
    choices: Sequence[tuple[str, str]],
    then: Callable[[str], None],
    *,
    highlighted: str | None = None,
) -> None:
    """``then(value)`` of the one choice, or of the one the user picks (nothing on escape)."""
    if len(choices) == 1:
        then(choices[0][0])
        return
    from screens.picker import Picker

    def picked(value: str | None) -> None:
        if value is not None:
            then(value)

    app.push_screen(Picker(question, choices, highlighted=highlighted), picked)


def with_service(
    app: App[Any], subject: Subject | None, then: Callable[[str], None], question: str
) -> None:
    """``then(service)``: the selected one, the only one, or the one the user picks."""
    if subject is not None:
        then(subject.service)
        return
    project = project_of(app)
    if project is not None:
        ask(app, question, [(name, name) for name in project.config.services], then)


def with_environment(
    app: App[Any],
    subject: Subject | None,
    then: Callable[[str, str], None],
    question: str,
) -> None:
    """``then(service, env)``: the selected environment, or the one the user picks (of the
    selected service when there is one, else of every service)."""
    if subject is not None and subject.env is not None:
        then(subject.service, subject.env)
        return
    project = project_of(app)
    if project is None:
        return
    services = [subject.service] if subject is not None else list(project.config.services)
    several = len(project.config.services) > 1
    choices = [
        (f"{service}/{env}", f"{service} in {env}" if several else env)
        for service in services
        for env in project.config.environment_order
    ]
    ask(app, question, choices, lambda value: then(*value.split("/", 1)))

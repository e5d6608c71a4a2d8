"""The command palette's one provider: every action of the app, from wherever it is opened.

First the keys of the current screen and of the app, built from the bindings like the help,
so a key and its command never disagree; dimmed ones are offered too, marked so: run from
here, they explain themselves (the engine refuses in read-only mode and the app shows the
command to run elsewhere). Then the actions that work from any screen (tests, build,
promote, approve, rollback, diff, down, demo traffic, a rollout: screens/app_actions.py), on the
selection or on what the user picks, unless the screen has a key for the same action; and
``Go to`` each view (screens/views.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode


@dataclass(frozen=True)
class Command:
    title: str
    help: str
    run: Callable[[], object]
    # Other words it is found by (``logs`` finds Go to logs, ``load`` the traffic).
    aliases: tuple[str, ...] = ()


# Words the palette finds an app action by, besides its title.
ALIASES = {
    "test": ("test", "pytest", "suites"),
    "diff": ("compare",),
    "down": ("stop serving",),
    "traffic_start": ("load", "demo load"),
    "traffic_stop": ("load",),
    "rollout": ("canary", "shadow", "pause", "abort"),
}


class ScreenActions(Provider):
    """Promote, approve, rollback, tests, build, diff, down, traffic, the views, help..."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        """(title, help, run) of every command, in the order the palette lists them."""
        return [(command.title, command.help, command.run) for command in self.all_commands()]

    def all_commands(self) -> list[Command]:
        keys = self.key_commands()
        offered = set(keys)
        found = list(keys.values())
        from screens.app_actions import APP_ACTIONS
        from screens.views import VIEWS

        read_only = bool(getattr(self.app, "read_only", False))
        for action in APP_ACTIONS:
            if action.action in offered:
                continue
            help_text = action.help
            if read_only and action.mutating:
                help_text += " (read-only: it says what to run instead)"
            run = partial(self.app.call_later, action.run, self.app, self.screen)
            found.append(Command(action.title, help_text, run, ALIASES.get(action.action, ())))
        for view in VIEWS:
            if view.action and view.action in offered:
                continue
            run = partial(self.app.call_later, view.open, self.app, self.screen, "")
            help_text = f"{view.help} · : {view.name}"
            found.append(Command(f"Go to {view.name}", help_text, run, (view.name, *view.aliases)))
        return found

    def key_commands(self) -> dict[str, Command]:
        """The screen's and the app's keys, by action."""
        from screens.help import declared

        screen = self.screen
        # relman's own keys, as the help lists them (not Textual's focus next, copy...).
        relmans = {
            node: {(binding.key, binding.action) for binding in declared(node)}
            for node in (screen, self.app)
        }
        found: dict[str, Command] = {}
        for node, binding, enabled, tooltip in screen.active_bindings.values():
            if (binding.key, binding.action) not in relmans.get(node, set()):
                continue
            if binding.system or not binding.description or binding.action in found:
                continue
            help_text = tooltip or binding.tooltip or binding.description
            if not enabled:
                help_text += " (dimmed: run from here, it says why it cannot run)"
            found[binding.action] = Command(
                binding.description,
                f"{help_text} · key {self.app.get_key_display(binding)}",
                partial(self.run, node, binding.action, enabled),
                ALIASES.get(binding.action, ()),
            )
        return found

    def run(self, node: DOMNode, action: str, enabled: bool) -> None:
        """Run ``action`` on ``node``; a dimmed one is called directly, past check_action."""
        if enabled:
            self.app.call_later(self.app.run_action, action, node)
            return
        method = getattr(node, f"action_{action}", None)
        if callable(method):
            self.app.call_later(method)

    async def discover(self) -> Hits:
        for command in self.all_commands():
            yield DiscoveryHit(command.title, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.all_commands():
            score = matcher.match(command.title)
            by_alias = max((matcher.match(alias) for alias in command.aliases), default=0.0)
            if score > 0:
                yield Hit(score, matcher.highlight(command.title), command.run, help=command.help)
            elif by_alias > 0:
                # Found by another word: listed below what its title matches.
                yield Hit(by_alias * 0.5, command.title, command.run, help=command.help)

"""The command palette's one provider: every action of the current screen, and the app's.

Built from the bindings, like the help screen, so a key and its command never disagree.
Dimmed actions are offered too, marked so: run from here, they explain themselves (the
engine refuses in read-only mode and the app shows the command to run elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode


class ScreenActions(Provider):
    """Promote, approve, rollback, tests, build, audit, help...: what the screen's keys do."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        screen = self.screen
        found: dict[str, tuple[str, str, Callable[[], object]]] = {}
        for node, binding, enabled, tooltip in screen.active_bindings.values():
            if node is not screen and node is not self.app:
                continue
            if binding.system or not binding.description or binding.action in found:
                continue
            help_text = tooltip or binding.tooltip or binding.description
            if not enabled:
                help_text += " (dimmed: run from here, it says why it cannot run)"
            found[binding.action] = (
                binding.description,
                f"{help_text} · key {self.app.get_key_display(binding)}",
                partial(self.run, node, binding.action, enabled),
            )
        return list(found.values())

    def run(self, node: DOMNode, action: str, enabled: bool) -> None:
        """Run ``action`` on ``node``; a dimmed one is called directly, past check_action."""
        if enabled:
            self.app.call_later(self.app.run_action, action, node)
            return
        method = getattr(node, f"action_{action}", None)
        if callable(method):
            self.app.call_later(method)

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)

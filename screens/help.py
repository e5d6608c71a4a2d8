"""The keys: a modal listing every binding of the screen below it (its focused widget, the
screen itself and the app), generated from the bindings so it can never fall out of date."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import ActiveBinding, Binding
from textual.containers import Grid, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


@dataclass(frozen=True)
class KeyRow:
    """One line of the help: the keys of one action, and what it does."""

    group: str
    keys: str
    description: str


def group_title(node: DOMNode) -> str:
    """The heading a node's bindings are listed under."""
    return node.BINDING_GROUP_TITLE or type(node).__name__


def key_rows(
    bindings: Iterable[ActiveBinding],
    key_display: Callable[[Binding], str],
    *,
    first: DOMNode | None = None,
) -> list[KeyRow]:
    """Group ``bindings`` by the node that declares them and merge the keys of one action.

    ``first`` (the screen) is listed first, then the app, then the focused widget and its
    containers. System bindings (ctrl+c and the like) are left out.
    """
    by_node: dict[DOMNode, dict[str, list[Binding]]] = {}
    for node, binding, _enabled, _tooltip in bindings:
        if binding.system:
            continue
        by_node.setdefault(node, {}).setdefault(binding.action, []).append(binding)
    nodes = sorted(by_node, key=lambda node: 0 if node is first else 1 if node is node.app else 2)
    rows = []
    for node in nodes:
        for same_action in by_node[node].values():
            keys = " ".join(dict.fromkeys(key_display(binding) for binding in same_action))
            binding = same_action[0]
            description = binding.description or binding.action
            if binding.tooltip and binding.tooltip != description:
                description = f"{description}: {binding.tooltip}"
            rows.append(KeyRow(group_title(node), keys, description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below, dismissed with escape, q or ?."""

    BINDING_GROUP_TITLE = "Help"
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("q", "dismiss", "Close", show=False),
        Binding("question_mark", "dismiss", "Close", key_display="?", show=False),
    ]

    def __init__(self, below: Screen[object]) -> None:
        super().__init__()
        self.rows = key_rows(below.active_bindings.values(), self.app.get_key_display, first=below)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog"):
            yield Static("Keys", id="help-title")
            with VerticalScroll(id="help-keys"), Grid(id="help-grid"):
                group = None
                for row in self.rows:
                    if row.group != group:
                        group = row.group
                        yield Static(group, classes="group")
                    yield Static(row.keys, classes="key", markup=False)
                    yield Static(row.description, classes="description", markup=False)
            yield Static("ctrl+p: every action by name · escape, q or ? to close", id="help-hint")

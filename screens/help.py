"""The keys: a modal listing relman's keys on the screen below it (those of its focused
widget, the screen itself and the app), generated from the bindings relman's own classes
declare, so it can never fall out of date. The keys of Textual's widgets (focus next, page
left, the cursor keys of a table) are left out: they are the terminal's usual ones, and they
would bury relman's. A key is listed whether or not it can act right now (``l`` before
anything has run says so when pressed)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

# Where relman's classes live: bindings declared elsewhere are Textual's.
RELMAN_MODULES = ("screens.", "tui.")
PALETTE = Binding("ctrl+p", "command_palette", "Palette", tooltip="Every action, by name")


@dataclass(frozen=True)
class KeyRow:
    """One line of the help: the keys of one action, and what it does."""

    group: str
    keys: str
    description: str


def group_title(node: DOMNode) -> str:
    """The heading a node's bindings are listed under."""
    return node.BINDING_GROUP_TITLE or type(node).__name__


def declared(node: DOMNode) -> list[Binding]:
    """The bindings relman's own classes declare for ``node`` (a subclass's replace its
    bases' of the same key), in the order they are declared."""
    by_key: dict[str, Binding] = {}
    for cls in reversed(type(node).__mro__):
        if not cls.__module__.startswith(RELMAN_MODULES):
            continue
        items: Iterable[BindingType] = cls.__dict__.get("BINDINGS", ())
        for binding in Binding.make_bindings(items):
            by_key[binding.key] = binding
    return list(by_key.values())


def nodes_of(screen: Screen[object]) -> list[DOMNode]:
    """The screen, the app, then the focused widget and its containers."""
    chain: list[DOMNode] = []
    node: DOMNode | None = screen.focused
    while node is not None and node is not screen:
        chain.append(node)
        node = node.parent
    return [screen, screen.app, *chain]


def key_rows(screen: Screen[object], key_display: Callable[[Binding], str]) -> list[KeyRow]:
    """Group relman's bindings on ``screen`` by the node that declares them and merge the keys
    of one action. A key the screen or a widget binds hides the app's (``/`` on a screen
    with its own filter); system bindings are left out."""
    taken: set[str] = set()
    rows = []
    for node in nodes_of(screen):
        by_action: dict[str, list[Binding]] = {}
        bindings = declared(node) + ([PALETTE] if node is screen.app else [])
        for binding in bindings:
            if binding.system or (node is screen.app and binding.key in taken):
                continue
            by_action.setdefault(binding.action, []).append(binding)
        for same_action in by_action.values():
            taken.update(binding.key for binding in same_action)
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
        self.rows = key_rows(below, self.app.get_key_display)

    def compose(self) -> ComposeResult:
        with Vertical(id="help-dialog") as dialog:
            # On the border: it stays in sight when the keys scroll.
            dialog.border_subtitle = "escape, q or ? to close"
            yield Static("Keys", id="help-title")
            with VerticalScroll(id="help-keys"), Grid(id="help-grid"):
                group = None
                for row in self.rows:
                    if row.group != group:
                        group = row.group
                        yield Static(group, classes="group")
                    yield Static(row.keys, classes="key", markup=False)
                    yield Static(row.description, classes="description", markup=False)

"""``/``: narrow the list of a screen as you type, whatever the list.

A screen takes part with one line in the method that shows its rows (``show_rows``): the
rows pass through :func:`narrowed` on their way to the table, which keeps those whose text
holds every word typed (in any column, any case). ``/`` (the app's key) mounts a
:class:`ListFilter` above the screen's first table (or the widget of class ``filterable``)
and focuses it; each change shows the rows
again. Enter goes back to the list and keeps the filter (the line stays, saying what
narrows it); escape clears it and hides it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

Row = TypeVar("Row")
# What a filter narrows: a screen's first table, or the widget it marks ``filterable``.
LISTS = "DataTable, .filterable"


@runtime_checkable
class Filterable(Protocol):
    """A screen whose ``show_rows`` passes its rows through :func:`narrowed`."""

    def show_rows(self) -> None: ...


class ListFilter(Input):
    """The filter line of a list: ``/`` opens it, escape clears it."""

    DEFAULT_CSS = """
    ListFilter {
        border: none;
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    ListFilter:focus {
        border: none;
    }
    """
    BINDING_GROUP_TITLE = "Filter"
    BINDINGS = [
        Binding("escape", "clear_filter", "Clear", tooltip="Show every row again"),
    ]

    def __init__(self) -> None:
        super().__init__(placeholder="/ filter: words every row shown holds", id="list-filter")

    def on_mount(self) -> None:
        self.focus()

    def on_input_changed(self, message: Input.Changed) -> None:
        message.stop()
        self.relist()

    def on_input_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        if not self.value.strip():
            self.display = False
        self.focus_list()

    def action_clear_filter(self) -> None:
        self.value = ""  # Changed follows: the rows come back
        self.display = False
        self.focus_list()

    def relist(self) -> None:
        screen = self.screen
        if isinstance(screen, Filterable):
            screen.show_rows()

    def focus_list(self) -> None:
        lists = self.screen.query(LISTS)
        if lists:
            lists.first().focus()
        else:
            self.screen.set_focus(None)


def filter_words(screen: Screen[Any]) -> list[str]:
    """The words typed in ``screen``'s filter (none when it has no filter)."""
    found = screen.query(ListFilter)
    return found.first().value.lower().split() if found else []


def text_of(cells: Iterable[object]) -> str:
    """The plain text of a row's cells (rich Text, Content or anything printable)."""
    return " ".join(str(getattr(cell, "plain", cell)) for cell in cells).lower()


def matches(words: list[str], cells: Iterable[object]) -> bool:
    text = text_of(cells)
    return all(word in text for word in words)


def narrowed(screen: Screen[Any], rows: Mapping[str, Row]) -> dict[str, Row]:
    """The rows (by key: a tuple of cells, or a line) the screen's filter keeps."""
    words = filter_words(screen)
    if not words:
        return dict(rows)
    return {
        key: row
        for key, row in rows.items()
        if matches(words, row if isinstance(row, tuple) else (row,))
    }


def open_filter(screen: Screen[Any]) -> bool:
    """Show and focus ``screen``'s filter (mounted above its first table the first time);
    False when the screen has no list to filter."""
    found = screen.query(ListFilter)
    if found:
        line = found.first()
        line.display = True
        line.focus()
        return True
    tables = screen.query(LISTS)
    if not isinstance(screen, Filterable) or not tables:
        return False
    table = tables.first()
    parent = table.parent
    if not isinstance(parent, Widget):
        return False
    parent.mount(ListFilter(), before=table)  # it takes the focus once mounted
    return True

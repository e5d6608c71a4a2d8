"""Small pieces every screen shares: how ages, sizes, ids and statuses are written, and the
styles statuses take from the screens' .tcss files (component classes, so themes and
NO_COLOR apply and nothing here names a colour)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

NONE = "—"

# Every status a step, a suite, a gate, an environment or a candidate can be in, and the
# component class that styles it (see STATUS_CLASSES in the .tcss files).
STATUS_CLASS = {
    "passed": "status--good",
    "live": "status--good",
    "clean": "status--good",
    "done": "status--good",
    "ok": "status--good",
    "failed": "status--bad",
    "error": "status--bad",
    "down": "status--bad",
    "interrupted": "status--bad",
    "blocked": "status--warn",
    "cancelled": "status--warn",
    "dirty": "status--warn",
    "stale": "status--warn",
    "unknown": "status--warn",
    "undone": "status--warn",
    "running": "status--busy",
    "firing": "status--bad",
    "pending": "status--warn",
    "resolved": "status--muted",
    "silenced": "status--muted",  # firing, and muted in Alertmanager
    "skipped": "status--muted",
    "not deployed": "status--muted",
    "loading": "status--muted",
}
STATUS_CLASSES = frozenset({*STATUS_CLASS.values(), "status--muted"})


class StatusTable(DataTable[Text]):
    """A table whose cells take the status styles of app.tcss (``StatusTable > .status--good``)."""

    COMPONENT_CLASSES = DataTable.COMPONENT_CLASSES | STATUS_CLASSES


class StatusStatic(Static):
    """A Static whose rich content takes the status styles of app.tcss."""

    COMPONENT_CLASSES = set(STATUS_CLASSES)


def last_column_room(rows: Iterable[Sequence[Text]], width: int, labels: Sequence[str]) -> int:
    """The cells the last column has in ``width`` columns: the other columns keep their width
    (their label's or their widest cell's), plus one cell of padding each side and a
    scrollbar (two cells). Rows may leave their last cell out."""
    rows = list(rows)
    used = sum(
        max([len(label), *(r[i].cell_len for r in rows)]) + 2 for i, label in enumerate(labels[:-1])
    )
    return width - used - 2 - 2


def grid(*widths: int | None) -> Table:
    """A headerless table: fixed columns, the last one takes the rest and wraps."""
    table = Table.grid(padding=(0, 1), expand=True)
    for width in widths:
        if width is None:
            table.add_column(ratio=1, overflow="fold")
        else:
            table.add_column(width=width, no_wrap=True, overflow="ellipsis")
    return table


def fit_last_column(
    rows: Mapping[str, tuple[Text, ...]], width: int, labels: Sequence[str]
) -> dict[str, tuple[Text, ...]]:
    """Clip the last cell of each row (with an ellipsis) so the table fits ``width`` columns
    (see last_column_room); it keeps at least 12 cells, and the width of its label (which
    the column takes anyway)."""
    if not rows:
        return {}
    room = max(12, len(labels[-1]), last_column_room(rows.values(), width, labels))
    fitted = {}
    for key, cells in rows.items():
        last = cells[-1]
        if last.cell_len > room:
            last = last.copy()
            last.truncate(room - 1)
            last.append("…")
        fitted[key] = (*cells[:-1], last)
    return fitted


def sync_rows(
    table: DataTable[Any], columns: Sequence[str], rows: Mapping[str, tuple[Any, ...]]
) -> None:
    """Show ``rows`` (by key) in ``table``: changed cells are updated in place, new rows
    appended and rows gone from the end removed, so the cursor and the scroll position stay;
    only keys reordered (services or environments changed in relman.toml, an alert that
    came or went) rebuild it, and the cursor then stays on the row it was on."""
    shown: list[str | None] = [row.key.value for row in table.ordered_rows]
    keys: list[str | None] = list(rows)
    if len(shown) > len(keys) and shown[: len(keys)] == keys:
        for key in shown[len(keys) :]:
            table.remove_row(str(key))
        shown = keys
    if shown != keys[: len(shown)]:
        selected = shown[table.cursor_row] if 0 <= table.cursor_row < len(shown) else None
        table.clear()
        for key in keys:
            table.add_row(*rows[str(key)], key=key)
        if selected in keys:
            table.move_cursor(row=keys.index(selected), animate=False)
        return
    for key in list(rows)[len(shown) :]:
        table.add_row(*rows[key], key=key)
    for key in list(rows)[: len(shown)]:
        cells = rows[key]
        for column, cell in zip(columns, cells, strict=True):
            if table.get_cell(key, column) != cell:
                table.update_cell(key, column, cell, update_width=True)


def status_class(status: str) -> str:
    """The component class of ``status`` (``promote in progress`` and the like: busy)."""
    if status.endswith("in progress"):
        return "status--busy"
    return STATUS_CLASS.get(status, "status--muted")


def status_style(widget: Widget, status: str) -> Style:
    """The rich style of ``status`` as ``widget``'s stylesheet sets it."""
    return widget.get_component_rich_style(status_class(status), partial=True)


def status_text(widget: Widget, status: str, label: str | None = None) -> Text:
    return Text(label if label is not None else status, style=status_style(widget, status))


def now() -> datetime:
    """The clock the ages are measured with (tests set it)."""
    return datetime.now(UTC)


def parse_moment(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(text: str | None, *, at: datetime | None = None) -> str:
    """``40s``, ``3m``, ``2h``, ``5d``: how long ago ``text`` (ISO-8601) was; ``—`` if unknown."""
    moment = parse_moment(text)
    if moment is None:
        return NONE
    seconds = max(0, int(((at or now()) - moment).total_seconds()))
    for unit, size, limit in (("s", 1, 60), ("m", 60, 3600), ("h", 3600, 2 * 86400)):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"


def clock(text: str | None) -> str:
    """``2026-11-27 21:27`` in local time, for lists of events."""
    moment = parse_moment(text)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment else NONE


def when(text: str | None) -> str:
    """``11-27 21:27`` in local time, for the rows of a table."""
    moment = parse_moment(text)
    return moment.astimezone().strftime("%m-%d %H:%M") if moment else NONE


def size(value: int | None) -> str:
    """``3.7 MiB``, as the command line and the reports write it (api.human_size); ``—``
    when unknown."""
    from core import api  # not before the first paint

    return api.human_size(value) or NONE


def short(release: str | None) -> str:
    """A release id as the overview shows it: seven characters, like a git commit."""
    return release[:7] if release else NONE


def label(release: str | None, version: str | None) -> str:
    """``v1.4.0 (5940538)`` or ``5940538f2007`` when no version is known yet."""
    if not release:
        return "nothing"
    return f"{version} ({release[:7]})" if version else release


def number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return NONE if value is None else str(value)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"C": 1}}`` -> ``{"train.C": 1}``; a single top-level file name (params.yaml,
    metrics.json) is dropped, as ``relman diff`` shows keys."""
    if not prefix and len(tree) == 1:
        (only,) = tree
        if isinstance(tree[only], Mapping) and "." in only:
            return flatten(tree[only])
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def command_line(args: Iterable[str], *, project_root: Path | None = None) -> str:
    """The shell command a person types: ``relman rollback iris --env prod --reason "..."``.
    ``--project`` is added when the current folder is not inside the project."""
    argv = ["relman"]
    if project_root is not None:
        try:
            Path.cwd().resolve().relative_to(project_root.resolve())
        except (ValueError, OSError):
            argv += ["--project", str(project_root)]
    argv += list(args)
    return " ".join(arg if arg == '"..."' else shlex.quote(arg) for arg in argv)

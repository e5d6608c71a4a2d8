"""Tables of the command line's text answers: a Rich table in a terminal, plain columns
with every value whole anywhere else.

A Rich table fits the console's width, and a console that is not a terminal is 80 columns
wide: piped into a file, `grep` or `less`, timestamps and URLs came out cut
(``2026-12-07T02:0…``). What a script or a person reads from a pipe must be the value
itself, so off a terminal each column is as wide as its widest cell, and nothing is cut
or wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

GAP = "  "


def plain_columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a table as plain text: columns padded to their widest cell, two spaces
    apart, the last one unpadded (no trailing blanks)."""
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        cells[-1] = str(row[-1])
        lines.append(GAP.join(cells).rstrip())
    return lines


def print_table(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``rows`` under ``headers``: a Rich table on a terminal, :func:`plain_columns` off one."""
    if not console.is_terminal:
        for line in plain_columns(headers, rows):
            console.print(line, soft_wrap=True)
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    console.print(table)

"""The monitor's drift section: ``api.drift`` as a compact table that reads at 80 columns.

One line says what was compared (the window, the training data, how many records and the PSI
limit), then one row per feature: PSI, KS, the live and reference means, and its state; the
predictions' class mix last, with the classes that moved most. A feature whose drift rule
has an open alert shows the alert's state (pending, firing) instead of its own. No widget
here: the section is a rich renderable the monitor puts in a StatusStatic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widget import Widget

from screens.common import NONE, status_text

# The classes of the predictions' mix shown (those that moved most), the rest counted.
CLASSES_SHOWN = 4
# A feature's own state, and how its status is drawn.
STATE_STATUS = {"ok": "passed", "drift": "blocked", "unmeasured": "skipped"}


def figure(value: float | None, digits: int = 3) -> str:
    return NONE if value is None else f"{value:.{digits}f}"


def mean(value: float | None) -> str:
    return NONE if value is None else f"{value:.3g}"


def share(value: float) -> str:
    return f"{value:.0%}"


def open_drift_alerts(alerts: Iterable[dict[str, Any]]) -> dict[str, str]:
    """``{feature: state}`` of the drift alerts that are pending or firing."""
    found = {}
    for alert in alerts:
        name = str(alert.get("name", ""))
        if alert.get("kind") == "drift" and alert.get("state") in ("pending", "firing"):
            found[name.partition(":")[2] or name] = str(alert["state"])
    return found


def heading(document: dict[str, Any]) -> str:
    """``last 15 min vs data/iris.csv · 812 records · PSI > 0.20 is drift``."""
    reference = document.get("reference") or {}
    against = f" vs {reference['path']}" if reference.get("path") else ""
    return (
        f"last {document['window_minutes']} min{against} · {document['records']} records · "
        f"PSI > {document['psi_max']:.2f} is drift"
    )


def drift_section(
    widget: Widget, document: dict[str, Any] | None, alerts: list[dict[str, Any]]
) -> RenderableType:
    """The drift of one environment as the monitor shows it (``document`` None: not read
    yet)."""
    if document is None:
        return Text("reading the drift…")
    opened = open_drift_alerts(alerts)
    if not document.get("measured"):
        lines = [Text(str(document.get("note") or "drift not measured"))]
        lines += [
            Text.assemble(status_text(widget, state), f" drift:{feature}")
            for feature, state in opened.items()
        ]
        return Group(*lines)
    table = Table(
        box=None,
        padding=(0, 1),
        show_edge=False,
        header_style="bold",
        pad_edge=False,
    )
    table.add_column("feature", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("PSI", justify="right", no_wrap=True)
    table.add_column("KS", justify="right", no_wrap=True)
    table.add_column("mean live/ref", justify="right", no_wrap=True, overflow="ellipsis")
    table.add_column("state", no_wrap=True)
    for feature in document["features"]:
        means = f"{mean(feature['live_mean'])} / {mean(feature['reference_mean'])}"
        table.add_row(
            feature["name"],
            figure(feature["psi"]),
            figure(feature["ks"]),
            means,
            state_text(widget, feature["name"], feature["state"], opened),
        )
    predictions = document.get("predictions")
    rows: list[RenderableType] = [Text(heading(document)), table]
    if predictions is not None:
        table.add_row(
            "predictions",
            figure(predictions["psi"]),
            NONE,
            f"n={predictions['live_n']}",
            state_text(widget, "prediction", predictions["state"], opened),
        )
        rows.append(Text(class_mix(predictions["classes"]), overflow="fold"))
    return Group(*rows)


def state_text(widget: Widget, name: str, state: str, opened: dict[str, str]) -> Text:
    """An open alert's state when the feature's rule has one; else ok, drift or unmeasured."""
    if name in opened:
        return status_text(widget, opened[name])
    return status_text(widget, STATE_STATUS.get(state, "skipped"), state)


def class_mix(classes: list[dict[str, Any]]) -> str:
    """``classes live (ref): virginica 41% (33%) · setosa 26% (33%) · and 2 more``, the
    classes that moved most first."""
    shown = [
        f"{entry['name']} {share(entry['live'])} ({share(entry['reference'])})"
        for entry in classes[:CLASSES_SHOWN]
    ]
    if len(classes) > CLASSES_SHOWN:
        shown.append(f"and {len(classes) - CLASSES_SHOWN} more")
    return "classes live (ref): " + " · ".join(shown) if shown else "no classes predicted yet"

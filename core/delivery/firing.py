"""The alerts firing in each environment, as the metric store keeps them: what `relman
status` names beside what is live, and what the order gate checks before a release leaves
an environment for the next one (docs/monitoring.md).

One read of the read-only store, and none at all while nothing was collected (no
``.relman/metrics.db``), so status stays as fast as it was. A store that cannot be read
(locked past its timeout, damaged) costs its alerts and says so in one line; it never fails
the command that only wanted to show them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.config.model import Project

if TYPE_CHECKING:
    from core.delivery.gates import GateResult
    from core.documents import FiringAlert

__all__ = ["Firing", "firing_alerts", "firing_line", "order_with_alerts"]

# {(service, env): the alerts firing there, the most recently updated first}
Firing = dict[tuple[str, str], list["FiringAlert"]]


def firing_alerts(project: Project) -> tuple[Firing, str | None]:
    """The firing alerts of every (service, env), and the line that says why none could be
    read (None when the store was read, or there is none yet)."""
    from core.monitoring.collector_process import metrics_path
    from store.errors import StoreFailure

    path = metrics_path(project)
    if not path.exists():
        return {}, None
    from store.metrics.store import MetricStore

    try:
        with MetricStore.open(path, readonly=True) as store:
            rows = store.alerts(state="firing")
    except StoreFailure as exc:
        return {}, f"firing alerts not shown: {exc}"
    found: Firing = {}
    for row in rows:
        found.setdefault((row.service, row.env), []).append(
            {"name": row.rule, "detail": row.detail, "release": row.release}
        )
    return found, None


def firing_line(
    project: Project, service: str, env: str, release: str, *, forced: bool = False
) -> str | None:
    """What blocks ``release`` from leaving ``env`` while alerts fire there for it (their
    lines, and where to read them), ``forced``: what the override passes over; None while
    none fires."""
    found, _unread = firing_alerts(project)  # unread: the ledger's word stands
    alerts = [a for a in found.get((service, env), []) if a["release"] == release]
    if not alerts:
        return None
    count = "a firing alert" if len(alerts) == 1 else f"{len(alerts)} firing alerts"
    lines = "; ".join(f"{a['name']}: {a['detail']}" for a in alerts)
    said = f"{env} has {count} for this release: {lines} (relman alerts)"
    return f"{said}; order check overridden" if forced else f"{said}; --force to promote anyway"


def order_with_alerts(
    project: Project,
    service: str,
    previous: str,
    release: str,
    order: GateResult,
    *,
    forced: bool = False,
) -> GateResult:
    """The order check of a release healthy in ``previous``, unless an alert fires there for
    this very release: then it blocks (``forced``: it is skipped, and says why)."""
    from core.delivery.gates import GateResult  # status, which reads alerts too, spares it

    line = firing_line(project, service, previous, release, forced=forced)
    if line is None:
        return order
    return GateResult(order.name, order.kind, "skipped" if forced else "failed", line)

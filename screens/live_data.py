"""What the live screens draw from: the metric store's series and the alerts, read through
core.api and shaped as plain data for the overview's figures and the monitor screen. The
reads run in the screens' thread workers (screens/live.py polls them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from screens import common

if TYPE_CHECKING:
    from core import api
    from core.api import EnvironmentView, ServiceView

# The overview's p95 sparkline: one cell per minute.
SPARK_MINUTES = 15
# How far before the last complete minute the newest one may be and still count as "now":
# older, the overview shows no request rate rather than a stale one.
STALE_SECONDS = 120


def file_stamp(path: Path) -> tuple[int, int]:
    """(mtime, size) of ``path``, (0, 0) when it cannot be read: a change means read again."""
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


def minute_of(text: str | None) -> int | None:
    moment = common.parse_moment(text)
    return int(moment.timestamp()) // 60 * 60 if moment else None


def last_complete_minute() -> int:
    """The collector rolls a minute up once it is over: the newest minute there can be."""
    return int(common.now().timestamp()) // 60 * 60 - 60


@dataclass(frozen=True)
class EnvFigures:
    """The overview's figures of one environment."""

    rps: float | None = None  # the newest minute's request rate; None: no recent minute
    p95: tuple[float | None, ...] = ()  # p95 of each of the last minutes, oldest first
    firing: int = 0
    last_p95: float | None = None  # the newest minute's p95 (None: no recent minute, or
    # no request in it)
    errors: float | None = None  # the newest minute's error rate, a fraction (None: no
    # recent minute)


@dataclass(frozen=True, order=True)
class FiringAlert:
    """One alert firing now, as the overview names it above its table."""

    service: str
    env: str
    name: str
    detail: str


@dataclass(frozen=True)
class LiveFigures:
    """Figures by overview row key (``service/env``); ``error`` when the store could not
    be read (its one line)."""

    envs: Mapping[str, EnvFigures] = field(default_factory=dict)
    error: str = ""
    # What the figures were made of (api.metrics' points, api.alerts' firing counts), kept
    # to make them again at another minute, or with one of the two read again.
    series: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict, compare=False)
    firing: Mapping[str, int] = field(default_factory=dict, compare=False)
    # Every alert firing now, in (service, env, name) order.
    alerts: tuple[FiringAlert, ...] = ()

    def of(self, key: str) -> EnvFigures:
        return self.envs.get(key, EnvFigures())


def figures(
    points: list[dict[str, Any]], firing: int, *, minutes: int = SPARK_MINUTES
) -> EnvFigures:
    """The p95 of the last ``minutes`` minutes of ``points`` (api.metrics), one slot per
    minute; the request rate and p95 of the newest minute when it is recent (no stale
    figure)."""
    end = last_complete_minute()
    by_minute = {minute_of(point["t"]): point for point in points}
    p95 = tuple(
        by_minute.get(minute, {}).get("p95_ms")
        for minute in range(end - (minutes - 1) * 60, end + 60, 60)
    )
    newest = max((minute for minute in by_minute if minute is not None), default=None)
    recent = by_minute[newest] if newest is not None and newest >= end - STALE_SECONDS else {}
    shown = p95 if any(v is not None for v in p95) else ()
    return EnvFigures(
        recent.get("rps"), shown, firing, recent.get("p95_ms"), recent.get("error_rate")
    )


def _paging(alert: dict[str, Any]) -> bool:
    """Firing and not silenced in Alertmanager (docs/prometheus.md): what the header counts."""
    return alert.get("state") == "firing" and not alert.get("silence")


def firing_counts(alerts: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(f"{a['service']}/{a['env']}" for a in alerts if _paging(a))


def firing_alerts(alerts: Iterable[dict[str, Any]]) -> tuple[FiringAlert, ...]:
    return tuple(
        sorted(
            FiringAlert(str(a["service"]), str(a["env"]), str(a["name"]), str(a.get("detail", "")))
            for a in alerts
            if _paging(a)
        )
    )


def deployed(services: Iterable[ServiceView]) -> list[tuple[str, str]]:
    """(service, env) of every environment a release is deployed to."""
    return [(s.name, e.name) for s in services for e in s.environments if e.release]


def read_live(
    project: api.Project,
    services: Iterable[ServiceView],
    previous: LiveFigures | None = None,
    *,
    series_due: bool = True,
    alerts_due: bool = True,
) -> LiveFigures:
    """Request rate, p95 and firing alerts of every environment a release is deployed to.
    What is not due is taken from ``previous``: the series gain a point a minute and the
    alerts change at the collector's passes, so the caller reads them at their own, slower
    pace (the series while the same environments are live)."""
    from core import api

    if alerts_due or previous is None:
        document = api.alerts(project)["alerts"]
        firing, alerts = firing_counts(document), firing_alerts(document)
    else:
        firing, alerts = Counter(previous.firing), previous.alerts
    services = list(services)
    keys = [f"{service}/{env}" for service, env in deployed(services)]
    if not series_due and previous is not None and sorted(previous.series) == sorted(keys):
        series = dict(previous.series)
    else:
        series = {
            f"{service}/{env}": api.metrics(project, service, env, f"{SPARK_MINUTES}m")["points"]
            for service, env in deployed(services)
        }
    envs = {key: figures(points, firing[key]) for key, points in series.items()}
    for key, count in firing.items():
        envs.setdefault(key, EnvFigures(firing=count))
    return LiveFigures(envs, series=series, firing=dict(firing), alerts=alerts)


@dataclass(frozen=True)
class MonitorView:
    """What the monitor screen shows of one environment."""

    service: str
    env: str
    range_: str
    points: list[dict[str, Any]]
    alerts: list[dict[str, Any]]  # this environment's, firing first
    collector: int | None
    environment: EnvironmentView | None = None
    # What the running collector says is wrong with its source here (Prometheus down, ...).
    source_problem: str | None = None

    def series(self, field: str, minutes: int) -> list[float | None]:
        """``field`` of each of the last ``minutes`` minutes, oldest first, up to the last
        complete one (None: a minute without a point, or without that value)."""
        end = last_complete_minute()
        by_minute = {minute_of(point["t"]): point for point in self.points}
        return [
            by_minute.get(minute, {}).get(field)
            for minute in range(end - (minutes - 1) * 60, end + 60, 60)
        ]


def read_monitor(project: api.Project, service: str, env: str, range_: str) -> MonitorView:
    from core import api

    views = {s.name: s for s in api.overview(project)}
    environment = next((e for e in views[service].environments if e.name == env), None)
    series = api.metrics(project, service, env, range_)
    alerts = api.alerts(project)
    mine = [a for a in alerts["alerts"] if a["service"] == service and a["env"] == env]
    source = series.get("source")
    return MonitorView(
        service,
        env,
        range_,
        list(series["points"]),
        mine,
        alerts.get("collector"),
        environment,
        source["problem"] if source is not None else None,
    )

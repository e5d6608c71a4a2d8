"""The canned shop project's metric store (tests/tui/canned.py): a day of per-minute points of
each environment, answering ``api.metrics``, and its alerts, answering ``api.alerts``.

prod's p99 climbs past 500 ms over its last minutes and fires; one of its features drifts
(pending); staging had an error burst (resolved); dev is idle one minute in nine.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

from core import api
from tests.tui.canned import CANDIDATE, NOW, PROD


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def minute_point(env: str, minute: int) -> dict[str, Any] | None:
    """The rollup of ``minute`` minutes before NOW in ``env`` (None: a minute without one)."""
    wave = math.sin(minute / 7)
    if env == "dev" and minute % 9 == 4:
        return None  # dev is idle now and then
    rps = {"dev": 0.8, "staging": 2.5, "prod": 12.0}[env] * (1 + 0.2 * wave)
    p50 = {"dev": 18.0, "staging": 21.0, "prod": 35.0}[env] + 3 * wave
    p95 = p50 * 2.2
    p99 = p50 * 3.1
    errors = 0.0
    if env == "prod" and minute <= 18:  # the last 18 minutes: p99 climbs past 500 ms
        p95, p99 = p95 + 12 * (19 - minute), 240 + 35 * (19 - minute)
    if env == "staging" and 170 <= minute <= 175:
        errors = 0.072
    t = int(NOW.timestamp()) - 60 * minute
    return {
        "t": iso(t),
        "rps": round(rps, 3),
        "error_rate": errors,
        "p50_ms": round(p50, 1),
        "p95_ms": round(p95, 1),
        "p99_ms": round(p99, 1),
    }


def metrics(project: api.Project, service: str, env: str, range_: str = "1h") -> dict[str, Any]:
    from core.monitoring.queries import parse_range

    minutes = parse_range(range_) // 60
    points = [minute_point(env, m) for m in range(minutes, 0, -1)]
    return {
        "ok": True,
        "service": service,
        "env": env,
        "range": range_,
        "points": [p for p in points if p is not None],
    }


# The command the alert was opened with: its reason is the line of that minute.
ROLLBACK_PROD = (
    "relman rollback shop --env prod --reason 'latency_p99: p99 540 ms > 500 ms for 2 min'"
)
ALERTS: list[dict[str, Any]] = [
    {
        "name": "latency_p99",
        "kind": "sudden",
        "service": "shop",
        "env": "prod",
        "state": "firing",
        "since": "2026-11-27T11:51:00+00:00",
        "detail": "p99 870 ms > 500 ms for 11 min",
        "release": PROD,
        "rollback": ROLLBACK_PROD,
    },
    {
        "name": "drift:petal_length",
        "kind": "drift",
        "service": "shop",
        "env": "prod",
        "state": "pending",
        "since": "2026-11-27T11:58:00+00:00",
        "detail": "petal_length PSI 0.27 > 0.20 over the last 15 min",
        "release": PROD,
        "rollback": "relman rollback shop --env prod --reason 'drift:petal_length: petal_length "
        "PSI 0.27 > 0.20 over the last 15 min'",
    },
    {
        "name": "error_rate",
        "kind": "sudden",
        "service": "shop",
        "env": "staging",
        "state": "resolved",
        "since": "2026-11-27T09:05:00+00:00",
        "detail": "error rate 0.0% <= 5.0%; clear for 3 min",
        "release": CANDIDATE,
        "rollback": "relman rollback shop --env staging --reason 'error_rate: error rate 7.2% "
        "> 5.0% for 2 min'",
    },
]


def alerts(project: api.Project) -> dict[str, Any]:
    # A copy each call: a caller may change its document (as the engine's callers may).
    firing = sum(alert["state"] == "firing" for alert in ALERTS)
    return {"ok": not firing, "alerts": copy.deepcopy(ALERTS), "firing": firing, "collector": 4242}


def feature(name: str, psi: float, ks: float, live: float, reference: float) -> dict[str, Any]:
    return {
        "name": name,
        "psi": psi,
        "ks": ks,
        "reference_n": 150,
        "live_n": 812,
        "live_mean": live,
        "reference_mean": reference,
        "state": "drift" if psi > 0.2 else "ok",
        "detail": f"{name}: PSI {psi:.3f}, KS {ks:.3f}",
    }


def not_measured(service: str, env: str, records: int) -> dict[str, Any]:
    release = ENVIRONMENTS_LIVE[env]
    return {
        "ok": True,
        "service": service,
        "env": env,
        "release": release,
        "version": None,
        "window_minutes": 15,
        "min_records": 200,
        "psi_max": 0.2,
        "records": records,
        "reference": {"path": "data/orders.csv", "md5": "013d0da0", "rows": None},
        "measured": False,
        "note": (
            f"{records} records of {release} in the last 15 min; drift is measured from 200 "
            "(drift_min_records)"
        ),
        "features": [],
        "predictions": None,
    }


ENVIRONMENTS_LIVE = {"dev": CANDIDATE, "staging": CANDIDATE, "prod": PROD}


def drift(project: api.Project, service: str, env: str) -> dict[str, Any]:
    """prod's petal_length drifts (its alert is pending); dev and staging have too few
    records to measure."""
    if env != "prod":
        return not_measured(service, env, 14 if env == "dev" else 120)
    document = not_measured(service, env, 812)
    document.update(
        version="v1.3.2",
        measured=True,
        note="",
        reference={"path": "data/orders.csv", "md5": "013d0da0", "rows": 150},
        features=[
            feature("sepal_length", 0.031, 0.052, 5.86, 5.84),
            feature("sepal_width", 0.018, 0.041, 3.05, 3.06),
            feature("petal_length", 0.274, 0.212, 4.21, 3.76),
            feature("petal_width", 0.142, 0.118, 1.31, 1.2),
        ],
        predictions={
            "psi": 0.061,
            "state": "ok",
            "live_n": 812,
            "classes": [
                {"name": "virginica", "live": 0.41, "reference": 0.333},
                {"name": "setosa", "live": 0.26, "reference": 0.333},
                {"name": "versicolor", "live": 0.33, "reference": 0.333},
            ],
            "detail": "predictions: PSI 0.061 over 3 classes",
        },
    )
    return document

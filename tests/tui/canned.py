"""A fixed world for the screens: the engine's read calls (core.api) answer canned documents
of the shapes DESIGN.md fixes, so pictures and dialog texts never depend on the clock, on
commit hashes or on BentoML. The engine's own behaviour is tested in tests/core and e2e.

shop v1.4.0 (a1b2c3d4e5f6, commit 3f9a2c1) is the candidate, live in dev and staging;
prod runs v1.3.2 (0f9e8d7c6b5a), which replaced v1.3.1 (1234567890ab). The metric store has
a day of minutes of each environment; prod's p99 fires, one of its features drifts, staging
had an error burst.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest

from core import api
from core.api import EnvironmentView, ServiceView
from screens import common

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

CANDIDATE = "a1b2c3d4e5f6"
PROD = "0f9e8d7c6b5a"
OLDER = "1234567890ab"
COMMIT = "3f9a2c1d4e5b6a7980f1e2d3c4b5a69788796a5b"

CANNED_TOML = """\
[project]
name = "shop"

[services.shop]
bento = "service:Shop"
model = ["model.pkl"]

[environments.dev]
port = 3100
suites = ["unit"]

[environments.staging]
port = 3101
suites = ["unit", "model"]

[environments.prod]
port = 3102
suites = ["unit", "model"]
approvals = 1

[suites.unit]
paths = ["tests/unit"]

[suites.model]
paths = ["tests/model"]
"""

ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "dev": {
        "release": CANDIDATE,
        "version": "v1.4.0",
        "state": "live",
        "url": "http://127.0.0.1:3100",
        "since": "2026-11-27T11:57:00+00:00",
    },
    "staging": {
        "release": CANDIDATE,
        "version": "v1.4.0",
        "state": "live",
        "url": "http://127.0.0.1:3101",
        "since": "2026-11-27T10:00:00+00:00",
    },
    "prod": {
        "release": PROD,
        "version": "v1.3.2",
        "state": "live",
        "url": "http://127.0.0.1:3102",
        "since": "2026-11-24T08:00:00+00:00",
    },
}


def candidate(**changes: Any) -> dict[str, Any]:
    document = {
        "release": CANDIDATE,
        "ok": True,
        "git": {
            "commit": COMMIT,
            "short": COMMIT[:7],
            "branch": "main",
            "message": "Retrain on the November data",
            "author": "Ada Lovelace <ada@example.com>",
            "committed_at": "2026-11-27T09:00:00+00:00",
            "dirty": False,
            "dirty_files": [],
        },
        "model": [
            {
                "name": "shop-model",
                "path": "models/model.pkl",
                "md5": "c2bbd29e68d6fbfd0765ebe320d3f46e",
                "size": 965,
                "in_cache": True,
                "cache": "local",
            }
        ],
        "data": [
            {
                "name": "shop-data",
                "path": "data/orders.csv",
                "md5": "013d0da08d6506664ce640459139176b",
                "size": 3_858_000,
                "in_cache": True,
                "cache": "local",
            }
        ],
        "params": {"params.yaml": {"train": {"C": 1.0, "seed": 42}}},
        "metrics": {"metrics.json": {"accuracy": 0.956, "f1_macro": 0.955}},
        "problems": [],
    }
    document.update(changes)
    return document


def overview(project: api.Project) -> list[ServiceView]:
    envs = [
        EnvironmentView(name=name, **{k: v for k, v in env.items()})
        for name, env in ENVIRONMENTS.items()
    ]
    return [ServiceView(name="shop", bento="service:Shop", environments=envs)]


def status(project: api.Project) -> dict[str, Any]:
    return {
        "ok": True,
        "project": "shop",
        "services": [{"name": "shop", "candidate": candidate(), "environments": ENVIRONMENTS}],
    }


def step(name: str, status: str, detail: str, kind: str) -> dict[str, Any]:
    return {"name": name, "status": status, "seconds": 0.0, "detail": detail, "kind": kind}


def gate(project: api.Project, service: str, env: str) -> dict[str, Any]:
    steps = [
        step("order", "passed", "healthy in staging", "order"),
        step("data and model", "passed", "data and model in the local cache", "artifacts"),
        step("suite unit", "passed", "suite unit passed for this release: 7 passed", "suites"),
    ]
    if env != "dev":
        steps.append(
            step(
                "suite model",
                "passed",
                "suite model passed for this release: 3 passed",
                "suites",
            )
        )
    steps.append(step("accuracy-floor", "passed", "accuracy 0.956 >= 0.900", "metric"))
    if env == "prod":
        steps.append(
            step(
                "approvals",
                "failed",
                "prod needs 1 approval from someone other than ada@example.com; has 0",
                "approvals",
            )
        )
    else:
        steps.append(step("approvals", "skipped", f"{env} needs no approval", "approvals"))
    ok = not any(s["status"] == "failed" for s in steps)
    return {"ok": ok, "service": service, "env": env, "release": CANDIDATE, "steps": steps}


def entry(
    kind: str,
    at: str,
    env: str | None,
    release: str | None,
    version: str | None,
    status: str,
    summary: str,
) -> dict[str, Any]:
    return {
        "kind": kind,
        "at": at,
        "service": "shop",
        "env": env,
        "release": release,
        "version": version,
        "actor": "ada@example.com",
        "status": status,
        "summary": summary,
    }


HISTORY = [
    entry(
        "promotion",
        "2026-11-27T11:57:00+00:00",
        "dev",
        CANDIDATE,
        "v1.4.0",
        "done",
        f"promote {CANDIDATE} (v1.4.0) to dev: done",
    ),
    entry(
        "promotion",
        "2026-11-27T10:00:00+00:00",
        "staging",
        CANDIDATE,
        "v1.4.0",
        "done",
        f"promote {CANDIDATE} (v1.4.0) to staging: done",
    ),
    entry(
        "run",
        "2026-11-27T09:30:00+00:00",
        None,
        CANDIDATE,
        "v1.4.0",
        "passed",
        f"test run #7 of {CANDIDATE} (v1.4.0): passed (unit passed: 7 passed in 2.2 s)",
    ),
    entry(
        "promotion",
        "2026-11-24T08:00:00+00:00",
        "prod",
        PROD,
        "v1.3.2",
        "done",
        f"promote {PROD} (v1.3.2) to prod (was {OLDER}): done",
    ),
    entry(
        "promotion",
        "2026-11-20T08:00:00+00:00",
        "prod",
        OLDER,
        "v1.3.1",
        "done",
        f"promote {OLDER} (v1.3.1) to prod: done",
    ),
]


def history(
    project: api.Project,
    *,
    service: str | None = None,
    env: str | None = None,
    limit: int = 50,
    before: str | None = None,
) -> dict[str, Any]:
    entries = [e for e in HISTORY if env is None or e["env"] == env]
    return {"ok": True, "entries": entries[:limit], "next_cursor": None, "warnings": []}


def diff(project: api.Project, a: str, b: str) -> dict[str, Any]:
    old = (
        {"accuracy": 0.948, "f1_macro": 0.951}
        if a == PROD
        else {"accuracy": 0.956, "f1_macro": 0.955}
    )
    new = {"accuracy": 0.956, "f1_macro": 0.955}
    metrics = [
        {"key": key, "a": old[key], "b": new[key], "delta": round(new[key] - old[key], 6)}
        for key in new
    ]
    return {"ok": True, "metrics": metrics, "params": [], "artifacts": [], "commits": []}


def live_at(
    project: api.Project, moment: str, *, service: str | None = None, env: str | None = None
) -> dict[str, Any]:
    release = ENVIRONMENTS[env or "prod"]["release"]
    return {
        "ok": True,
        "live": [
            {
                "service": "shop",
                "env": env,
                "release": release,
                "version": ENVIRONMENTS[env or "prod"]["version"],
                "commit": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807",
                "message": "Tune the regulariser",
                "model": [{"path": "models/model.pkl", "md5": "9a9a9a9a9a", "size": 960}],
                "data": [
                    {
                        "path": "data/orders.csv",
                        "md5": "013d0da08d6506664ce640459139176b",
                        "size": 3_858_000,
                    }
                ],
                "params": {"train.C": 0.5, "train.seed": 42},
                "metrics": {"accuracy": 0.948, "f1_macro": 0.951},
            }
        ],
    }


def audit_verify(project: api.Project) -> dict[str, Any]:
    return {
        "ok": True,
        "checked": 12,
        "first_broken": None,
        "problem": None,
        "detail": "audit chain intact: 12 events checked",
    }


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
    from core.monitoring import parse_range

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
    firing = sum(alert["state"] == "firing" for alert in ALERTS)
    return {"ok": not firing, "alerts": ALERTS, "firing": firing, "collector": 4242}


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of core.api answers from this module; the clock stands at NOW."""
    reads = ("overview", "status", "gate", "history", "diff", "live_at", "audit_verify")
    for name in (*reads, "metrics", "alerts"):
        monkeypatch.setattr(api, name, globals()[name])
    monkeypatch.setattr(common, "now", lambda: NOW)


def deploy_document(
    kind: str, env: str, release: str, version: str, error: str | None = None, exit_code: int = 0
) -> dict[str, Any]:
    """What api.promote and api.rollback return."""
    steps = [
        {"name": "lock", "status": "passed", "seconds": 0.01, "detail": f"{env} locked"},
        {
            "name": "validate",
            "status": "passed",
            "seconds": 3.4,
            "detail": "ready in 3.4 s on 127.0.0.1:40000; /predict answered 200 in 25 ms",
        },
        {
            "name": "switch",
            "status": "passed",
            "seconds": 0.1,
            "detail": f"{env} serves {version} at http://127.0.0.1:3102",
        },
    ]
    if error:
        steps = [{"name": "approvals", "status": "failed", "seconds": 0.0, "detail": error}]
    return {
        "ok": exit_code == 0,
        "kind": kind,
        "service": "shop",
        "env": env,
        "release": release,
        "version": version,
        "url": None,
        "steps": steps,
        "error": error,
        "exit_code": exit_code,
        "seconds": 3.5,
    }

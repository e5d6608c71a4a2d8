"""A fixed world for the screens: the engine's read calls (core.api) answer canned documents
of the shapes docs/json.md fixes (tests/contract checks them against docs/schemas/), so
pictures and dialog texts never depend on the clock, on commit hashes or on BentoML. The
engine's own behaviour is tested in tests/core and e2e.

shop v1.4.0 (a1b2c3d4e5f6, commit 3f9a2c1) is the candidate, live in dev and staging;
prod runs v1.3.2 (0f9e8d7c6b5a), which replaced v1.3.1 (1234567890ab). Their traffic and
alerts are in tests/tui/canned_live.py.
"""

from __future__ import annotations

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
            "detached": False,
            "shallow": False,
        },
        "model": [
            {
                "name": "shop-model",
                "path": "models/model.pkl",
                "type": "model",
                "md5": "c2bbd29e68d6fbfd0765ebe320d3f46e",
                "size": 965,
                "nfiles": None,
                "in_cache": True,
                "cache": "local",
                "source": "dvc.yaml:train",
            }
        ],
        "data": [
            {
                "name": "shop-data",
                "path": "data/orders.csv",
                "type": "dataset",
                "md5": "013d0da08d6506664ce640459139176b",
                "size": 3_858_000,
                "nfiles": None,
                "in_cache": True,
                "cache": "local",
                "source": "data/orders.csv.dvc",
            }
        ],
        "params": {"params.yaml": {"train": {"C": 1.0, "seed": 42}}},
        "metrics": {"metrics.json": {"accuracy": 0.956, "f1_macro": 0.955}},
        "problems": [],
        "notes": [],
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
        "root": "/home/ada/shop",
        "services": [
            {
                "name": "shop",
                "candidate": candidate(),
                "environments": ENVIRONMENTS,
                "registry": {
                    "shop-model": {"dev": "v1.4.0", "staging": "v1.4.0", "prod": "v1.3.2"}
                },
            }
        ],
        "warnings": [],
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


# What api.rollback_target answers, as the engine reads HISTORY: prod goes back to v1.3.1;
# dev and staging had nothing live before the candidate.
ROLLBACK_TARGETS: dict[str, dict[str, Any]] = {
    "prod": {
        "release": OLDER,
        "version": "v1.3.1",
        "approvals": {
            "name": "approvals",
            "status": "skipped",
            "seconds": 0.0,
            "detail": "v1.3.1 was live in prod before: no approval needed",
            "kind": "approvals",
        },
    }
}


def rollback_target(project: api.Project, service: str, env: str) -> dict[str, Any] | None:
    target = ROLLBACK_TARGETS.get(env)
    return dict(target) if target else None


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


def current_user(project: api.Project) -> str:
    """Who acts from the session: not the author of the candidate (four eyes)."""
    return "bob@example.com"


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every read of core.api answers from this module; the clock stands at NOW."""
    from tests.tui import canned_live

    for name in (
        "overview",
        "status",
        "gate",
        "history",
        "rollback_target",
        "diff",
        "live_at",
        "audit_verify",
        "current_user",
    ):
        monkeypatch.setattr(api, name, globals()[name])
    for name in ("metrics", "alerts", "drift"):
        monkeypatch.setattr(api, name, getattr(canned_live, name))
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

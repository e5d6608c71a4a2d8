"""An alert that joined an incident of its cause keeps which rule it joined
(alerts.grouped_with, schema 3), and the webhook announces only the incident's first rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.alerts.webhook import announcer
from store.metrics.store import AlertChange, MetricStore


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MetricStore:
    monkeypatch.chdir(tmp_path)
    return MetricStore.open(tmp_path / ".relman" / "metrics.db")


def change(rule: str, t: int, state: str, grouped_with: str | None = None) -> AlertChange:
    return AlertChange(
        rule, "regression", "iris", "prod", t, state, 1.0, f"{rule} {state}", "r1", None,
        grouped_with,
    )  # fmt: skip


def test_grouped_alerts_are_kept_and_not_announced(store: MetricStore) -> None:
    first = change("latency_regression", 60, "firing")
    joined = change("latency_trend", 120, "firing", grouped_with="latency_regression")
    documents = [
        {"name": "latency_regression", "state": "firing"},
        {"name": "latency_trend", "state": "firing", "grouped_with": "latency_regression"},
    ]
    store.record_minute([], [first], announcer("http://hook", ["firing"], documents[:1]))
    store.record_minute([], [joined], announcer("http://hook", ["firing"], documents[1:]))
    posted = [post.document["name"] for post in store.webhook_posts()]
    assert posted == ["latency_regression"]
    rows = {row.rule: row for row in store.alerts()}
    assert rows["latency_trend"].grouped_with == "latency_regression"
    assert rows["latency_trend"].to_dict()["grouped_with"] == "latency_regression"
    assert rows["latency_regression"].grouped_with is None
    assert "grouped_with" not in rows["latency_regression"].to_dict()
    # A grouped alert resolves grouped; the one that paged resolves under its own name.
    store.record_minute([], [change("latency_trend", 180, "resolved", "latency_regression")])
    store.record_minute([], [change("latency_regression", 240, "resolved")])
    rows = {row.rule: row for row in store.alerts()}
    assert rows["latency_trend"].state == rows["latency_regression"].state == "resolved"
    assert rows["latency_trend"].grouped_with == "latency_regression"
    assert rows["latency_regression"].grouped_with is None

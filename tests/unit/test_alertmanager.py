"""Alertmanager as relman speaks it, without one: the labels and annotations of an alert,
the startsAt/endsAt of a firing and a resolved post, the posts the announcer queues, and
silences' matchers as Alertmanager matches them (=, !=, =~, !~, anchored, a missing label
read as empty)."""

from __future__ import annotations

from typing import Any

import pytest

from core.alerts.alertmanager import (
    ENDS_AFTER_POSTS,
    REPOST_SECONDS,
    Alertmanager,
    alerts_url,
    base_url,
    is_alerts_url,
    iso,
    seconds,
    severity,
)
from core.alerts.alertmanager_relay import Relay
from core.alerts.silences import Matcher, Silence, covering, parse_silences
from core.alerts.webhook import announcer

NOW = 1_796_634_000.0  # 2026-12-07 09:00 UTC: the wall clock of the posts
SINCE = "2026-12-07T08:13:00+00:00"
ROLLBACK = "relman rollback iris --env dev --reason 'error_rate: error rate 50.0% > 5.0% for 1 min'"


def alert(**changes: Any) -> dict[str, Any]:
    """An ``alerts`` entry of docs/json.md, firing."""
    entry: dict[str, Any] = {
        "name": "error_rate",
        "kind": "sudden",
        "service": "iris",
        "env": "dev",
        "state": "firing",
        "since": SINCE,
        "detail": "error rate 50.0% > 5.0% for 1 min",
        "release": "a1b2c3d4e5f6",
        "rollback": ROLLBACK,
    }
    return {**entry, **changes}


# --------------------------------------------------------------------------- payloads


def test_labels_say_rule_service_env_severity_kind_and_release() -> None:
    manager = Alertmanager("http://127.0.0.1:9093")
    assert manager.labels(alert()) == {
        "alertname": "error_rate",
        "service": "iris",
        "env": "dev",
        "severity": "critical",
        "kind": "sudden",
        "release": "a1b2c3d4e5f6",
    }
    # [monitoring.labels] renames service and env, as the series are named; no release: none.
    renamed = Alertmanager("http://am:9093", service_label="app", env_label="stage")
    labels = renamed.labels(alert(name="drift:petal_length", kind="drift", release=None))
    assert labels == {
        "alertname": "drift:petal_length",
        "app": "iris",
        "stage": "dev",
        "severity": "warning",
        "kind": "drift",
    }


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("down", "critical"),
        ("sudden", "critical"),
        ("leak", "warning"),
        ("performance", "warning"),
        ("regression", "warning"),
        ("trend", "warning"),
        ("drift", "warning"),
    ],
)
def test_severity_of_each_kind(kind: str, expected: str) -> None:
    assert severity(kind) == expected


def test_a_firing_payload_ends_a_few_reposts_after_now() -> None:
    payload = Alertmanager("http://am:9093").payload(alert(), now=NOW)
    assert payload["startsAt"] == "2026-12-07T08:13:00Z"
    assert seconds(payload["endsAt"]) == NOW + ENDS_AFTER_POSTS * REPOST_SECONDS
    assert payload["annotations"] == {
        "summary": "error rate 50.0% > 5.0% for 1 min",
        "rollback": ROLLBACK,
    }
    grouped = Alertmanager("http://am:9093").payload(alert(grouped_with="error_leak"), now=NOW)
    assert grouped["annotations"]["grouped_with"] == "error_leak"


def test_a_resolved_payload_ends_when_it_resolved_never_after_now() -> None:
    manager = Alertmanager("http://am:9093")
    fired = seconds(SINCE)
    assert fired is not None
    resolved = alert(state="resolved", since="2026-12-07T08:16:00+00:00")
    payload = manager.payload(resolved, now=NOW, starts=fired)
    assert (payload["startsAt"], payload["endsAt"]) == (iso(fired), "2026-12-07T08:16:00Z")
    # A collector clock ahead of the wall clock: ended now, and started no later.
    future = alert(state="resolved", since="2030-01-01T00:00:00+00:00")
    payload = manager.payload(future, now=NOW)
    assert payload["startsAt"] == payload["endsAt"] == iso(NOW)
    # Labels posted while it fired win: the release it fired for, not the one rolled back to.
    firing_labels = manager.labels(alert())
    after_rollback = alert(state="resolved", release="0f9e8d7c6b5a")
    assert manager.payload(after_rollback, now=NOW, labels=firing_labels)["labels"] == (
        firing_labels
    )


def test_urls() -> None:
    assert alerts_url("http://am:9093/") == "http://am:9093/api/v2/alerts"
    assert is_alerts_url("http://am:9093/api/v2/alerts")
    assert not is_alerts_url("http://hooks.example.com/relman")
    assert base_url("http://am:9093/api/v2/alerts") == "http://am:9093"


def test_the_announcer_posts_every_alert_to_alertmanager_and_unpaged_ones_to_the_webhook() -> None:
    fired, grouped, resolved = (
        alert(),
        alert(name="error_leak", grouped_with="error_rate"),
        alert(name="latency_p99", state="resolved"),
    )
    documents = [fired, grouped, resolved, alert(name="down", state="resolved")]
    states = [d["state"] for d in documents]
    announce = announcer("http://hook", states, documents, "http://am:9093")
    assert announce is not None
    # The last one resolved a pending alert: it never fired, nobody hears of it.
    posts = announce([None, "pending", "firing", "pending"])
    manager = "http://am:9093/api/v2/alerts"
    assert posts == [
        ("http://hook", fired),
        (manager, fired),
        (manager, grouped),
        ("http://hook", resolved),
        (manager, resolved),
    ]
    only_manager = announcer(None, states, documents, "http://am:9093")
    assert only_manager is not None
    assert [url for url, _ in only_manager([None, None, "firing", None])] == [manager] * 3
    assert announcer(None, states, documents, None) is None


def test_a_down_alertmanager_is_said_once_until_the_line_changes() -> None:
    relay = Relay(wall=lambda: NOW)
    url = "http://am:9093/api/v2/alerts"
    first = relay.failed(url, "alertmanager http://am:9093: connection refused")
    assert first == [
        "alertmanager http://am:9093: connection refused; relman's alerts are kept and posted "
        "when it answers"
    ]
    assert relay.failed(url, "alertmanager http://am:9093: connection refused") == []
    assert len(relay.failed(url, "alertmanager http://am:9093: HTTP 503")) == 1
    assert relay.answered(url) == [
        "alertmanager http://am:9093: answers again; relman's alerts posted"
    ]
    assert relay.answered(url) == []


# --------------------------------------------------------------------------- silences


def labels(**extra: str) -> dict[str, str]:
    return {"alertname": "error_rate", "service": "iris", "env": "dev", **extra}


@pytest.mark.parametrize(
    ("matcher", "matches"),
    [
        (Matcher("env", "dev"), True),
        (Matcher("env", "prod"), False),
        (Matcher("env", "prod", equal=False), True),
        (Matcher("env", "dev", equal=False), False),
        # Anchored at both ends, as Alertmanager anchors them.
        (Matcher("env", "d.*", regex=True), True),
        (Matcher("env", "de", regex=True), False),
        (Matcher("env", "ev", regex=True), False),
        (Matcher("env", "dev|staging", regex=True), True),
        (Matcher("env", "staging|prod", regex=True, equal=False), True),
        (Matcher("env", "d.*", regex=True, equal=False), False),
        # A label the alert lacks reads as the empty string.
        (Matcher("team", ""), True),
        (Matcher("team", "ml"), False),
        (Matcher("team", ".*", regex=True), True),
        (Matcher("team", ".+", regex=True), False),
        (Matcher("team", "", equal=False), False),
        # RE2's spellings Python lacks.
        (Matcher("env", "[[:alpha:]]+", regex=True), True),
        (Matcher("env", "[[:digit:]]+", regex=True), False),
        (Matcher("alertname", "\\Qerror_rate\\E", regex=True), True),
        (Matcher("alertname", "error.rate\\z", regex=True), True),
        # Not a regular expression Python reads: it covers nothing.
        (Matcher("env", "(", regex=True), False),
        (Matcher("env", "[[:^digit:]]+", regex=True), False),
    ],
)
def test_matchers_as_alertmanager_matches_them(matcher: Matcher, matches: bool) -> None:
    assert matcher.matches(labels()) is matches


def test_matchers_written_as_amtool_writes_them() -> None:
    texts = [
        Matcher("env", "dev").text(),
        Matcher("env", "dev", equal=False).text(),
        Matcher("env", 'd"v', regex=True).text(),
        Matcher("env", "x", regex=True, equal=False).text(),
    ]
    assert texts == ['env="dev"', 'env!="dev"', 'env=~"d\\"v"', 'env!~"x"']


def silence_json(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "22b625f8",
        "status": {"state": "active"},
        "updatedAt": "2026-12-07T20:10:42.077Z",
        "comment": "deploying the fix",
        "createdBy": "bob",
        "startsAt": "2026-12-07T20:10:42.077Z",
        "endsAt": "2026-12-07T22:10:42.000Z",
        "matchers": [
            {"isEqual": True, "isRegex": False, "name": "service", "value": "iris"},
            {"isEqual": True, "isRegex": True, "name": "env", "value": "dev|staging"},
        ],
    }
    return {**item, **changes}


def test_silences_read_from_the_api_and_the_one_that_covers_longest() -> None:
    later = silence_json(id="later", endsAt="2026-12-08T01:00:00.000Z")
    expired = silence_json(id="gone", status={"state": "expired"}, endsAt="2026-12-09T00:00:00Z")
    other = silence_json(id="other", matchers=[{"name": "service", "value": "shop"}])
    silences = parse_silences([silence_json(), later, expired, other, "junk", {"id": "x"}])
    assert [s.id for s in silences] == ["22b625f8", "later", "other"]
    found = covering(labels(), silences)
    assert found is not None and found.id == "later"
    assert found.entry() == {
        "id": "later",
        "by": "bob",
        "until": "2026-12-08T01:00:00.000Z",
        "comment": "deploying the fix",
        "matchers": 'service="iris", env=~"dev|staging"',
    }
    assert covering(labels(env="prod"), silences) is None
    # One that starts later covers nothing yet.
    pending = Silence("p", (Matcher("service", "iris"),), "bob", "", "", "", "pending")
    assert covering(labels(), [pending]) is None
    assert parse_silences({"not": "a list"}) == []

"""The collector's side of Alertmanager, kept between its passes: the outbox's posts to an
Alertmanager built when they are sent (core.alerts.webhook delivers them in order), the
firing alerts posted again every REPOST_SECONDS so that Alertmanager does not resolve them on
its own, and a down Alertmanager said in one line until that line changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.alerts.alertmanager import (
    REPOST_SECONDS,
    Alertmanager,
    Posted,
    base_url,
    seconds,
)

Key = tuple[str, str, str]  # (rule, service, env): one open alert each


class Relay:
    """What the collector posted to Alertmanager and what it said about it. ``wall`` is the
    clock Alertmanager compares ``startsAt``/``endsAt`` with (the collector's own clock may
    be a test's)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        # The labels each firing alert was posted with, and since when: its resolution goes
        # to the same labels (a rollback changes the release it reads meanwhile).
        self.posted: dict[Key, tuple[dict[str, str], float]] = {}
        self.said: dict[str, str] = {}  # by alerts URL: the line said while it fails
        self.reposted: float | None = None  # the collector's time of the last repost

    def send(
        self, url: str, document: Mapping[str, Any], alertmanager: Alertmanager | None
    ) -> Posted:
        """Post one alert of the outbox (its ``alerts`` entry of docs/json.md) to ``url``,
        with the label names configured for that Alertmanager (else the defaults)."""
        target = alertmanager
        if target is None or target.alerts_url != url.rstrip("/"):
            target = Alertmanager(base_url(url))
        key = _key(document)
        labels, starts = self.posted.get(key, (None, None))
        if document.get("state") != "resolved":
            labels = starts = None
        payload = target.payload(document, now=self.wall(), labels=labels, starts=starts)
        posted = target.post([payload])
        if posted.problem is None:
            self._remember([(key, payload, document)])
        return posted

    def repost(
        self,
        alertmanager: Alertmanager,
        firing: Callable[[], Sequence[Mapping[str, Any]]],
        now: float,
    ) -> list[str]:
        """Every REPOST_SECONDS (of the collector's ``now``), the alerts ``firing()`` reads
        (the store's) posted again, each ending a few reposts later; the lines to log."""
        if self.reposted is not None and 0 <= now - self.reposted < REPOST_SECONDS:
            return []
        self.reposted = now
        alerts = list(firing())
        if not alerts:
            return []
        wall = self.wall()
        payloads = []
        for alert in alerts:
            key = _key(alert)
            labels = self.posted[key][0] if key in self.posted else None
            payloads.append((key, alertmanager.payload(alert, now=wall, labels=labels), alert))
        posted = alertmanager.post([payload for _key, payload, _alert in payloads])
        if posted.problem is not None:
            return self.failed(alertmanager.alerts_url, posted.problem)
        self._remember(payloads)
        return self.answered(alertmanager.alerts_url)

    def failed(self, url: str, problem: str) -> list[str]:
        """The line of an Alertmanager that fails, once until the line changes."""
        line = f"{problem}; relman's alerts are kept and posted when it answers"
        if self.said.get(url) == line:
            return []
        self.said[url] = line
        return [line]

    def answered(self, url: str) -> list[str]:
        """The line of an Alertmanager that answers again after failing (nothing else)."""
        if self.said.pop(url, None) is None:
            return []
        return [f"alertmanager {base_url(url)}: answers again; relman's alerts posted"]

    def _remember(self, posted: Sequence[tuple[Key, dict[str, Any], Mapping[str, Any]]]) -> None:
        for key, payload, alert in posted:
            if alert.get("state") == "resolved":
                self.posted.pop(key, None)
            else:
                starts = seconds(payload["startsAt"])
                self.posted[key] = (dict(payload["labels"]), starts or self.wall())


def _key(alert: Mapping[str, Any]) -> Key:
    name = alert.get("name") or alert.get("rule")
    return (str(name), str(alert.get("service")), str(alert.get("env")))

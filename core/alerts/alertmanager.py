"""Alertmanager's v2 API as relman speaks it: an alert's labels and annotations, the payload
of a firing or resolved alert, the POST of ``/api/v2/alerts`` and the GET of
``/api/v2/silences`` (docs/prometheus.md, "Alertmanager"). What the collector keeps between
its posts is core.alerts.alertmanager_relay's; matching silences, core.alerts.silences'.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.alerts.alert_rules import SEVERITY
from core.alerts.silences import Silence, parse_silences

if TYPE_CHECKING:
    from core.config.model import Project

ALERTS_PATH = "/api/v2/alerts"
SILENCES_PATH = "/api/v2/silences"
# A firing alert is posted again this often, each post saying it ends ENDS_AFTER_POSTS posts
# later: Alertmanager resolves on its own an alert relman stopped posting (its collector
# stopped) about four minutes on, as Prometheus' alerts (4 x its one-minute resend delay).
REPOST_SECONDS = 60.0
ENDS_AFTER_POSTS = 4
POST_TIMEOUT = 5.0
# `relman alerts` waits this long for the silences, then says they are unknown.
SILENCES_TIMEOUT = 2.0

# relman's kinds of rule and the severity label they carry: what takes a service down or
# makes it answer wrong now pages; a slow drift from the usual warns.


def severity(kind: str) -> str:
    """The ``severity`` label of a rule's kind (``critical`` or ``warning``): the one the
    exported Prometheus rules carry (core/alerts/alert_rules.py), so one routing tree fits
    both."""
    return next((level for name, level in SEVERITY.items() if name == kind), "warning")


def iso(t: float) -> str:
    """Unix seconds as the RFC 3339 time Alertmanager reads, e.g. ``2026-12-07T20:10:42Z``."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def seconds(text: str | None) -> float | None:
    """An ISO-8601 time (relman's or Alertmanager's) as Unix seconds; None when unreadable."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Posted:
    """What Alertmanager answered a POST: ``problem`` None when it took the alerts;
    ``refused`` when it answered 400 (the alerts are wrong: sent again, refused again)."""

    problem: str | None = None
    refused: bool = False


@dataclass(frozen=True, slots=True)
class SilencesRead:
    """The active and pending silences, or (``silences`` None) the line that says why they
    are unknown."""

    silences: list[Silence] | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Alertmanager:
    """An Alertmanager (``url``: its base URL) and the label names relman's alerts carry
    their service and environment under ([monitoring.labels], as the series do)."""

    url: str
    service_label: str = "service"
    env_label: str = "env"

    @classmethod
    def of(cls, project: Project) -> Alertmanager | None:
        """The project's ``[monitoring] alertmanager_url``, or None when it has none."""
        monitoring = project.config.monitoring
        if not monitoring.alertmanager_url:
            return None
        labels = monitoring.labels
        return cls(monitoring.alertmanager_url.rstrip("/"), labels.service, labels.env)

    @property
    def alerts_url(self) -> str:
        return alerts_url(self.url)

    def labels(self, alert: Mapping[str, Any]) -> dict[str, str]:
        """The labels of an alert (the ``alerts`` entry of docs/json.md): ``alertname`` (the
        rule), the service and environment, ``severity``, ``kind`` and ``release`` (when
        known). Alertmanager tells alerts apart by them, and its routes and silences match
        them."""
        kind = str(alert.get("kind") or "")
        labels = {
            "alertname": str(alert.get("name") or alert.get("rule")),
            self.service_label: str(alert.get("service")),
            self.env_label: str(alert.get("env")),
            "severity": severity(kind),
            "kind": kind,
        }
        if alert.get("release"):
            labels["release"] = str(alert["release"])
        return labels

    def payload(
        self,
        alert: Mapping[str, Any],
        *,
        now: float,
        labels: Mapping[str, str] | None = None,
        starts: float | None = None,
    ) -> dict[str, Any]:
        """One alert of a ``POST /api/v2/alerts``, at wall-clock ``now``. Firing: from its
        ``since`` (never after now) to ENDS_AFTER_POSTS reposts later. Resolved: ended at
        its ``since`` (never after now), started at ``starts`` (when it was posted firing)
        or then. ``labels``: those it was posted firing with (a rollback may have changed
        its release since), else its own."""
        since = seconds(alert.get("since"))
        moment = min(since, now) if since is not None else now
        if alert.get("state") == "resolved":
            start, end = min(starts if starts is not None else moment, moment), moment
        else:
            start, end = moment, now + ENDS_AFTER_POSTS * REPOST_SECONDS
        annotations = {"summary": str(alert.get("detail") or "")}
        if alert.get("rollback"):
            annotations["rollback"] = str(alert["rollback"])
        if alert.get("grouped_with"):
            annotations["grouped_with"] = str(alert["grouped_with"])
        return {
            "labels": dict(labels if labels is not None else self.labels(alert)),
            "annotations": annotations,
            "startsAt": iso(start),
            "endsAt": iso(end),
        }

    def post(self, alerts: Sequence[Mapping[str, Any]], timeout: float = POST_TIMEOUT) -> Posted:
        """POST ``alerts`` (payloads) to ``/api/v2/alerts``; never raises on network errors."""
        try:
            status, body = _request(self.alerts_url, json.dumps(list(alerts)).encode(), timeout)
        except _Unanswered as exc:
            return Posted(f"alertmanager {self.url}: {exc}")
        if 200 <= status < 300:
            return Posted()
        return Posted(f"alertmanager {self.url}: HTTP {status}{_said(body)}", refused=status == 400)

    def silences(self, timeout: float = SILENCES_TIMEOUT) -> SilencesRead:
        """The silences of ``GET /api/v2/silences`` not expired, within ``timeout`` seconds."""
        url = self.url + SILENCES_PATH
        try:
            status, body = _request(url, None, timeout)
        except _Unanswered as exc:
            return SilencesRead(None, f"alertmanager {self.url}: {exc}")
        if status != 200:
            return SilencesRead(None, f"alertmanager {self.url}: HTTP {status}{_said(body)}")
        try:
            data = json.loads(body)
        except ValueError:
            return SilencesRead(None, f"alertmanager {self.url}: {SILENCES_PATH} is not JSON")
        return SilencesRead(parse_silences(data))


def alerts_url(base: str) -> str:
    """Where alerts are posted on the Alertmanager at ``base``."""
    return base.rstrip("/") + ALERTS_PATH


def is_alerts_url(url: str) -> bool:
    """Whether an outbox post goes to an Alertmanager (it is built there and then)."""
    return url.rstrip("/").endswith(ALERTS_PATH)


def base_url(url: str) -> str:
    """The base URL of an Alertmanager's ``/api/v2/alerts``."""
    return url.rstrip("/").removesuffix(ALERTS_PATH)


class _Unanswered(Exception):
    """No HTTP answer: the reason, one line."""


def _request(url: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    """GET (``body`` None) or POST JSON; the status and up to 64 KiB of the answer."""
    headers = {"User-Agent": "relman-alerts"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096)
    except urllib.error.URLError as exc:
        raise _Unanswered(_reason(exc.reason, timeout)) from exc
    except (OSError, ValueError, http.client.HTTPException) as exc:  # not HTTP there, too
        raise _Unanswered(_reason(exc, timeout)) from exc


def _reason(reason: object, timeout: float) -> str:
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, TimeoutError) or text == "timed out":
        return f"no answer within {timeout:g} s"
    if isinstance(reason, ConnectionRefusedError) or "Connection refused" in text:
        return "connection refused"
    return text


def _said(body: bytes) -> str:
    """``: what Alertmanager said`` (its error is a JSON string), or nothing."""
    text = body.decode("utf-8", "replace").strip()
    try:
        said = json.loads(text)
        text = said if isinstance(said, str) else text
    except ValueError:
        pass
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""

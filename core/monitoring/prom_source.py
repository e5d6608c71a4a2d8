"""Prometheus' HTTP API as the collector's source (docs/prometheus.md): the PromQL that
selects one environment's BentoML counters, the query over HTTP with a timeout, and its
answer read back into scrapes (core.monitoring.scrape's sums), one per target and scrape.

What is asked is the raw samples (a range selector, ``/api/v1/query``), not values
resampled by ``query_range``: each sample keeps the time Prometheus scraped it, so a
stretch Prometheus did not scrape is a gap, where ``query_range`` would repeat the last
value for five minutes (its lookback) and then count the whole gap in one step.
"""

from __future__ import annotations

import http.client
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

from core.config.model import PrometheusLabels
from core.errors import InfraError
from core.monitoring.scrape import (
    BUCKET,
    DOCS_PREFIX,
    IN_PROGRESS,
    INFRA_ENDPOINTS,
    REQUESTS,
    Sample,
    Scrape,
    http_get,
    summed,
)

UP = "up"  # Prometheus' own series per target: 1 when its scrape succeeded
TIMEOUT = 3.0  # seconds an answer may take: the collector's pass waits on it
# What one query may span: a catch-up is asked in such pieces (a few MB of JSON at most).
CHUNK_SECONDS = 300


class PrometheusError(InfraError):
    """Prometheus did not answer the query (down, slow, refused it, or answered nonsense);
    the message is one line naming its URL."""


class TargetKey(NamedTuple):
    """What tells the scraped targets of one environment apart: the release label's value
    (empty when the series has none), and Prometheus' own ``instance`` and ``job``."""

    release: str
    instance: str
    job: str

    def show(self) -> str:
        return f"instance={self.instance or '?'}, job={self.job or '?'}"


@dataclass
class TargetSamples:
    """The samples of one target, by the time Prometheus scraped them (ms)."""

    samples: dict[int, list[Sample]] = field(default_factory=dict)
    up: dict[int, float] = field(default_factory=dict)

    def scrapes(self) -> tuple[list[Scrape], list[int]]:
        """The target's scrapes, oldest first (``t`` in whole seconds), and the times (s)
        its scrape failed (``up`` 0). A time counts as scraped when ``up`` was 1 then (its
        samples are the API's, possibly none: an idle service), or, for a target whose
        ``up`` series is not selected by the labels, when it has samples; an incomplete sum
        (a NaN, a histogram without +Inf) is left out."""
        times = sorted(self.up) if self.up else sorted(self.samples)
        scrapes, failed = [], []
        for ms in times:
            if self.up and self.up[ms] < 1:
                failed.append(ms // 1000)
                continue
            scrape = summed(self.samples.get(ms, []), ms // 1000)
            if scrape.complete:
                scrapes.append(scrape)
        return scrapes, failed


def selector(labels: PrometheusLabels, service: str, env: str) -> str:
    """The series selector of one environment: the request counter, the in-progress gauge,
    the latency histogram's buckets and ``up``, of the service's API endpoints (BentoML's
    own are left out, by the same names core.monitoring.scrape leaves out; ``up`` has no
    endpoint and is kept)."""
    names = "|".join(re.escape(name) for name in (REQUESTS, IN_PROGRESS, BUCKET, UP))
    infra = "|".join(sorted(re.escape(e) for e in INFRA_ENDPOINTS))
    matchers = [
        f"__name__=~{_string(names)}",
        f"{labels.service}={_string(service)}",
        f"{labels.env}={_string(env)}",
        f"endpoint!~{_string(f'{infra}|{re.escape(DOCS_PREFIX)}.*')}",
    ]
    return "{" + ", ".join(matchers) + "}"


def samples_query(series: str, seconds: int) -> str:
    """The raw samples of ``series`` over the ``seconds`` before the query's time."""
    return f"{series}[{int(seconds)}s]"


def _string(value: str) -> str:
    """A PromQL string literal (Go's quoting, which JSON's is a subset of)."""
    return json.dumps(value)


class PromClient:
    """Prometheus' HTTP API at ``url`` (a base URL, maybe with a path prefix)."""

    def __init__(self, url: str, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusError(f"prometheus_url {url!r} is not an http(s) URL")
        self.url = url.rstrip("/")
        self.timeout = TIMEOUT if timeout is None else timeout
        self._prefix = parts.path.rstrip("/")

    def query(self, promql: str, at: float) -> list[dict[str, Any]]:
        """The ``result`` of an instant query at ``at`` (Unix seconds): a list of
        ``{"metric": {...}, "values" or "value": ...}``. PrometheusError (one line) when
        it cannot be had."""
        params = {"query": promql, "time": f"{at:.3f}", "timeout": f"{self.timeout:g}s"}
        body = self._get("/api/v1/query", params)
        try:
            answer = json.loads(body)
            data = answer["data"]
            result = data["result"]
            if not isinstance(result, list):
                raise TypeError("result is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} answered something else than its API's JSON "
                f"({_clip(str(exc))}); is prometheus_url its base URL?"
            ) from exc
        return result

    def _get(self, path: str, params: dict[str, str]) -> bytes:
        target = f"{self._prefix}{path}?{urlencode(params)}"
        try:
            status, reason, body = http_get(self.url, target, "application/json", self.timeout)
        except TimeoutError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url} did not answer within {self.timeout:g} s"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            line = " ".join(str(exc).split()) or type(exc).__name__
            raise PrometheusError(f"Prometheus at {self.url} cannot be reached: {line}") from exc
        if status != 200:
            raise PrometheusError(
                f"Prometheus at {self.url} answered {status} {reason}: {_error_of(body)}"
            )
        return body


def target_samples(
    result: Iterable[dict[str, Any]], release_label: str
) -> dict[TargetKey, TargetSamples]:
    """A range query's ``result`` (a matrix) by target: each series' samples filed under
    their scrape time, with its labels (``__name__`` as the name)."""
    found: dict[TargetKey, TargetSamples] = {}
    for series in result:
        metric = dict(series.get("metric") or {})
        name = metric.pop("__name__", "")
        key = TargetKey(
            metric.get(release_label, ""), metric.get("instance", ""), metric.get("job", "")
        )
        target = found.setdefault(key, TargetSamples())
        for stamp, text in series.get("values") or []:
            ms = round(float(stamp) * 1000)
            value = _number(text)
            if name == UP:
                target.up[ms] = value
            else:
                target.samples.setdefault(ms, []).append((name, metric, value))
    return found


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _error_of(body: bytes) -> str:
    """The ``error`` Prometheus' API puts in a failed answer, else the body's start."""
    try:
        answer = json.loads(body)
        return _clip(f"{answer.get('errorType', 'error')}: {answer['error']}")
    except (ValueError, KeyError, TypeError, AttributeError):
        return _clip(body.decode("utf-8", errors="replace")) or "no body"


def _clip(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."

"""One scrape of a BentoML instance's ``/metrics``: request, error and latency counters.

BentoML 1.4 exposes, per endpoint and HTTP code, the counter
``bentoml_service_request_total``, the gauge ``bentoml_service_request_in_progress`` (per
endpoint) and the histogram ``bentoml_service_request_duration_seconds_{bucket,sum,count}``
(``le`` buckets 0.005 ... 180, +Inf). A :class:`Scrape` sums them over the service's API
endpoints (health probes, ``/metrics`` and the docs are BentoML's own traffic) and over the
codes; errors are the requests answered outside 2xx. Counters are cumulative, as scraped:
the metric store takes the deltas.

The text is parsed with ``prometheus_client``'s parser, which raises on the first bad line
and drops what it had collected of the family in progress. So a text that does not parse
whole is parsed again line by line: every valid sample counts, every bad line becomes a
problem. A last line without its newline is a truncated answer and is left out.
"""

from __future__ import annotations

import http.client
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.errors import InfraError

__all__ = ["INFRA_ENDPOINTS", "Scrape", "fetch_metrics", "parse_scrape"]

REQUESTS = "bentoml_service_request_total"
IN_PROGRESS = "bentoml_service_request_in_progress"
BUCKET = "bentoml_service_request_duration_seconds_bucket"
# BentoML's own endpoints, not the service's API (and the docs: /docs, /docs.json, ...).
INFRA_ENDPOINTS = frozenset({"/readyz", "/livez", "/healthz", "/metrics"})
DOCS_PREFIX = "/docs"
# Problem lines kept per scrape; a text of garbage would otherwise make one per line.
MAX_PROBLEMS = 5


@dataclass(frozen=True)
class Scrape:
    """Cumulative counters of one instance at time ``t`` (Unix seconds)."""

    t: int
    requests: float
    errors: float
    in_progress: float
    # Cumulative request counts by ``le`` as BentoML writes it ("0.005", ..., "+Inf").
    buckets: dict[str, float]
    # The ``service_version`` label: the Bento's version (not relman's release id).
    release: str | None = None
    problems: list[str] = field(default_factory=list)
    # False when a line was bad or cut short: its counters may miss samples, so it must not
    # be taken for a counter reset (a restart) nor give deltas; keep it for the record only.
    complete: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "requests": self.requests,
            "errors": self.errors,
            "in_progress": self.in_progress,
            "buckets": dict(self.buckets),
            "release": self.release,
            "problems": list(self.problems),
            "complete": self.complete,
        }


def fetch_metrics(address: str, timeout: float = 2.0) -> str:
    """The text of ``GET http://ADDRESS/metrics``; InfraError (one line) when it fails."""
    url = address if "://" in address else f"http://{address}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InfraError(f"cannot scrape {address!r}: not a host:port address")
    where = f"{parts.scheme}://{parts.netloc}/metrics"
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request("GET", "/metrics", headers={"Accept": "text/plain"})
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise InfraError(f"scrape of {where} failed: {reason}") from exc
    finally:
        connection.close()
    if response.status != 200:
        raise InfraError(f"scrape of {where} answered {response.status} {response.reason}")
    return body.decode("utf-8", errors="replace")


def parse_scrape(text: str, t: int) -> Scrape:
    """Sum the BentoML request metrics in ``text`` (Prometheus text format) into a Scrape.

    Bad lines are skipped and reported in ``problems``; InfraError when nothing in a
    non-empty text is valid Prometheus text (an HTML page, a truncated first line, ...).
    """
    samples, problems, valid, bad = _samples(text)
    if bad and not valid:
        raise InfraError(f"/metrics is not Prometheus text: {problems[0]}")
    if not text.strip():
        problems.append("empty answer: no metrics at all")
    requests = errors = in_progress = 0.0
    buckets: dict[str, float] = {}
    releases: dict[str, float] = {}
    for name, labels, value in samples:
        if name.startswith("bentoml_service_") and (version := labels.get("service_version")):
            releases.setdefault(version, 0.0)
        if name not in (REQUESTS, IN_PROGRESS, BUCKET) or not _is_api(labels.get("endpoint")):
            continue
        if not math.isfinite(value):
            _add(problems, f"{name}{_show(labels)}: value {value} ignored")
            bad += 1
            continue
        if name == REQUESTS:
            requests += value
            if not _is_success(labels.get("http_response_code")):
                errors += value
            if version := labels.get("service_version"):
                releases[version] += value
        elif name == IN_PROGRESS:
            in_progress += value
        elif (le := labels.get("le")) is not None:
            buckets[le] = buckets.get(le, 0.0) + value
    if buckets and "+Inf" not in buckets:
        _add(problems, "latency histogram without its +Inf bucket")
        bad += 1
    if len(releases) > 1:
        _add(problems, f"several service versions in one scrape: {', '.join(sorted(releases))}")
    release = max(releases, key=lambda v: releases[v]) if releases else None
    return Scrape(
        t=t,
        requests=requests,
        errors=errors,
        in_progress=in_progress,
        buckets=dict(sorted(buckets.items(), key=lambda item: _le_order(item[0]))),
        release=release,
        problems=problems,
        complete=not bad,
    )


Sample = tuple[str, dict[str, str], float]


def _samples(text: str) -> tuple[list[Sample], list[str], int, int]:
    """(samples, problems, valid lines, bad lines) of a Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    problems: list[str] = []
    bad = 0
    if text and not text.endswith("\n"):
        # The exposition format ends every line with a newline: this one was cut short.
        cut = text.rfind("\n") + 1
        _add(problems, f"last line truncated, ignored: {_clip(text[cut:])}")
        bad += 1
        text = text[:cut]
    lines = [
        (number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    try:
        samples = [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
        return samples, problems, len(lines), bad
    except Exception:  # the parser raises ValueError, and more on odd input: go line by line
        pass
    samples = []
    failed = 0
    for number, line in lines:
        try:
            parsed = [
                (s.name, dict(s.labels), float(s.value))
                for family in text_string_to_metric_families(line + "\n")
                for s in family.samples
            ]
        except Exception:
            _add(problems, f"line {number} is not a Prometheus sample: {_clip(line)}")
            failed += 1
            continue
        samples.extend(parsed)
    return samples, problems, len(lines) - failed, bad + failed


def _is_api(endpoint: str | None) -> bool:
    if endpoint is None:
        return False
    return endpoint not in INFRA_ENDPOINTS and not endpoint.startswith(DOCS_PREFIX)


def _is_success(code: str | None) -> bool:
    # A sample without a code cannot be called an error; BentoML always sets one.
    return code is None or code.startswith("2")


def _le_order(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return math.inf


def _add(problems: list[str], line: str) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append(line)
    elif len(problems) == MAX_PROBLEMS:
        problems.append("more problems left out")


def _clip(text: str, width: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def _show(labels: dict[str, str]) -> str:
    keys = ("endpoint", "http_response_code", "le")
    shown = ",".join(f"{k}={labels[k]}" for k in keys if k in labels)
    return "{" + shown + "}"

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
whole is parsed again line by line, and what a bad line costs depends on where it is:

- outside the families relman sums (another library's metric, a stray line of garbage): the
  line is skipped, the scrape stays complete, and one problem line names what was skipped;
- a bad sample of the request counter, the in-progress gauge or the latency histogram, a
  histogram series without its ``+Inf`` bucket (cut mid-histogram): the scrape is
  incomplete, its counters may miss samples;
- a last line without its newline is a truncated answer: always left out, and the scrape is
  incomplete when the cut fell inside one of the three families, inside a metric name, or
  before one of them (the exposition format keeps each family's lines together: a cut after
  all three took none of their samples); an empty answer is incomplete too;
- an answer without a sample of the request counter or of the histogram (cut at a line end
  before them): BentoML counts its own probes, and relman's ``/readyz`` comes first, so a
  whole answer always has both.

An incomplete scrape is not stored (the counters are cumulative: the next complete scrape
loses nothing).
"""

from __future__ import annotations

import http.client
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from core.errors import InfraError

__all__ = [
    "BUCKET",
    "DOCS_PREFIX",
    "INFRA_ENDPOINTS",
    "IN_PROGRESS",
    "REQUESTS",
    "Sample",
    "Scrape",
    "fetch_metrics",
    "http_get",
    "parse_scrape",
    "summed",
]

REQUESTS = "bentoml_service_request_total"
IN_PROGRESS = "bentoml_service_request_in_progress"
HISTOGRAM = "bentoml_service_request_duration_seconds"
BUCKET = f"{HISTOGRAM}_bucket"
# BentoML's own endpoints, not the service's API (and the docs: /docs, /docs.json, ...).
INFRA_ENDPOINTS = frozenset({"/readyz", "/livez", "/healthz", "/metrics"})
DOCS_PREFIX = "/docs"
# One sample: its metric name, its labels, its value.
Sample = tuple[str, dict[str, str], float]
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
    # False when a needed sample was bad or cut off: its counters may miss samples, so it
    # must not be taken for a counter reset (a restart) nor give deltas: not stored.
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
    try:
        status, reason, body = http_get(url, "/metrics", "text/plain", timeout)
    except (OSError, http.client.HTTPException) as exc:
        line = " ".join(str(exc).split()) or type(exc).__name__
        raise InfraError(f"scrape of {where} failed: {line}") from exc
    if status != 200:
        raise InfraError(f"scrape of {where} answered {status} {reason}")
    return body.decode("utf-8", errors="replace")


def http_get(url: str, target: str, accept: str, timeout: float) -> tuple[int, str, bytes]:
    """``GET target`` (a path and query) of the host ``url`` names: (status, reason, body).
    OSError (TimeoutError when it took over ``timeout`` seconds) or HTTPException when no
    whole answer came."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", target, headers={"Accept": accept})
        response = connection.getresponse()
        return response.status, response.reason, response.read()
    finally:
        connection.close()


def parse_scrape(text: str, t: int) -> Scrape:
    """Sum the BentoML request metrics in ``text`` (Prometheus text format) into a Scrape.

    Bad lines are skipped and reported in ``problems``; a scrape whose needed families lost
    a sample is ``complete=False``. InfraError when nothing in a non-empty text is valid
    Prometheus text (an HTML page, a truncated first line, ...).
    """
    parsed = _parse(text)
    if parsed.bad and not parsed.valid:
        raise InfraError(f"/metrics is not Prometheus text: {parsed.first_bad}")
    damaged = parsed.damaged
    sums = _sum(parsed.samples, damaged)
    problems = list(damaged)
    if parsed.skipped:
        problems.insert(0, _skipped_line(parsed.skipped))
    if not text.strip():
        # Nothing at all, not even the families' TYPE lines: a zero here would read as a
        # restart, and the next scrape's whole counters as one minute's traffic.
        damaged.append("empty answer: no metrics at all")
        problems.append(damaged[-1])
    releases = sums.releases
    if len(releases) > 1:
        problems.append(f"several service versions in one scrape: {', '.join(sorted(releases))}")
    release = max(releases, key=lambda v: releases[v]) if releases else None
    return sums.scrape(t, release, problems, complete=not damaged)


def summed(samples: Iterable[Sample], t: int) -> Scrape:
    """One target's samples of one scrape time (as Prometheus stored them: name, labels,
    value) summed by the rules a /metrics text is: API endpoints only, errors outside 2xx.
    Incomplete when a value is not finite or a histogram series lacks its +Inf bucket."""
    damaged: list[str] = []
    sums = _sum(samples, damaged)
    return sums.scrape(t, None, list(damaged), complete=not damaged)


@dataclass
class _Sums:
    """The three families summed over the API endpoints and the codes."""

    requests: float = 0.0
    errors: float = 0.0
    in_progress: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)
    releases: dict[str, float] = field(default_factory=dict)  # service_version -> requests

    def scrape(self, t: int, release: str | None, problems: list[str], *, complete: bool) -> Scrape:
        return Scrape(
            t=t,
            requests=self.requests,
            errors=self.errors,
            in_progress=self.in_progress,
            buckets=dict(sorted(self.buckets.items(), key=lambda item: _le_order(item[0]))),
            release=release,
            problems=problems,
            complete=complete,
        )


def _sum(samples: Iterable[Sample], damaged: list[str]) -> _Sums:
    """The sums of ``samples``; what makes them incomplete is added to ``damaged``."""
    sums = _Sums()
    buckets, releases = sums.buckets, sums.releases
    series: dict[tuple[tuple[str, str], ...], set[str]] = {}  # histogram series -> its les
    for name, labels, value in samples:
        if name.startswith("bentoml_service_") and (version := labels.get("service_version")):
            releases.setdefault(version, 0.0)
        if name not in (REQUESTS, IN_PROGRESS, BUCKET) or not _is_api(labels.get("endpoint")):
            continue
        if not math.isfinite(value):
            _add(damaged, f"{name}{_show(labels)}: value {value} ignored")
            continue
        if name == REQUESTS:
            sums.requests += value
            if not _is_success(labels.get("http_response_code")):
                sums.errors += value
            if version := labels.get("service_version"):
                releases[version] += value
        elif name == IN_PROGRESS:
            sums.in_progress += value
        elif (le := labels.get("le")) is not None:
            buckets[le] = buckets.get(le, 0.0) + value
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            series.setdefault(key, set()).add(le)
    for key, les in series.items():
        if "+Inf" not in les:
            _add(damaged, f"latency histogram {_show(dict(key))} without its +Inf bucket")
    return sums


# The families relman sums, by the names their lines start with (TYPE/HELP or samples).
_FAMILY_OF = {
    REQUESTS: REQUESTS,
    REQUESTS.removesuffix("_total"): REQUESTS,
    IN_PROGRESS: IN_PROGRESS,
    HISTOGRAM: HISTOGRAM,
    **{f"{HISTOGRAM}{suffix}": HISTOGRAM for suffix in ("_bucket", "_sum", "_count", "_created")},
}
NEEDED = (REQUESTS, IN_PROGRESS, HISTOGRAM)
_NAME = re.compile(r"\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
# A sample line's name that ended (labels or the value follow): the line was not cut in it.
_WHOLE_NAME = re.compile(r"\s*[a-zA-Z_:][a-zA-Z0-9_:]*[{\s]")
_COMMENT = re.compile(r"\s*#\s*(?:HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)")


@dataclass
class _Parsed:
    """What a text holds: the valid samples and what went wrong where."""

    samples: list[Sample] = field(default_factory=list)
    # Bad lines outside the needed families: (line number, text), skipped harmlessly.
    skipped: list[tuple[int, str]] = field(default_factory=list)
    # What makes the scrape incomplete, one line each (bounded).
    damaged: list[str] = field(default_factory=list)
    valid: int = 0  # sample lines that parsed
    bad: int = 0  # lines that did not (the cut last line included)
    first_bad: str = ""  # the first of them, as a problem line names it

    def failed(self, number: int, line: str) -> None:
        self.bad += 1
        if not self.first_bad:
            self.first_bad = f"line {number}: {_clip(line)}"


def _family(line: str) -> str | None:
    """The needed family a line (sample, HELP or TYPE) belongs to, if any."""
    match = _COMMENT.match(line) or (None if line.lstrip().startswith("#") else _NAME.match(line))
    return _FAMILY_OF.get(match.group(1)) if match else None


def _parse(text: str) -> _Parsed:
    from prometheus_client.parser import text_string_to_metric_families

    parsed = _Parsed()
    cut: tuple[int, str] | None = None
    if text and not text.endswith("\n"):
        # The exposition format ends every line with a newline: this one was cut short.
        at = text.rfind("\n") + 1
        cut = (text.count("\n") + 1, text[at:])
        text = text[:at]
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    # Samples, and the HELP/TYPE lines the parser checks; other comments are free text.
    lines = [(n, line) for n, line in numbered if not line.lstrip().startswith("#")]
    comments = [(n, line) for n, line in numbered if _COMMENT.match(line)]
    present = {family for _, line in lines + comments if (family := _family(line))}
    try:
        parsed.samples = [
            (s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
        parsed.valid = len(lines)
    except Exception:  # the parser raises ValueError, and more on odd input: go line by line
        for number, line in sorted(lines + comments):
            try:
                samples = [
                    (s.name, dict(s.labels), float(s.value))
                    for family in text_string_to_metric_families(line + "\n")
                    for s in family.samples
                ]
            except Exception:
                parsed.failed(number, line)
                family = None if line.lstrip().startswith("#") else _family(line)
                if family is None:
                    parsed.skipped.append((number, line))
                else:
                    _add(parsed.damaged, f"line {number} of {family} is malformed: {_clip(line)}")
                continue
            parsed.samples.extend(samples)
            parsed.valid += not line.lstrip().startswith("#")
    sampled = {family for name, _, _ in parsed.samples if (family := _FAMILY_OF.get(name))}
    if cut is not None:
        number, line = cut
        parsed.failed(number, line)
        family = _family(line)
        missing = [name for name in NEEDED if name not in present]
        if family is not None:
            _add(parsed.damaged, f"answer cut short inside {family}: {_clip(line)}")
        elif missing:
            # The families after the cut are not in the text: those missing may be there.
            _add(parsed.damaged, f"answer cut short before {', '.join(missing)}: {_clip(line)}")
        elif not line.lstrip().startswith("#") and not _WHOLE_NAME.match(line):
            # Cut inside the name itself: which family it was cannot be told.
            _add(parsed.damaged, f"answer cut short inside a metric name: {_clip(line)}")
        else:
            parsed.skipped.append((number, f"cut short: {line}"))
    # BentoML counts its own probes too (relman's /readyz comes before any scrape), so a
    # whole answer always holds samples of both counters: without them it was cut short,
    # and its zeros would read as a restart.
    lacking = [name for name in (REQUESTS, HISTOGRAM) if name not in sampled]
    if text.strip() and lacking and not parsed.damaged:
        _add(parsed.damaged, f"no samples of {' and '.join(lacking)}: the answer looks cut short")
    return parsed


def _skipped_line(skipped: list[tuple[int, str]]) -> str:
    """One line naming the bad lines skipped (the first few, and how many more)."""
    shown = "; ".join(f"line {n}: {_clip(line, 60)}" for n, line in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    count = f"{len(skipped)} malformed line{'s' if len(skipped) > 1 else ''}"
    return f"skipped {count} outside the metrics relman reads ({shown}{more})"


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

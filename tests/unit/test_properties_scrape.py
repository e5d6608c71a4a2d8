"""A /metrics answer cut short, by property: wherever the cut falls, the scrape gives the
counters of the whole answer or says it is incomplete (or is refused): never other numbers
taken for cumulative counters, which the metric store would turn into deltas.

The answers are built as BentoML 1.4 writes them (tests/core/test_scrape.py holds a real
one): the latency histogram, the in-progress gauge, the request counter, in that order, with
other libraries' families before, between and after.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InfraError
from core.monitoring.scrape import (
    INFRA_ENDPOINTS,
    REQUESTS,
    Scrape,
    fetch_metrics,
    parse_scrape,
)

FAST = settings(max_examples=60, deadline=None, database=None)

LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")
LES += ("30.0", "60.0", "120.0", "180.0", "+Inf")
HISTOGRAM = "bentoml_service_request_duration_seconds"
ENDPOINTS = ("/predict", "/classify", "/livez", "/metrics", "/docs.json")
CODES = ("200", "201", "400", "404", "500", "503")
VERSIONS = ("dcbdb3ff9ac7", "0a1b2c3d4e5f")
# Families of other libraries, as prometheus_client writes them (one HELP in French, so
# that a cut can fall inside a character of two bytes).
OTHERS = (
    "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
    "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.53\n",
    "# HELP python_info Python platform information\n# TYPE python_info gauge\n"
    'python_info{implementation="CPython",major="3",minor="11"} 1.0\n',
    "# HELP app_queue_depth Requêtes en attente\n# TYPE app_queue_depth gauge\n"
    'app_queue_depth{queue="a"} 3.0\napp_queue_depth{queue="b"} 0.0\n',
    "# HELP bentoml_service_last_request_timestamp_seconds Timestamp of the last request\n"
    "# TYPE bentoml_service_last_request_timestamp_seconds gauge\n"
    'bentoml_service_last_request_timestamp_seconds{pid="31447",service_version="dcbdb3ff9ac7"}'
    " 1.79e+09\n",
)


@dataclass(frozen=True)
class Series:
    endpoint: str
    code: str
    version: str
    buckets: tuple[int, ...]  # cumulative counts, by LES
    in_progress: int


def labels(series: Series, *extra: str) -> str:
    tail = f'runner_name="Iris",service_name="iris",service_version="{series.version}"'
    return ",".join([f'endpoint="{series.endpoint}"', *extra, tail])


def answer(series: list[Series], others: list[int], between: list[int]) -> str:
    """The text BentoML would answer for ``series``, other families at the given places."""
    code = lambda s: f'http_response_code="{s.code}"'  # noqa: E731
    histogram = [
        f"# HELP {HISTOGRAM} runner RPC duration in seconds",
        f"# TYPE {HISTOGRAM} histogram",
    ]
    for s in series:
        histogram.append(f"{HISTOGRAM}_sum{{{labels(s, code(s))}}} {s.buckets[-1] * 0.0123!r}")
        for le, n in zip(LES, s.buckets, strict=True):
            bucket = labels(s, code(s), f'le="{le}"')
            histogram.append(f"{HISTOGRAM}_bucket{{{bucket}}} {float(n)!r}")
        histogram.append(f"{HISTOGRAM}_count{{{labels(s, code(s))}}} {float(s.buckets[-1])!r}")
    gauge = "bentoml_service_request_in_progress"
    progress = [
        f"# HELP {gauge} Total number of runner RPC in progress now",
        f"# TYPE {gauge} gauge",
    ]
    seen = set()
    for s in series:
        if s.endpoint not in seen:  # the gauge has no code label: one per endpoint
            seen.add(s.endpoint)
            progress.append(f"{gauge}{{{labels(s)}}} {float(s.in_progress)!r}")
    counter = [f"# HELP {REQUESTS} Total number of runner RPC", f"# TYPE {REQUESTS} counter"]
    counter += [f"{REQUESTS}{{{labels(s, code(s))}}} {float(s.buckets[-1])!r}" for s in series]
    parts = ["".join(OTHERS[i] for i in others[: len(others) // 2])]
    for family, gap in zip((histogram, progress, counter), [*between, -1], strict=True):
        parts.append("\n".join(family) + "\n")
        parts.append(OTHERS[gap] if gap >= 0 else "")
    parts.append("".join(OTHERS[i] for i in others[len(others) // 2 :]))
    return "".join(parts)


def expected(series: list[Series]) -> tuple[float, float, float, dict[str, float]]:
    """(requests, errors, in progress, buckets) of the service's own API, as relman sums them."""
    api = [
        s
        for s in series
        if s.endpoint not in INFRA_ENDPOINTS and not s.endpoint.startswith("/docs")
    ]
    requests = sum(s.buckets[-1] for s in api)
    errors = sum(s.buckets[-1] for s in api if not s.code.startswith("2"))
    progress: dict[str, int] = {}
    for s in api:  # the gauge's one sample per endpoint: the first series'
        progress.setdefault(s.endpoint, s.in_progress)
    buckets = {le: float(sum(s.buckets[i] for s in api)) for i, le in enumerate(LES)} if api else {}
    return float(requests), float(errors), float(sum(progress.values())), buckets


def counters(scrape: Scrape) -> tuple[float, float, float, dict[str, float], str | None]:
    return scrape.requests, scrape.errors, scrape.in_progress, scrape.buckets, scrape.release


def one_series(endpoint: str) -> st.SearchStrategy[Series]:
    steps = st.lists(st.integers(0, 5), min_size=len(LES), max_size=len(LES))
    return st.builds(
        lambda code, version, steps, busy: Series(
            endpoint, code, version, tuple(sum(steps[: i + 1]) for i in range(len(LES))), busy
        ),
        st.sampled_from(CODES),
        st.sampled_from(VERSIONS),
        steps,
        st.integers(0, 3),
    )


@st.composite
def answers(draw: st.DrawFn) -> tuple[str, list[Series]]:
    # relman's /readyz reaches every instance before its first scrape: always a series.
    endpoints = ["/readyz", *draw(st.lists(st.sampled_from(ENDPOINTS), unique=True, max_size=3))]
    series = [draw(one_series(e)) for e in endpoints for _ in range(draw(st.integers(1, 2)))]
    series = list({(s.endpoint, s.code): s for s in series}.values())  # one per (endpoint, code)
    series = draw(st.permutations(series))
    others = draw(st.lists(st.integers(0, len(OTHERS) - 1), max_size=4))
    between = draw(st.lists(st.integers(-1, len(OTHERS) - 1), min_size=2, max_size=2))
    return answer(series, others, between), series


def between_two_counter_samples(body: bytes, cut: int) -> bool:
    """True for a cut at a line end between two samples of the request counter."""
    if not cut or body[cut - 1] != ord("\n"):
        return False
    sample = f"{REQUESTS}{{".encode()
    before = body[: cut - 1].rsplit(b"\n", 1)[-1]
    after = body[cut:].split(b"\n", 1)[0]
    return before.startswith(sample) and after.startswith(sample)


@FAST
@given(whole=answers(), data=st.data())
def test_a_cut_answer_gives_the_whole_counters_or_is_incomplete(
    whole: tuple[str, list[Series]], data: st.DataObject
) -> None:
    text, series = whole
    full = parse_scrape(text, 0)
    assert full.complete, full.problems
    assert counters(full)[:4] == expected(series)
    body = text.encode()
    # Anywhere, and more often where a cut is hard to see: near a line end, and in the
    # request counter, the last family relman sums (a cut before it lacks its samples).
    ends = [at + 1 for at, byte in enumerate(body) if byte == ord("\n")]
    counter = body.index(f"# HELP {REQUESTS} ".encode())
    near_an_end = st.builds(
        lambda end, shift: max(0, min(len(body), end + shift)),
        st.sampled_from(ends) | st.sampled_from([end for end in ends if end > counter]),
        st.integers(-3, 2),
    )
    cuts = st.integers(0, len(body)) | st.integers(counter, len(body)) | near_an_end
    for cut in data.draw(st.lists(cuts, min_size=20, max_size=20), label="cuts"):
        # As fetch_metrics decodes what it received: a cut inside a character is replaced.
        partial = body[:cut].decode("utf-8", errors="replace")
        try:
            scrape = parse_scrape(partial, 0)
        except InfraError:
            continue  # refused outright: nothing stored either
        if not scrape.complete:
            continue
        if between_two_counter_samples(body, cut):
            # The text is whole as far as Prometheus text can tell (it has no end mark):
            # HTTP's own framing catches this cut (see the next test). Samples are missing
            # from the sums, none is added or changed.
            assert scrape.requests <= full.requests and scrape.errors <= full.errors
            assert (scrape.buckets, scrape.in_progress) == (full.buckets, full.in_progress)
            continue
        assert counters(scrape) == counters(full), (
            f"cut at byte {cut} of {len(body)}: {partial[-80:]!r}"
        )


def test_an_answer_shorter_than_its_content_length_is_refused_by_the_fetch() -> None:
    """The cut the text cannot show (at a line end inside the request counter) never
    reaches parse_scrape over HTTP: an answer shorter than its Content-Length is an error."""
    listener = socket.create_server(("127.0.0.1", 0))
    body = f'{REQUESTS}{{endpoint="/predict"}} 1.0\n'.encode()

    def serve_one() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body) * 2}\r\n\r\n"
            connection.sendall(head.encode() + body)  # then the connection closes

    server = threading.Thread(target=serve_one, daemon=True)
    server.start()
    try:
        with pytest.raises(InfraError, match=r"scrape of .* failed"):
            fetch_metrics(f"127.0.0.1:{listener.getsockname()[1]}", timeout=30)
    finally:
        server.join(timeout=30)
        listener.close()


def test_the_expected_sums_are_not_trivial() -> None:
    """The property compares real sums: API traffic counts, BentoML's own does not."""
    s = Series("/predict", "500", VERSIONS[0], tuple([1] * len(LES)), 2)
    text = answer(
        [s, Series("/readyz", "200", VERSIONS[0], tuple([1] * len(LES)), 0)], [], [-1, -1]
    )
    assert (
        counters(parse_scrape(text, 0))[:4]
        == expected([s])
        == (1.0, 1.0, 2.0, dict.fromkeys(LES, 1.0))
    )

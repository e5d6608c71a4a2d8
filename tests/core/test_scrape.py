"""Scraping BentoML's /metrics: summing API endpoints, errors, buckets; bad and cut text."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import InfraError
from core.monitoring.scrape import fetch_metrics, parse_scrape

LES = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0")
LES += ("30.0", "60.0", "120.0", "180.0", "+Inf")
TAIL = 'runner_name="IrisClassifier",service_name="iris_classifier",service_version="dcbdb3ff9ac7"'


def histogram(endpoint: str, code: str, counts: list[float], total: float) -> list[str]:
    """The lines BentoML 1.4 writes for one (endpoint, code) of the duration histogram."""
    labels = f'endpoint="{endpoint}",http_response_code="{code}"'
    name = "bentoml_service_request_duration_seconds"
    lines = [f"{name}_sum{{{labels},{TAIL}}} {total}"]
    for le, n in zip(LES, counts, strict=True):
        lines.append(f'{name}_bucket{{{labels},le="{le}",{TAIL}}} {n}')
    lines.append(f"{name}_count{{{labels},{TAIL}}} {counts[-1]}")
    return lines


def cumulative(first_bucket: int, n: float) -> list[float]:
    return [0.0] * first_bucket + [n] * (len(LES) - first_bucket)


# What a BentoML 1.4 iris service answered after one /readyz, one good and one bad /predict
# (captured from `bentoml serve`, label order and number format included).
REAL = "\n".join(
    [
        "# HELP bentoml_service_request_duration_seconds runner RPC duration in seconds",
        "# TYPE bentoml_service_request_duration_seconds histogram",
        *histogram("/readyz", "200", cumulative(0, 1.0), 0.0030085809994488955),
        *histogram("/predict", "200", cumulative(3, 1.0), 0.030921811000553134),
        *histogram("/predict", "400", cumulative(1, 1.0), 0.007931995000035386),
        "# HELP bentoml_service_request_in_progress Total number of runner RPC in progress now",
        "# TYPE bentoml_service_request_in_progress gauge",
        f'bentoml_service_request_in_progress{{endpoint="/readyz",{TAIL}}} 0.0',
        f'bentoml_service_request_in_progress{{endpoint="/predict",{TAIL}}} 1.0',
        "# HELP bentoml_service_last_request_timestamp_seconds Timestamp of the last request",
        "# TYPE bentoml_service_last_request_timestamp_seconds gauge",
        f'bentoml_service_last_request_timestamp_seconds{{pid="31447",{TAIL}}} 1.79e+09',
        "# HELP bentoml_service_request_total Total number of runner RPC",
        "# TYPE bentoml_service_request_total counter",
        *(
            f'bentoml_service_request_total{{endpoint="{e}",http_response_code="{c}",{TAIL}}} {n}'
            for e, c, n in [
                ("/predict", "200", "1.0"),
                ("/predict", "500", "0.0"),
                ("/readyz", "200", "1.0"),
                ("/predict", "400", "1.0"),
                ("/docs.json", "200", "2.0"),
                ("/metrics", "200", "7.0"),
            ]
        ),
    ]
)
REAL += "\n"
# The TYPE lines of the families relman sums, for texts made of one family's samples.
HEADERS = (
    "# TYPE bentoml_service_request_duration_seconds histogram\n"
    "# TYPE bentoml_service_request_in_progress gauge\n"
    "# TYPE bentoml_service_request_total counter\n"
)


def test_real_text_sums_api_endpoints_only() -> None:
    scrape = parse_scrape(REAL, 1_790_000_000)
    assert scrape.t == 1_790_000_000
    assert scrape.requests == 2.0  # /predict 200 + 400; not /readyz, /docs.json, /metrics
    assert scrape.errors == 1.0  # the 400
    assert scrape.in_progress == 1.0
    assert scrape.release == "dcbdb3ff9ac7"
    assert list(scrape.buckets) == list(LES)
    assert scrape.buckets["0.005"] == 0.0
    assert scrape.buckets["0.01"] == 1.0  # the 400, from its second bucket on
    assert scrape.buckets["0.05"] == 2.0
    assert scrape.buckets["+Inf"] == 2.0
    assert scrape.problems == []
    assert scrape.complete


def test_server_errors_count_as_errors_and_many_endpoints_add_up() -> None:
    text = HEADERS + "".join(
        f'bentoml_service_request_total{{endpoint="{e}",http_response_code="{c}",{TAIL}}} {n}\n'
        for e, c, n in [("/a", "200", 5), ("/b", "201", 1), ("/b", "503", 2), ("/a", "500", 3)]
    )
    text += "\n".join(histogram("/readyz", "200", cumulative(0, 1.0), 0.003)) + "\n"
    scrape = parse_scrape(text, 0)
    assert (scrape.requests, scrape.errors) == (11.0, 5.0)
    assert scrape.buckets == {}  # /readyz is BentoML's own traffic
    assert scrape.complete


def test_an_answer_without_samples_of_the_counters_is_incomplete() -> None:
    """relman's /readyz reaches an instance before any scrape, and BentoML counts it: an
    answer with no request or latency sample was cut, and its zeros are not a restart."""
    text = "# HELP bentoml_service_request_total x\n# TYPE bentoml_service_request_total counter\n"
    scrape = parse_scrape(text, 5)
    assert (scrape.requests, scrape.errors, scrape.in_progress, scrape.buckets) == (0, 0, 0, {})
    assert scrape.problems == [
        "no samples of bentoml_service_request_total and "
        "bentoml_service_request_duration_seconds: the answer looks cut short"
    ]
    assert not scrape.complete


def test_a_cut_inside_a_needed_metric_name_is_incomplete() -> None:
    start = REAL.index("bentoml_service_request_total{")
    scrape = parse_scrape(REAL[: start + 19], 0)  # "bentoml_service_req"
    assert scrape.problems == ["answer cut short inside a metric name: bentoml_service_req"]
    assert not scrape.complete


def test_a_cut_at_the_line_end_after_a_type_line_is_incomplete() -> None:
    end = REAL.index("# TYPE bentoml_service_request_total counter\n")
    scrape = parse_scrape(REAL[: end + len("# TYPE bentoml_service_request_total counter\n")], 0)
    assert scrape.requests == 0.0
    assert not scrape.complete


# -------------------------------------------------- bad lines: skipped, or the scrape is unsure


def test_a_garbage_line_is_skipped_named_and_the_scrape_stays_complete() -> None:
    lines = REAL.splitlines(keepends=True)
    lines.insert(5, "this is { not prometheus\n")
    scrape = parse_scrape("".join(lines), 0)
    assert scrape.to_dict() == {**parse_scrape(REAL, 0).to_dict(), "problems": scrape.problems}
    assert scrape.problems == [
        "skipped 1 malformed line outside the metrics relman reads "
        "(line 6: this is { not prometheus)"
    ]
    assert scrape.complete  # stored: every sample relman sums was there


def test_a_malformed_sample_of_another_family_is_skipped() -> None:
    bad = f'bentoml_service_last_request_timestamp_seconds{{pid="31447",{TAIL}}} soon'
    text = REAL.replace(
        f'bentoml_service_last_request_timestamp_seconds{{pid="31447",{TAIL}}} 1.79e+09', bad
    )
    assert bad in text
    scrape = parse_scrape(text + "# TYPE bentoml_x nonsense\n", 0)
    assert (scrape.requests, scrape.errors, scrape.in_progress) == (2.0, 1.0, 1.0)
    assert scrape.buckets["+Inf"] == 2.0
    [line] = scrape.problems
    assert line.startswith("skipped 2 malformed lines outside the metrics relman reads (line ")
    assert "bentoml_service_last_request_timestamp_seconds{" in line
    assert line.endswith("; line 72: # TYPE bentoml_x nonsense)")
    assert scrape.complete


def test_a_malformed_sample_of_the_request_counter_makes_the_scrape_incomplete() -> None:
    good = (
        f'bentoml_service_request_total{{endpoint="/predict",http_response_code="200",{TAIL}}} 1.0'
    )
    assert good in REAL
    number = REAL[: REAL.index(good)].count("\n") + 1
    scrape = parse_scrape(REAL.replace(good, good[:-4] + " one"), 0)
    assert scrape.problems == [
        f"line {number} of bentoml_service_request_total is malformed: {good[:77]}..."
    ]
    assert scrape.requests == 1.0  # the other /predict sample: a sum missing one: not stored
    assert not scrape.complete


def test_a_nan_in_a_needed_family_makes_the_scrape_incomplete() -> None:
    text = REAL + 'bentoml_service_request_total{endpoint="/x",http_response_code="200"} NaN\n'
    scrape = parse_scrape(text, 0)
    assert scrape.requests == 2.0
    assert scrape.problems == [
        "bentoml_service_request_total{endpoint=/x,http_response_code=200}: value nan ignored"
    ]
    assert not scrape.complete


def test_many_bad_lines_make_one_problem_line() -> None:
    text = REAL + "".join(f"bad line {i} {{\n" for i in range(40))
    scrape = parse_scrape(text, 0)
    assert scrape.requests == 2.0 and scrape.complete
    first = REAL.count("\n") + 1
    assert scrape.problems == [
        "skipped 40 malformed lines outside the metrics relman reads (line "
        f"{first}: bad line 0 {{; line {first + 1}: bad line 1 {{; line {first + 2}: bad line 2 "
        "{; and 37 more)"
    ]


# --------------------------------------------------------------- truncated answers


def test_cut_inside_a_histogram_line_is_incomplete() -> None:
    # prometheus_client raises on a line cut inside its labels, losing the whole family.
    cut = REAL.index('le="0.05"', REAL.index('"/predict"')) + 4
    scrape = parse_scrape(REAL[:cut], 0)
    assert scrape.requests == 0.0  # request_total comes later in the text
    assert scrape.buckets["0.025"] == 0.0 and "+Inf" not in scrape.buckets
    assert scrape.problems[0].startswith(
        "answer cut short inside bentoml_service_request_duration_seconds: "
        'bentoml_service_request_duration_seconds_bucket{endpoint="/predict",'
    )
    assert not scrape.complete


def test_cut_at_a_line_end_inside_a_histogram_is_incomplete() -> None:
    # Whole lines only, so the parser is happy: the series without +Inf gives it away.
    end = REAL.index('le="0.05"', REAL.index('"/predict"'))
    text = REAL[: REAL.index("\n", end) + 1]
    scrape = parse_scrape(text, 0)
    assert (
        "latency histogram {endpoint=/predict,http_response_code=200} without its +Inf "
        "bucket" in scrape.problems
    )
    assert not scrape.complete


def test_cut_at_a_line_end_before_the_request_counter_is_incomplete() -> None:
    text = REAL[: REAL.index("# HELP bentoml_service_request_total")]
    scrape = parse_scrape(text, 0)
    assert scrape.requests == 0.0 and scrape.buckets["+Inf"] == 2.0
    assert scrape.problems == [
        "no samples of bentoml_service_request_total: the answer looks cut short"
    ]
    assert not scrape.complete


def test_cut_after_a_value_is_also_left_out() -> None:
    # "... 1.0" cut to "... 1" would parse: a line without its newline is never trusted.
    text = REAL.rstrip("\n")[:-2]
    scrape = parse_scrape(text, 0)
    assert len(scrape.problems) == 1
    assert scrape.problems[0].startswith(
        "answer cut short inside bentoml_service_request_total: "
        'bentoml_service_request_total{endpoint="/metrics",'
    )
    assert scrape.requests == 2.0 and not scrape.complete


def test_cut_in_a_family_after_the_needed_ones_loses_nothing() -> None:
    text = REAL + "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5"
    scrape = parse_scrape(text, 0)
    assert (scrape.requests, scrape.errors, scrape.buckets["+Inf"]) == (2.0, 1.0, 2.0)
    assert scrape.problems == [
        "skipped 1 malformed line outside the metrics relman reads "
        f"(line {REAL.count(chr(10)) + 2}: cut short: process_cpu_seconds_total 12.5)"
    ]
    assert scrape.complete


def test_cut_before_the_needed_families_is_incomplete() -> None:
    text = "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nproc"
    scrape = parse_scrape(text, 0)
    assert scrape.problems == [
        "answer cut short before bentoml_service_request_total, "
        "bentoml_service_request_in_progress, bentoml_service_request_duration_seconds: proc"
    ]
    assert not scrape.complete


@pytest.mark.parametrize(
    "text",
    ["<html><body>Not found</body></html>\n", "\x00\x01\x02", 'cut{endpoint="/pre', "{}\n[]\n"],
)
def test_nothing_valid_is_an_infra_error(text: str) -> None:
    with pytest.raises(InfraError) as caught:
        parse_scrape(text, 0)
    assert str(caught.value).startswith("/metrics is not Prometheus text: ")
    assert "\n" not in str(caught.value)


def test_empty_answer_is_zero_with_a_problem() -> None:
    scrape = parse_scrape("", 0)
    assert scrape.requests == 0.0
    assert scrape.problems == ["empty answer: no metrics at all"]
    assert not scrape.complete  # zeros would read as a restart


# ---------------------------------------------------------------- over HTTP


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            status = getattr(self.server, "status", 200)
            body = REAL.encode() if status == 200 else b"oops"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_fetch_and_parse_over_http(server: ThreadingHTTPServer) -> None:
    address = f"127.0.0.1:{server.server_port}"
    text = fetch_metrics(address)
    assert text == REAL
    assert parse_scrape(text, 0).requests == 2.0
    assert fetch_metrics(f"http://{address}", timeout=1.0) == REAL


def test_non_200_is_an_infra_error(server: ThreadingHTTPServer) -> None:
    server.status = 503  # type: ignore[attr-defined]
    with pytest.raises(InfraError, match=r"/metrics answered 503 Service Unavailable$"):
        fetch_metrics(f"127.0.0.1:{server.server_port}")


def test_nothing_listening_is_an_infra_error() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = httpd.server_port
    httpd.server_close()  # the port is free again, nothing answers there
    with pytest.raises(InfraError) as caught:
        fetch_metrics(f"127.0.0.1:{port}", timeout=1.0)
    message = str(caught.value)
    assert message.startswith(f"scrape of http://127.0.0.1:{port}/metrics failed: ")
    assert "\n" not in message


def test_a_server_that_never_answers_times_out() -> None:
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection, never answers
        port = listener.getsockname()[1]
        with pytest.raises(InfraError, match="timed out"):
            fetch_metrics(f"127.0.0.1:{port}", timeout=0.2)


def test_a_bad_address_is_an_infra_error() -> None:
    with pytest.raises(InfraError, match="not a host:port address"):
        fetch_metrics("ftp://x/")

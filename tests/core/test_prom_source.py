"""Prometheus' HTTP API as the collector reads it (core/monitoring/prom_source.py), against
the fake Prometheus of tests/fake_prometheus.py: the PromQL sent (URL-encoded, whole),
its answer read back into one scrape per target and time, and each way a query fails as
one line naming the URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from core.config.model import PrometheusLabels
from core.monitoring.prom_source import (
    PromClient,
    PrometheusError,
    TargetKey,
    samples_query,
    selector,
    target_samples,
)
from tests.core.test_collector import FakeBento
from tests.fake_prometheus import FakePrometheus

LABELS = PrometheusLabels()
TARGET = {"service": "iris", "env": "dev", "service_version": "a1b2c3d4e5f6"}


@pytest.fixture
def prom() -> Iterator[FakePrometheus]:
    fake = FakePrometheus().start()
    try:
        yield fake
    finally:
        if fake.hold is not None:
            fake.hold.set()
        fake.stop()


def _bento(requests: int, seconds: float = 0.01) -> str:
    """A /metrics text of ``requests`` to /predict, and BentoML's own probes."""
    bento = FakeBento()
    bento.serve(requests, seconds)
    probes = (
        'bentoml_service_request_total{endpoint="/readyz",http_response_code="200",'
        'service_name="iris",service_version="a1b2c3d4e5f6"} 40.0\n'
    )
    return bento.text() + probes


def test_the_query_is_url_encoded_whole_and_selects_the_environments_api_series(
    prom: FakePrometheus,
) -> None:
    prom.scrape(100.0, _bento(6), **TARGET)
    prom.scrape(100.0, _bento(9), **{**TARGET, "env": "prod"})
    client = PromClient(prom.url)
    query = samples_query(selector(LABELS, "iris", "dev"), 300)
    result = client.query(query, 101.0)

    # what Prometheus received is the PromQL itself: the [300s], the braces, the quotes
    [params] = prom.queries
    assert params["query"] == [query]
    assert query.endswith("[300s]") and 'env="dev"' in query
    assert params["time"] == ["101.000"]
    names = {series["metric"]["__name__"] for series in result}
    assert names == {
        "bentoml_service_request_total",
        "bentoml_service_request_in_progress",
        "bentoml_service_request_duration_seconds_bucket",
        "up",
    }
    # BentoML's own endpoints are not asked for, nor another environment's series
    assert all(s["metric"].get("endpoint", "/predict") == "/predict" for s in result)
    assert {s["metric"]["env"] for s in result} == {"dev"}


def test_label_values_are_quoted_as_promql_strings() -> None:
    labels = PrometheusLabels(service="app", env="stage", release="rel")
    text = selector(labels, 'we"ird\\name', "dev")
    assert 'app="we\\"ird\\\\name"' in text
    assert 'stage="dev"' in text


def test_one_scrape_per_target_and_time_summed_as_a_metrics_text_is(
    prom: FakePrometheus,
) -> None:
    prom.scrape(100.0, _bento(6), **TARGET)
    prom.scrape(105.0, _bento(10), **TARGET)
    prom.scrape(110.0, "", up=0, **TARGET)  # a failed scrape: up 0, no samples
    query = samples_query(selector(LABELS, "iris", "dev"), 60)
    found = target_samples(PromClient(prom.url).query(query, 111.0), LABELS.release)

    key = TargetKey("a1b2c3d4e5f6", "127.0.0.1:9999", "relman")
    assert list(found) == [key]
    scrapes, failed = found[key].scrapes()
    assert [(s.t, s.requests, s.errors) for s in scrapes] == [(100, 6.0, 0.0), (105, 10.0, 0.0)]
    assert scrapes[1].buckets["0.01"] == 10.0 and scrapes[1].buckets["+Inf"] == 10.0
    assert scrapes[0].buckets["0.005"] == 0.0
    assert failed == [110]


def test_a_prometheus_that_does_not_answer_is_one_line_naming_it() -> None:
    fake = FakePrometheus().start()
    url = fake.url
    fake.stop()
    with pytest.raises(PrometheusError) as caught:
        PromClient(url).query("up[5s]", 1.0)
    assert str(caught.value).startswith(f"Prometheus at {url} cannot be reached: ")
    assert "\n" not in str(caught.value)


def test_a_slow_prometheus_times_out_with_one_line(prom: FakePrometheus) -> None:
    prom.hold = threading.Event()
    with pytest.raises(PrometheusError) as caught:
        PromClient(prom.url, timeout=0.2).query("up[5s]", 1.0)
    assert str(caught.value) == f"Prometheus at {prom.url} did not answer within 0.2 s"


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (
            (400, {"status": "error", "errorType": "bad_data", "error": "parse error at 1:5"}),
            "answered 400 Bad Request: bad_data: parse error at 1:5",
        ),
        ((503, "Service Unavailable"), "answered 503 Service Unavailable: Service Unavailable"),
        ((200, "<html>a login page</html>"), "answered something else than its API's JSON"),
    ],
)
def test_an_error_answer_is_one_line(
    prom: FakePrometheus, error: tuple[int, object], said: str
) -> None:
    prom.error = error  # type: ignore[assignment]
    with pytest.raises(PrometheusError) as caught:
        PromClient(prom.url).query("up[5s]", 1.0)
    assert said in str(caught.value)
    assert str(caught.value).startswith(f"Prometheus at {prom.url} ")


def test_a_url_with_a_path_prefix_is_kept(prom: FakePrometheus) -> None:
    with pytest.raises(PrometheusError) as caught:
        PromClient(prom.url + "/prom/").query("up[5s]", 1.0)
    assert "answered 404" in str(caught.value)
    assert prom.queries  # it was asked, under /prom/api/v1/query

"""MetricReads.feedback_labels (store/metrics/reads.py): the labels of given request ids,
of one (service, env), read a chunk of ids per query."""

from __future__ import annotations

from pathlib import Path

from store.metrics.reads import IDS_PER_QUERY
from store.metrics.store import Feedback, MetricStore

T0 = 1_740_000_000


def test_labels_of_the_ids_asked_that_have_one(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    with MetricStore.open(path) as store:
        store.add_feedback([
            Feedback("iris", "prod", "a", "setosa", T0),
            Feedback("iris", "prod", "b", "virginica", T0),
            Feedback("iris", "staging", "c", "setosa", T0),  # another environment
            Feedback("shop", "prod", "d", "setosa", T0),  # another service
        ])  # fmt: skip
        store.add_feedback([Feedback("iris", "prod", "b", "versicolor", T0 + 60)])  # relabelled
        asked = ["a", "b", "c", "d", "unknown", "a"]
        assert store.feedback_labels("iris", "prod", asked) == {
            "a": "setosa",
            "b": "versicolor",
        }
        assert store.feedback_labels("iris", "staging", iter(asked)) == {"c": "setosa"}
        assert store.feedback_labels("iris", "prod", []) == {}
    # A read-only open reads them too.
    with MetricStore.open(path, readonly=True) as store:
        assert store.feedback_labels("shop", "prod", ["d"]) == {"d": "setosa"}


def test_more_ids_than_one_query_takes(tmp_path: Path) -> None:
    n = 2 * IDS_PER_QUERY + 7
    with MetricStore.open(tmp_path / "metrics.db") as store:
        store.add_feedback(
            Feedback("iris", "prod", f"q{i}", "ab"[i % 2], T0) for i in range(0, n, 3)
        )
        labels = store.feedback_labels("iris", "prod", (f"q{i}" for i in range(n)))
    assert labels == {f"q{i}": "ab"[i % 2] for i in range(0, n, 3)}

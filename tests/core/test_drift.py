"""Drift math (PSI, KS, class shares) and reading a release's training data from DVC's cache."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from core.drift.reference import cache_object_path, reference_frame
from core.drift.stats import (
    EPSILON,
    class_shares,
    drift_report,
    ks,
    live_report,
    psi,
    share_distance,
)
from core.errors import ConfigError, UsageError
from core.targets.monitor_log import MonitorRow

IRIS = (
    "sepal_length,sepal_width,petal_length,petal_width,species\n"
    "5.1,3.5,1.4,0.2,setosa\n"
    "4.9,3.0,1.4,0.2,setosa\n"
    "7.0,3.2,4.7,1.4,versicolor\n"
    "6.3,3.3,6.0,2.5,virginica\n"
)


def rng() -> np.random.Generator:
    return np.random.default_rng(7)


# ---------------------------------------------------------------------------- PSI


def test_identical_samples_have_zero_psi() -> None:
    sample = list(rng().normal(0, 1, 2000))
    assert psi(sample, sample) == pytest.approx(0.0, abs=1e-12)


def test_two_samples_of_one_distribution_have_small_psi() -> None:
    gen = rng()
    assert psi(list(gen.normal(0, 1, 5000)), list(gen.normal(0, 1, 5000))) < 0.02


def test_a_shifted_normal_has_psi_above_the_major_shift_line() -> None:
    gen = rng()
    reference = list(gen.normal(0, 1, 5000))
    assert psi(reference, list(gen.normal(0.5, 1, 5000))) == pytest.approx(0.25, abs=0.05)
    assert psi(reference, list(gen.normal(1.0, 1, 5000))) > 0.8


def test_psi_by_hand_on_two_bins() -> None:
    # Reference median 2.5: bins (-inf, 2.5], (2.5, inf); shares 1/2, 1/2 vs 3/4, 1/4.
    expected = (0.75 - 0.5) * math.log(0.75 / 0.5) + (0.25 - 0.5) * math.log(0.25 / 0.5)
    assert psi([1, 2, 3, 4], [1, 1, 2, 4], bins=2) == pytest.approx(expected)


def test_an_empty_bin_counts_as_epsilon() -> None:
    # Everything live falls above the reference: the lower bins are empty, not infinite.
    value = psi([1, 2, 3, 4], [10, 11], bins=2)
    assert value == pytest.approx(
        (EPSILON - 0.5) * math.log(EPSILON / 0.5) + (1 - 0.5) * math.log(1 / 0.5)
    )


def test_constant_and_tied_references_still_give_bins() -> None:
    assert psi([1.0] * 50, [1.0] * 20) == pytest.approx(0.0)
    assert psi([1.0] * 50, [2.0] * 20) > 5
    iris_like = [0.2] * 30 + [1.3] * 30 + [2.0] * 30
    assert psi(iris_like, iris_like) == pytest.approx(0.0)


def test_nan_is_ignored_and_empty_is_an_error() -> None:
    assert psi([1, 2, float("nan"), 3, 4], [1, 2, 3, 4], bins=2) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        psi([], [1.0])
    with pytest.raises(ValueError):
        psi([1.0], [float("nan")])
    with pytest.raises(ValueError):
        psi([1.0, 2.0], [1.0], bins=1)


# ---------------------------------------------------------------------------- KS


def test_ks_known_values() -> None:
    assert ks([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks([1, 2, 3], [4, 5, 6]) == 1.0
    # F_ref jumps 1/4, 3/4, 1 at 1, 2, 3; F_live 2/3, 1 at 2, 5: largest gap 1/3 at x = 3.
    assert ks([1, 2, 2, 3], [2, 2, 5]) == pytest.approx(1 / 3)
    assert ks([0, 1], [0.5]) == pytest.approx(0.5)


def test_ks_matches_scipy() -> None:
    from scipy.stats import ks_2samp

    gen = rng()
    a, b = gen.normal(0, 1, 700), gen.normal(0.3, 1.2, 450)
    assert ks(list(a), list(b)) == pytest.approx(ks_2samp(a, b).statistic)
    ties_a, ties_b = gen.integers(0, 5, 300), gen.integers(1, 6, 200)
    assert ks(list(ties_a), list(ties_b)) == pytest.approx(ks_2samp(ties_a, ties_b).statistic)


# ---------------------------------------------------------------------------- classes


def test_class_shares() -> None:
    shares = class_shares(["b", "a", "a", None, "a", 1.0, 1])
    assert shares == {"1": pytest.approx(2 / 6), "a": pytest.approx(3 / 6), "b": 1 / 6}
    assert class_shares([]) == {}


def test_share_distance_is_psi_over_classes() -> None:
    same = {"a": 0.5, "b": 0.5}
    assert share_distance(same, same) == 0.0
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert share_distance(same, {"a": 0.8, "b": 0.2}) == pytest.approx(expected)
    # A class never seen in the reference is a large shift, not an infinite one.
    assert 1 < share_distance(same, {"a": 0.5, "c": 0.5}) < 20


# ---------------------------------------------------------------------------- DVC cache


def put_object(root: Path, content: bytes, *, legacy: bool = False) -> str:
    md5 = hashlib.md5(content).hexdigest()
    cache = root / ".dvc" / "cache"
    target = cache / md5[:2] / md5[2:] if legacy else cache / "files" / "md5" / md5[:2] / md5[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return md5


def test_reference_from_a_dvc3_cache_file(tmp_path: Path) -> None:
    md5 = put_object(tmp_path, IRIS.encode())
    assert cache_object_path(tmp_path, md5).read_text() == IRIS
    frame = reference_frame(tmp_path, md5, "data/iris.csv")
    assert list(frame) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert frame["sepal_length"] == [5.1, 4.9, 7.0, 6.3]
    assert frame["species"] == ["setosa", "setosa", "versicolor", "virginica"]


def test_reference_from_a_legacy_dvc2_cache_file(tmp_path: Path) -> None:
    md5 = put_object(tmp_path, IRIS.encode(), legacy=True)
    assert len(reference_frame(tmp_path, md5, "data/iris.csv")["species"]) == 4


def test_reference_from_a_directory_listing(tmp_path: Path) -> None:
    part1 = put_object(tmp_path, b"x,label\n1,a\n2,b\n")
    part2 = put_object(tmp_path, b"x,label\n3,a\n,c\n")
    notes = put_object(tmp_path, b"not a table")
    listing = [
        {"md5": part2, "relpath": "part-2.csv"},
        {"md5": notes, "relpath": "README.md"},
        {"md5": part1, "relpath": "part-1.csv"},
    ]
    listing_md5 = hashlib.md5(json.dumps(listing).encode()).hexdigest() + ".dir"
    target = cache_object_path(tmp_path, listing_md5)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(listing))
    frame = reference_frame(tmp_path, listing_md5, "data/parts")
    assert frame["x"][:3] == [1.0, 2.0, 3.0] and math.isnan(frame["x"][3])  # type: ignore[arg-type]
    assert frame["label"] == ["a", "b", "a", "c"]


def test_a_configured_cache_dir_is_honoured(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = local\n[cache]\n    dir = ../../shared-cache\n"
    )
    content = IRIS.encode()
    md5 = hashlib.md5(content).hexdigest()
    target = tmp_path.parent / "shared-cache" / "files" / "md5" / md5[:2] / md5[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    assert reference_frame(tmp_path, md5, "data/iris.csv")["species"][0] == "setosa"


def test_missing_from_the_cache_says_dvc_pull(tmp_path: Path) -> None:
    (tmp_path / ".dvc" / "cache").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        reference_frame(tmp_path, "0" * 32, "data/iris.csv")
    message = str(caught.value)
    assert "data/iris.csv (md5 " + "0" * 32 + ") is not in the local DVC cache" in message
    assert "'dvc pull'" in message and "\n" not in message
    assert caught.value.exit_code == 2


def test_a_directory_missing_one_file_says_dvc_pull(tmp_path: Path) -> None:
    listing = json.dumps([{"md5": "1" * 32, "relpath": "a.csv"}])
    target = cache_object_path(tmp_path, "2" * 32 + ".dir")
    target.parent.mkdir(parents=True)
    target.write_text(listing)
    with pytest.raises(ConfigError, match=r"data/d/a.csv \(md5 1+\) .*'dvc pull'"):
        reference_frame(tmp_path, "2" * 32 + ".dir", "data/d")


@pytest.mark.parametrize(
    ("md5", "path", "match"),
    [
        (None, "data/iris.csv", "records no usable md5"),
        ("xyz", "data/iris.csv", "records no usable md5"),
        ("a" * 32, "data/iris.parquet", "CSV or TSV"),
    ],
)
def test_unusable_references_are_config_errors(
    tmp_path: Path, md5: str | None, path: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        reference_frame(tmp_path, md5, path)


def test_the_demo_layout(tmp_path: Path) -> None:
    """As `relman demo` leaves it: data/iris.csv.dvc's md5 names .dvc/cache/files/md5/xx/..."""
    md5 = put_object(tmp_path, IRIS.encode())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "iris.csv.dvc").write_text(
        f"outs:\n- md5: {md5}\n  size: {len(IRIS)}\n  hash: md5\n  path: iris.csv\n"
    )
    assert (tmp_path / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert reference_frame(tmp_path, md5, "data/iris.csv")["petal_width"][-1] == 2.5


# ---------------------------------------------------------------------------- report


def rows(values: list[float], predictions: list[str]) -> list[MonitorRow]:
    return [
        MonitorRow(t=i, request_id=str(i), features={"x": v}, prediction=p, target=None)
        for i, (v, p) in enumerate(zip(values, predictions, strict=True))
    ]


def test_drift_report_per_feature_and_predictions() -> None:
    gen = rng()
    reference: dict[str, list[float | str]] = {
        "x": list(gen.normal(0, 1, 1000)),
        "label": ["a"] * 500 + ["b"] * 500,
    }
    live = rows(list(gen.normal(1, 1, 200)), ["a"] * 160 + ["b"] * 40)
    report = drift_report(reference, live, features=["x", "gone"], label_column="label")
    x, gone = report.features
    assert x.psi is not None and x.psi > 0.5 and x.ks is not None and 0.3 < x.ks < 0.5
    assert (x.reference_n, x.live_n) == (1000, 200)
    assert x.detail.startswith(f"x: PSI {x.psi:.3f}, KS {x.ks:.3f}; mean ")
    assert gone.psi is None and gone.detail == "gone: not in the reference data"
    assert report.problems == ["gone: not a column of the reference data"]
    assert report.max_psi == x.psi
    shares = report.predictions
    assert shares is not None and shares.live == {"a": 0.8, "b": 0.2}
    assert shares.distance == pytest.approx(share_distance({"a": 0.5, "b": 0.5}, shares.live))
    assert shares.detail.endswith("most moved: a 80% live vs 50% reference (n=200)")
    assert json.loads(json.dumps(report.to_dict()))["live_rows"] == 200


def test_drift_report_with_too_few_rows_measures_nothing() -> None:
    reference: dict[str, list[float | str]] = {"x": [1.0, 2.0, 3.0], "label": ["a", "b", "a"]}
    report = drift_report(
        reference, rows([5.0, 6.0], ["a", "a"]), features=["x"], label_column="label"
    )
    [x] = report.features
    assert x.psi is None and x.detail == "x: only 2 live values, fewer than 30: not measured"
    assert report.predictions is not None and report.predictions.distance is None
    empty = drift_report(reference, [], features=["x"], label_column=None)
    assert empty.features[0].detail == "x: no live values yet" and empty.predictions is None


def test_drift_report_on_a_text_feature_and_a_missing_label_column() -> None:
    reference: dict[str, list[float | str]] = {"colour": ["red", "blue"]}
    report = drift_report(
        reference, rows([1.0], ["a"]), features=["colour"], label_column="y", min_live=1
    )
    assert report.features[0].detail == "colour: not numeric in the reference"
    assert report.predictions is None
    assert report.problems == [
        "colour: no numbers in the reference data",
        "y: the label column is not in the reference data",
    ]


# ---------------------------------------------------------------------------- api.drift

DRIFT_TOML = """\
[project]
name = "drifty"

[services.iris]
bento = "service:Iris"
model = ["models/model.pkl"]
data = ["data/iris.csv"]

[environments.dev]
port = 18101

[environments.staging]
port = 18102

[environments.prod]
port = 18103
"""


def reference_csv(count: int) -> bytes:
    gen = rng()
    species = ["setosa", "versicolor", "virginica"]
    lines = ["sepal_length,petal_length,species"]
    for i in range(count):
        sepal, petal = gen.normal(5.8, 0.8), gen.normal(3.7, 1.7)
        lines.append(f"{sepal:.2f},{petal:.2f},{species[i % 3]}")
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def drifty(tmp_path: Path) -> Any:
    """A project (no git needed) whose ledger has release r1 live in dev and staging,
    trained on a 300-row CSV that is in the DVC cache."""
    from core.config.model import load_project
    from store import ArtifactRecord, Ledger

    root = tmp_path / "drifty"
    root.mkdir()
    (root / "relman.toml").write_text(DRIFT_TOML)
    md5 = put_object(root, reference_csv(300))
    project = load_project(root)
    with Ledger.open(project.ledger_path, actor="tester@example.invalid") as ledger:
        ledger.record_release(
            "r1",
            service="iris",
            git_commit="0" * 40,
            version="v1.0.0",
            artifacts=[ArtifactRecord("iris", "dataset", "data/iris.csv", md5=md5)],
        )
        for env in ("dev", "staging"):
            promotion = ledger.begin_promotion("iris", env, "r1")
            ledger.finish_promotion(promotion.id, "done")
    return project


def log_records(project: Any, env: str, count: int, *, shift: float) -> None:
    """``count`` monitor records of r1 in ``env`` over the last minutes: petal_length moved
    by ``shift``, sepal_length as trained; four in five predicted virginica."""
    from core.monitoring.collector_process import metrics_path
    from store.metrics.store import MetricStore, Record

    gen = rng()
    now = int(time.time())
    with MetricStore.open(metrics_path(project)) as store:
        store.add_records(
            Record(
                "iris",
                env,
                now - 300 + i % 300,
                "r1",
                f"req-{i}",
                {
                    "sepal_length": float(gen.normal(5.8, 0.8)),
                    "petal_length": float(gen.normal(3.7 + shift, 1.7)),
                },
                "virginica" if i % 5 else "setosa",
                None,
            )
            for i in range(count)
        )


def test_api_drift_per_feature_and_class_shares(drifty: Any) -> None:
    from core import api

    log_records(drifty, "dev", 400, shift=2.5)
    document = api.drift(drifty, "iris", "dev")
    assert json.loads(json.dumps(document)) == document  # plain JSON, as --json prints it
    assert document["measured"] and document["note"] == ""
    assert (document["release"], document["version"], document["records"]) == ("r1", "v1.0.0", 400)
    assert (document["window_minutes"], document["min_records"], document["psi_max"]) == (
        15,
        200,
        0.2,
    )
    assert document["reference"]["path"] == "data/iris.csv"
    assert document["reference"]["rows"] == 300
    by_name = {f["name"]: f for f in document["features"]}
    assert list(by_name) == ["sepal_length", "petal_length"]  # the columns the records log
    petal, sepal = by_name["petal_length"], by_name["sepal_length"]
    assert petal["psi"] > 0.2 and petal["state"] == "drift" and petal["ks"] > 0.4
    assert petal["live_mean"] - petal["reference_mean"] == pytest.approx(2.5, abs=0.4)
    assert sepal["psi"] < 0.2 and sepal["state"] == "ok"
    assert (sepal["live_n"], sepal["reference_n"]) == (400, 300)
    predictions = document["predictions"]
    assert predictions["live_n"] == 400 and predictions["state"] == "drift"
    top = predictions["classes"][0]  # the class that moved most comes first
    assert top == {"name": "virginica", "live": 0.8, "reference": pytest.approx(1 / 3)}
    assert [c["name"] for c in predictions["classes"]][1:] == ["versicolor", "setosa"]


def test_api_drift_says_why_it_measured_nothing(drifty: Any) -> None:
    from core import api
    from core.monitoring.collector_process import metrics_path

    # No metric store yet: no records, and no store made for it.
    document = api.drift(drifty, "iris", "dev")
    assert not document["measured"] and document["records"] == 0
    assert document["note"] == (
        "0 records of r1 in the last 15 min; drift is measured from 200 (drift_min_records)"
    )
    assert not metrics_path(drifty).exists()
    log_records(drifty, "staging", 50, shift=0.0)
    assert api.drift(drifty, "iris", "staging")["note"].startswith("50 records of r1 ")
    nothing = api.drift(drifty, "iris", "prod")
    assert (nothing["measured"], nothing["release"]) == (False, None)
    assert nothing["note"] == "nothing is deployed in prod: no drift to measure"


def test_api_drift_without_the_training_data_in_the_cache(drifty: Any) -> None:
    from core import api
    from store import ArtifactRecord, Ledger

    with Ledger.open(drifty.ledger_path, actor="tester@example.invalid") as ledger:
        ledger.record_release(
            "r2",
            service="iris",
            git_commit="1" * 40,
            artifacts=[ArtifactRecord("iris", "dataset", "data/iris.csv", md5="e" * 32)],
        )
        promotion = ledger.begin_promotion("iris", "prod", "r2")
        ledger.finish_promotion(promotion.id, "done")
    from core.monitoring.collector_process import metrics_path
    from store.metrics.store import MetricStore, Record

    now = int(time.time())
    with MetricStore.open(metrics_path(drifty)) as store:
        store.add_records(
            Record("iris", "prod", now - 60, "r2", f"q{i}", {"petal_length": 1.0}, "a", None)
            for i in range(200)
        )
    document = api.drift(drifty, "iris", "prod")
    assert not document["measured"] and document["records"] == 200
    assert document["note"].startswith(
        f"drift not measured: data/iris.csv (md5 {'e' * 32}) is not in the local DVC cache"
    )


def test_api_metrics_and_alerts_answer_empty_without_a_metric_store(drifty: Any) -> None:
    """A project that never ran the collector: empty documents, and no file made."""
    from core import api
    from core.monitoring.collector_process import metrics_path

    points = api.metrics(drifty, "iris", "dev", "1h")
    assert (points["ok"], points["points"]) == (True, [])
    alerts = api.alerts(drifty)
    assert (alerts["ok"], alerts["alerts"], alerts["firing"], alerts["collector"]) == (
        True,
        [],
        0,
        None,
    )
    assert not metrics_path(drifty).exists()
    assert drifty.state_dir.exists()  # the ledger's folder: only the metric store is missing
    with pytest.raises(UsageError, match="nope"):
        api.drift(drifty, "iris", "nope")


def test_live_report_takes_the_configured_label_column() -> None:
    """Numeric labels (0/1) and a text id column before them: only the configured label
    is what predictions are compared with, and it is never taken for a feature."""
    n = 300
    reference: dict[str, list[Any]] = {
        "id": [f"row-{i}" for i in range(n)],
        "x": [float(i % 10) for i in range(n)],
        "churned": [i % 2 for i in range(n)],
    }
    live = [
        MonitorRow(
            t=i,
            request_id=str(i),
            features={"x": float(i % 10), "churned": 0},
            prediction=1,
            target=None,
        )
        for i in range(n)
    ]
    guessed = live_report(reference, live)
    assert guessed.predictions is not None
    assert set(guessed.predictions.reference) == {f"row-{i}" for i in range(n)}  # the id
    report = live_report(reference, live, label="churned")
    assert [f.name for f in report.features] == ["x"]
    assert report.predictions is not None
    assert report.predictions.reference == {"0": 0.5, "1": 0.5}
    assert report.predictions.live == {"1": 1.0}

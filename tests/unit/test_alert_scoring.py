"""The alert-quality benchmark's parts: NAB-style scoring on hand-made detections, the mean
+ 3 sd reference, the labelled series generators, and the benchmark's --json document
(benchmarks/bench_alert_quality.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.alert_scoring import (
    grouped,
    mean_3sd,
    normalised,
    page_hinkley,
    river_available,
    run,
    scaled_sigmoid,
    score_series,
    summarise,
    windows,
)
from benchmarks.alert_series import KINDS, UNITS, corpus, generate

ROOT = Path(__file__).resolve().parents[2]
LENGTH = 2000
LABELS = [600, 1400]  # windows of 100 points: 550..650 and 1350..1450
FIRSTS = [550, 1350]


def norm(detections: list[int], labels: list[int] = LABELS) -> float | None:
    s = score_series(LENGTH, labels, detections)
    return normalised(s.raw, s.null, s.perfect)


def test_windows_share_a_tenth_of_the_series_centred_on_each_label() -> None:
    assert windows(LENGTH, LABELS) == [(550, 650, 600), (1350, 1450, 1400)]
    assert windows(LENGTH, [600, 640]) == [(550, 690, 600)]  # overlapping ones merge
    assert windows(LENGTH, []) == []


def test_detecting_each_window_at_its_start_scores_100_and_nothing_scores_0() -> None:
    assert norm(FIRSTS) == pytest.approx(100.0)
    assert norm([]) == pytest.approx(0.0)
    assert norm([], labels=[]) is None  # nothing to find: no score


def test_one_false_positive_costs_011_before_normalisation() -> None:
    perfect = score_series(LENGTH, LABELS, FIRSTS)
    before = score_series(LENGTH, LABELS, [400, *FIRSTS])  # before the first window
    far = score_series(LENGTH, LABELS, [*FIRSTS, 1000])  # > 3 widths past the first one
    assert perfect.raw - before.raw == pytest.approx(0.11)
    assert perfect.raw - far.raw == pytest.approx(0.11)
    assert (before.fp, far.fp) == (1, 1)
    # Just past a window costs less than a full false positive.
    near = score_series(LENGTH, LABELS, [*FIRSTS, 660])
    assert 0 < perfect.raw - near.raw < 0.11


def test_a_missed_window_costs_one_and_an_early_detection_beats_a_late_one() -> None:
    one = score_series(LENGTH, LABELS, [550])
    assert one.raw == pytest.approx(scaled_sigmoid(-1.0) - 1.0)
    assert (one.tp, one.fn) == (1, 1)
    early, late = norm([560, 1360]), norm([640, 1440])
    assert early is not None and late is not None
    assert early > late > 50  # late in the window still beats a miss
    assert scaled_sigmoid(-1.0) == pytest.approx(0.9866, abs=1e-4)
    assert scaled_sigmoid(0.0) == 0.0 and scaled_sigmoid(3.5) == -1.0


def test_only_the_first_detection_in_a_window_counts_and_probation_is_ignored() -> None:
    assert norm([560, 570, 640, 1360]) == norm([560, 1360])
    probation = score_series(LENGTH, LABELS, [10, 200, *FIRSTS])  # first 15 %: 300 points
    assert probation.fp == 0 and probation.raw == score_series(LENGTH, LABELS, FIRSTS).raw


def test_delays_are_minutes_from_the_anomaly_start_and_fa_per_scored_day() -> None:
    s = score_series(LENGTH, LABELS, [590, 1410, 1900], interval=300)
    assert s.delays == (0.0, 50.0)  # before the start counts 0; 10 points of 5 min
    assert s.days == pytest.approx(1700 * 300 / 86_400)
    summary = summarise([s, score_series(LENGTH, LABELS, [], interval=300)])
    assert (summary.tp, summary.fp, summary.fn) == (2, 1, 2)
    assert summary.precision == pytest.approx(2 / 3)
    assert summary.recall == pytest.approx(0.5)
    assert summary.delay == pytest.approx(25.0)
    assert summary.false_alarms_per_day == pytest.approx(1 / (2 * s.days))


def test_mean_3sd_needs_three_points_above_the_limit_and_rearms() -> None:
    values = [10.0, 12.0] * 100  # mean 11, sd 1: the limit is 14
    values[150:152] = [20.0, 20.0]  # two points: nothing
    values[170:175] = [20.0] * 5  # five points: one detection, at the third
    values[180:183] = [14.5] * 3  # again after a point below
    assert mean_3sd(values) == [172, 182]
    assert mean_3sd([10.0, 12.0] * 100) == []


@pytest.mark.skipif(not river_available(), reason="pip install river==0.26.1")
def test_page_hinkley_finds_a_step() -> None:
    values = [float(10 + (i % 3)) for i in range(400)] + [200.0] * 50
    found = page_hinkley(values)
    assert found and 400 <= found[0] < 420


@pytest.mark.parametrize("kind", KINDS)
def test_generators_are_deterministic_and_label_what_they_inject(kind: str) -> None:
    series = generate(kind, "latency", interval=300, days=14, seed=4)
    assert series == generate(kind, "latency", interval=300, days=14, seed=4)
    assert series.values != generate(kind, "latency", interval=300, days=14, seed=5).values
    clean = generate(kind, "latency", interval=300, days=14, seed=4, inject=False)
    assert clean.anomalies == series.anomalies and 2 <= len(series.anomalies) <= 3
    inside = {i for a in series.anomalies for i in range(a.start, a.end)}
    changed = {
        i for i, (a, b) in enumerate(zip(series.values, clean.values, strict=True)) if a != b
    }
    assert changed == inside  # every injected point is inside a label's anomaly, and only they
    assert all(series.values[i] > clean.values[i] for i in inside)
    assert min(series.labels) >= int(0.15 * len(series.values))  # after the probation
    assert len(series.values) == 14 * 288 and series.interval == 300


def test_units_set_the_level_and_the_corpus_covers_every_family() -> None:
    for name, unit in UNITS.items():
        values = generate("spike", name, interval=300, days=14, seed=0).values
        median = sorted(values)[len(values) // 2]
        assert 0.7 * unit.level < median < 1.4 * unit.level, name
    quick = corpus(1, quick=True)
    assert {s.family for s in quick} == set(KINDS)
    assert {s.unit for s in quick} == set(UNITS)
    assert len({s.name for s in quick}) == len(quick)


def test_scores_group_by_family_over_every_detector() -> None:
    series = [generate(kind, "cpu", interval=300, days=14, seed=1) for kind in KINDS[:2]]
    results = run(series, {"perfect": lambda s: s.labels, "silent": lambda s: []})
    by_family = grouped(results, lambda s: s.family)
    assert list(by_family) == list(KINDS[:2])
    for summaries in by_family.values():
        assert summaries["silent"].score == pytest.approx(0.0)
        perfect = summaries["perfect"].score
        assert perfect is not None and 90 < perfect < 100  # at the label: mid-window
        assert summaries["perfect"].recall == 1.0 and summaries["perfect"].fp == 0


def test_the_quick_benchmark_prints_a_document_of_every_score() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_alert_quality.py"), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(done.stdout)
    detectors = {"relman", "mean+3sd"} | ({"PageHinkley"} if river_available() else set())
    assert set(doc["families"]) == set(KINDS)
    for by_detector in [*doc["families"].values(), doc["overall"], *doc["units"].values()]:
        assert set(by_detector) - {"relman pages"} == detectors  # pages: where backtest says
        for summary in by_detector.values():
            assert summary["tp"] + summary["fn"] > 0
            assert summary["score"] is None or math.isfinite(summary["score"])
    assert doc["metric"] == "p95_ms" and doc["policy"] == {} and doc["rules"]
    assert [c["history_minutes"] for c in doc["scenarios"]] == [1440, 0, 1440, 0]
    for case in doc["scenarios"]:
        assert all(d is None or d >= 1 for d in case["delays"])
    assert doc["noise"]["per_day"] >= 0 and doc["backtest"]["points"] == 30 * 1440
    assert doc["backtest"]["seconds"] > 0
    assert all(isinstance(v, bool) for v in doc["targets"].values())


def test_recorded_series_split_by_name_into_a_tuning_and_a_held_out_half() -> None:
    from benchmarks.nab_series import HELD_OUT, TUNING, half

    # CRC-32 of "group/file.csv": even is tuning, odd held out; the suffix is optional.
    assert half("realAWSCloudwatch/ec2_cpu_utilization_24ae8d") == TUNING
    assert half("realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv") == TUNING
    assert half("realAWSCloudwatch/rds_cpu_utilization_e47b3b") == HELD_OUT


def test_recorded_series_are_scored_per_half_and_together(tmp_path: Path) -> None:
    from benchmarks.bench_alert_quality import measure_real, real_report

    names = ["g/ec2_cpu_utilization_24ae8d.csv", "g/rds_cpu_utilization_e47b3b.csv"]
    labels: dict[str, list[list[str]]] = {}
    (tmp_path / "data" / "g").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    for name in names:
        series = generate("step", "cpu", interval=300, days=7, seed=3)
        rows = [f"{iso(t)},{v}" for t, v in series.points()]
        (tmp_path / "data" / name).write_text("timestamp,value\n" + "\n".join(rows) + "\n")
        first, last = windows(len(series.values), series.labels)[0][:2]
        times = [t for t, _ in series.points()]
        labels[name] = [[iso(times[first]), iso(times[last])]]
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(labels))
    real = measure_real(tmp_path)
    assert list(real["halves"]) == ["tuning", "held-out", "all"]
    assert [h["series"] for h in real["halves"].values()] == [1, 1, 2]
    assert set(real["by_series"]) == {
        "g/ec2_cpu_utilization_24ae8d (tuning)",
        "g/rds_cpu_utilization_e47b3b (held-out)",
    }
    text = "\n".join(real_report(real))
    assert "recorded tuning: relman / mean+3sd" in text
    assert "recorded held-out: relman / mean+3sd" in text


def iso(t: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")

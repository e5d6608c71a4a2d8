"""Quality gates: each ends passed, failed or skipped with the one line a person reads."""

from __future__ import annotations

from typing import Any

import pytest

from core.config.model import GateConfig
from core.delivery.gates import (
    ArtifactPresence,
    GateResult,
    SuiteOutcome,
    blocking,
    evaluate_approvals,
    evaluate_artifacts,
    evaluate_metric_gate,
    evaluate_order,
    evaluate_suites,
    format_percent,
    format_value,
)
from core.errors import ConfigError

RELEASE = "3f9a2c1e0b7d"


def metrics(**values: Any) -> dict[str, dict[str, Any]]:
    return {"metrics.json": values}


def lines(results: list[GateResult]) -> list[tuple[str, str, str]]:
    """(name, status, detail): what the TUI, JSON and JUnit show for each result."""
    return [(r.name, r.status, r.detail) for r in results]


def gate(**fields: Any) -> GateConfig:
    return GateConfig(metric=fields.pop("metric", "accuracy"), **fields)


def run(config: GateConfig, value: float, base: float | None) -> list[GateResult]:
    baseline = None if base is None else metrics(**{config.metric: base})
    return evaluate_metric_gate(
        "acc", config, metrics(**{config.metric: value}), baseline=baseline, env="prod"
    )


# -------------------------------------------------------------------------- thresholds


def test_min_threshold_passes_and_fails() -> None:
    assert lines(run(gate(min=0.9), 0.956, None)) == [("acc", "passed", "accuracy 0.956 >= 0.900")]
    assert lines(run(gate(min=0.95), 0.912, None)) == [
        ("acc", "failed", "accuracy 0.912 < 0.950 required")
    ]


def test_max_threshold_for_a_latency() -> None:
    latency = gate(metric="latency_ms", max=40)
    assert lines(run(latency, 38, None)) == [("acc", "passed", "latency_ms 38 <= 40")]
    assert lines(run(latency, 42.5, None)) == [("acc", "failed", "latency_ms 42.5 > 40 allowed")]


def test_min_and_max_together() -> None:
    both = gate(min=0.3, max=0.7)
    assert run(both, 0.5, None)[0].detail == "accuracy 0.500 within [0.300, 0.700]"
    assert run(both, 0.2, None)[0].detail == "accuracy 0.200 < 0.300 required"


def test_a_failed_threshold_shows_the_live_value_for_context() -> None:
    assert run(gate(min=0.95), 0.912, 0.948)[0].detail == (
        "accuracy 0.912 < 0.950 required; prod baseline 0.948"
    )


def test_rounding_never_makes_a_failure_look_equal() -> None:
    assert run(gate(min=0.95), 0.9499, None)[0].detail == "accuracy 0.9499 < 0.95 required"


# ------------------------------------------------------------------------------ baseline


def test_threshold_and_baseline_both_fail_and_both_explain() -> None:
    config = gate(min=0.95, baseline=True, min_relative_change=-0.01)
    results = run(config, 0.912, 0.948)
    assert lines(results) == [
        (
            "acc",
            "failed",
            "accuracy 0.912 < 0.950 required; prod baseline 0.948 (-3.8%, allowed -1.0%)",
        ),
        ("acc vs prod", "failed", "accuracy 0.912 vs prod baseline 0.948 (-3.8%, allowed -1.0%)"),
    ]
    assert [r.kind for r in results] == ["metric", "baseline"]
    assert blocking(results) == results


def test_threshold_and_baseline_both_pass() -> None:
    config = gate(min=0.9, baseline=True, min_relative_change=-0.01)
    assert lines(run(config, 0.956, 0.948)) == [
        ("acc", "passed", "accuracy 0.956 >= 0.900"),
        ("acc vs prod", "passed", "accuracy 0.956 vs prod baseline 0.948 (+0.8%, allowed -1.0%)"),
    ]


def test_without_a_baseline_the_comparison_is_skipped_and_the_threshold_still_applies() -> None:
    config = gate(min=0.9, baseline=True, min_relative_change=-0.01)
    assert lines(run(config, 0.956, None)) == [
        ("acc", "passed", "accuracy 0.956 >= 0.900"),
        ("acc vs prod", "skipped", "no baseline: nothing live in prod yet"),
    ]
    assert lines(run(config, 0.85, None))[0] == ("acc", "failed", "accuracy 0.850 < 0.900 required")


def test_baseline_only_gate_with_nothing_live_blocks_nothing() -> None:
    results = run(gate(baseline=True), 0.5, None)
    assert lines(results) == [("acc vs prod", "skipped", "no baseline: nothing live in prod yet")]
    assert blocking(results) == []


def test_relative_allowance_is_a_permitted_drop() -> None:
    config = gate(min_relative_change=-0.01)  # an allowance alone turns the comparison on
    assert lines(run(config, 0.940, 0.948)) == [
        ("acc vs prod", "passed", "accuracy 0.940 vs prod baseline 0.948 (-0.8%, allowed -1.0%)")
    ]
    assert lines(run(config, 0.938, 0.948)) == [
        ("acc vs prod", "failed", "accuracy 0.938 vs prod baseline 0.948 (-1.1%, allowed -1.0%)")
    ]


def test_absolute_allowance_at_the_exact_boundary_passes_despite_float_noise() -> None:
    config = gate(baseline=True, min_absolute_change=-0.01)
    assert 0.82 - 0.83 < -0.01  # the noise this guards against
    assert lines(run(config, 0.82, 0.83)) == [
        ("acc vs prod", "passed", "accuracy 0.820 vs prod baseline 0.830 (-0.010, allowed -0.010)")
    ]
    assert run(config, 0.819, 0.83)[0].status == "failed"


def test_both_allowances_must_hold() -> None:
    config = gate(baseline=True, min_absolute_change=-0.01, min_relative_change=-0.005)
    (result,) = run(config, 0.940, 0.948)
    assert (result.status, result.detail) == (
        "failed",
        "accuracy 0.940 vs prod baseline 0.948 (-0.008, -0.8%; allowed -0.010, -0.5%)",
    )


def test_baseline_true_alone_means_no_regression() -> None:
    config = gate(baseline=True)
    assert lines(run(config, 0.947, 0.948)) == [
        (
            "acc vs prod",
            "failed",
            "accuracy 0.947 vs prod baseline 0.948 (-0.1%, no regression allowed)",
        )
    ]
    assert lines(run(config, 0.948, 0.948)) == [
        (
            "acc vs prod",
            "passed",
            "accuracy 0.948 vs prod baseline 0.948 (+0.0%, no regression allowed)",
        )
    ]


def test_a_positive_allowance_requires_an_improvement() -> None:
    (result,) = run(gate(min_relative_change=0.02), 0.956, 0.948)
    assert (result.status, result.detail) == (
        "failed",
        "accuracy 0.956 vs prod baseline 0.948 (+0.8%, required +2.0%)",
    )


def test_lower_is_better_flips_the_direction() -> None:
    latency = gate(metric="latency_ms", higher_is_better=False, min_relative_change=-0.05)
    # Latency fell: better, whatever the allowance.
    assert lines(run(latency, 30, 36)) == [
        ("acc vs prod", "passed", "latency_ms 30 vs prod baseline 36 (-16.7%, allowed +5.0%)")
    ]
    # Rose 2.8% with 5% allowed; then 5.6%.
    assert run(latency, 37, 36)[0].status == "passed"
    assert lines(run(latency, 38, 36)) == [
        ("acc vs prod", "failed", "latency_ms 38 vs prod baseline 36 (+5.6%, allowed +5.0%)")
    ]


def test_lower_is_better_with_a_max_and_an_absolute_allowance() -> None:
    latency = gate(
        metric="latency_ms", max=40, higher_is_better=False, baseline=True, min_absolute_change=-2
    )
    assert lines(run(latency, 42, 36)) == [
        ("acc", "failed", "latency_ms 42 > 40 allowed; prod baseline 36 (+6, allowed +2)"),
        ("acc vs prod", "failed", "latency_ms 42 vs prod baseline 36 (+6, allowed +2)"),
    ]
    assert [r.status for r in run(latency, 37, 36)] == ["passed", "passed"]


def test_a_baseline_release_without_the_metric_skips_the_comparison() -> None:
    results = evaluate_metric_gate(
        "acc",
        gate(min=0.9, baseline=True),
        metrics(accuracy=0.95),
        baseline=metrics(f1=0.9),
        env="prod",
    )
    assert lines(results)[1] == (
        "acc vs prod",
        "skipped",
        "no baseline: the release live in prod has no metric 'accuracy'",
    )


def test_nested_metric_in_a_named_file() -> None:
    candidate = {"metrics.json": {"accuracy": 0.5}, "eval/scores.yaml": {"test": {"f1": 0.91}}}
    baseline = {"eval/scores.yaml": {"test.f1": 0.90}}
    config = gate(metric="test.f1", file="eval/scores.yaml", min=0.9, baseline=True)
    assert lines(
        evaluate_metric_gate("f1", config, candidate, baseline=baseline, env="staging")
    ) == [
        ("f1", "passed", "test.f1 0.910 >= 0.900"),
        (
            "f1 vs staging",
            "passed",
            "test.f1 0.910 vs staging baseline 0.900 (+1.1%, no regression allowed)",
        ),
    ]


def test_nan_metric_fails() -> None:
    assert lines(run(gate(min=0.9), float("nan"), None)) == [
        ("acc", "failed", "accuracy is NaN in metrics.json; rerun the stage that writes it")
    ]


# ------------------------------------------------------------------------ config errors


def config_error(config: GateConfig, values: dict[str, dict[str, Any]]) -> str:
    with pytest.raises(ConfigError) as caught:
        evaluate_metric_gate("accuracy-floor", config, values, baseline=None, env="prod")
    assert caught.value.exit_code == 2
    return str(caught.value)


def test_unknown_metric_lists_what_exists() -> None:
    values = metrics(accuracy=0.95, f1_macro=0.93, n_test=150)
    assert config_error(gate(metric="acuracy", min=0.9), values) == (
        "gate accuracy-floor: metric 'acuracy' not found in metrics.json "
        "(has: accuracy, f1_macro, n_test)"
    )


def test_non_numeric_metric() -> None:
    assert config_error(gate(min=0.9), metrics(accuracy="high")) == (
        "gate accuracy-floor: metric 'accuracy' in metrics.json is 'high', not a number; "
        "point it at a numeric metric"
    )
    assert "is True, not a number" in config_error(gate(min=0.9), metrics(accuracy=True))


def test_gate_that_checks_nothing() -> None:
    assert config_error(gate(), metrics(accuracy=0.95)) == (
        "gate accuracy-floor: checks nothing; set min, max or baseline = true "
        "in [gates.accuracy-floor]"
    )


def test_gate_whose_min_is_above_its_max() -> None:
    assert config_error(gate(min=0.9, max=0.5), metrics(accuracy=0.95)) == (
        "gate accuracy-floor: min 0.9 is above max 0.5, so no value can pass; "
        "fix [gates.accuracy-floor]"
    )


# ------------------------------------------------------------------------------- suites


def test_suite_that_never_ran_for_this_release() -> None:
    assert lines(evaluate_suites(["model"], {}, RELEASE)) == [
        (
            "suite model",
            "failed",
            f"suite model has not run for release {RELEASE}; run relman test model",
        )
    ]


def test_a_pass_for_an_older_release_does_not_count() -> None:
    older = SuiteOutcome(release="1a2b3c4d5e6f", status="passed", passed=57)
    assert evaluate_suites(["model"], {"model": older}, RELEASE)[0].detail == (
        f"suite model has not run for release {RELEASE} (last run was for 1a2b3c4d5e6f); "
        "run relman test model"
    )


def test_failed_passed_and_errored_suites() -> None:
    results = evaluate_suites(
        ["model", "unit", "data", "unit"],
        {
            "model": SuiteOutcome(RELEASE, "failed", passed=55, failed=2),
            "unit": SuiteOutcome(RELEASE, "passed", passed=57, skipped=1),
            "data": SuiteOutcome(RELEASE, "error", passed=3, note="timed out after 300s"),
        },
        RELEASE,
    )
    assert lines(results) == [
        ("suite model", "failed", "suite model failed for this release: 2 failed, 55 passed"),
        ("suite unit", "passed", "suite unit passed for this release: 57 passed, 1 skipped"),
        (
            "suite data",
            "failed",
            "suite data failed for this release: timed out after 300s (3 passed)",
        ),
    ]
    assert [r.name for r in blocking(results)] == ["suite model", "suite data"]


def test_no_required_suites_means_no_results() -> None:
    assert evaluate_suites([], {}, RELEASE) == []


# ---------------------------------------------------------------------------- artifacts

MODEL = "9f2c4a1b" * 4


def test_all_artifacts_in_the_local_cache() -> None:
    artifacts = [
        ArtifactPresence("models/model.pkl", MODEL, "local"),
        ArtifactPresence("data/iris.csv", MODEL, "local"),
    ]
    assert evaluate_artifacts(artifacts, []) == GateResult(
        "data and model",
        "artifacts",
        "passed",
        "data and model in the local cache: models/model.pkl, data/iris.csv",
    )


def test_artifact_only_in_the_remote_says_to_pull_once() -> None:
    artifacts = [ArtifactPresence("models/model.pkl", MODEL, "remote")]
    # The same fact from lineage is not said twice.
    problems = ["models/model.pkl: not in the local cache (in the remote: run 'dvc pull')"]
    result = evaluate_artifacts(artifacts, problems)
    assert (result.status, result.detail) == (
        "failed",
        "models/model.pkl not in the local cache: needs dvc pull (in the remote)",
    )


def test_missing_artifact_and_a_changed_output() -> None:
    artifacts = [
        ArtifactPresence("models/model.pkl", MODEL, "local"),
        ArtifactPresence("data/iris.csv", MODEL, "missing"),
    ]
    problem = "dvc.yaml:train: output models/model.pkl modified (run 'dvc repro')"
    assert evaluate_artifacts(artifacts, [problem]).detail == (
        "data/iris.csv not in the local cache nor in the remote (run dvc repro); " + problem
    )


def test_many_artifact_problems_stay_one_line() -> None:
    artifacts = [ArtifactPresence("a.pkl", None, "missing"), ArtifactPresence("b", MODEL, "remote")]
    result = evaluate_artifacts(artifacts, ["p1", "p2"])
    assert result.detail == (
        "a.pkl not recorded by DVC (run dvc repro or dvc add); "
        "b not in the local cache: needs dvc pull (in the remote); and 2 more problems"
    )


# ---------------------------------------------------------------------------- approvals


def test_own_approval_does_not_count() -> None:
    assert evaluate_approvals("prod", 1, ["alice"], "alice") == GateResult(
        "approvals",
        "approvals",
        "failed",
        "prod needs 1 approval from someone other than alice; has 0 (alice's own does not count)",
    )


def test_missing_approvals_say_the_command_that_gives_one() -> None:
    detail = evaluate_approvals("prod", 1, [], "alice", release="8c7a9ffcdad9").detail
    assert detail.endswith("; another person runs: relman approve 8c7a9ffcdad9 --env prod")
    approved = evaluate_approvals("prod", 1, ["bob"], "alice", release="8c7a9ffcdad9")
    assert "relman approve" not in approved.detail


def test_approvals_counted_once_per_person() -> None:
    assert evaluate_approvals("prod", 2, ["bob", "bob", "alice"], "alice").detail == (
        "prod needs 2 approvals from someone other than alice; has 1 (bob; "
        "alice's own does not count)"
    )
    assert evaluate_approvals("prod", 2, ["bob"], "alice").detail == (
        "prod needs 2 approvals from someone other than alice; has 1 (bob)"
    )


def test_enough_approvals_and_none_needed() -> None:
    ok = evaluate_approvals("prod", 1, ["alice", "bob"], "alice")
    assert (ok.status, ok.detail) == ("passed", "approved for prod by bob (1 needed)")
    none = evaluate_approvals("staging", 0, [], "alice")
    assert (none.status, none.detail) == ("skipped", "staging needs no approval")


# -------------------------------------------------------------------------------- order


def test_order() -> None:
    assert evaluate_order("prod", "staging", False) == GateResult(
        "order", "order", "failed", "not yet healthy in staging (prod comes after staging)"
    )
    assert evaluate_order("prod", "staging", True).detail == "healthy in staging"
    first = evaluate_order("dev", None, False)
    assert (first.status, first.detail) == ("skipped", "dev is the first environment")
    forced = evaluate_order("prod", "staging", False, forced=True)
    assert (forced.status, forced.detail) == (
        "skipped",
        "not yet healthy in staging; order check overridden",
    )


# --------------------------------------------------------------------- output and numbers


def test_to_step_is_the_json_step_shape() -> None:
    result = GateResult("acc", "metric", "failed", "accuracy 0.912 < 0.950 required", 0.01234)
    assert result.to_step() == {
        "name": "acc",
        "status": "failed",
        "seconds": 0.012,
        "detail": "accuracy 0.912 < 0.950 required",
        "kind": "metric",
    }


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9, "0.900"),
        (1.0, "1.000"),
        (0.0, "0.000"),
        (-0.018, "-0.018"),
        (0.0004, "0.0004"),
        (42.0, "42"),
        (40.25, "40.25"),
        (123.456, "123.5"),
        (12345.6, "12346"),
    ],
)
def test_format_value(value: float, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(
    ("ratio", "text"),
    [(0.00844, "+0.8%"), (-0.0380, "-3.8%"), (0.0, "+0.0%"), (-0.0, "+0.0%"), (-0.0004, "-0.04%")],
)
def test_format_percent(ratio: float, text: str) -> None:
    assert format_percent(ratio) == text

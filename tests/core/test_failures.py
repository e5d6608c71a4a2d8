"""The failing tests of a run document: the CLI's FAILED lines, GitHub's annotations, and the
cases a suite's step carries (read from canned results, no pytest run)."""

from __future__ import annotations

import json
from typing import Any

from core.testing.failures import failure_lines, failures, github_annotations
from core.testing.results import case_from_dict
from tests.core.failing_run import FAILING, MESSAGE, MODEL_FILE, case, failing_release, suite_step

GITHUB = {"GITHUB_ACTIONS": "true"}


def test_a_suite_step_carries_each_test_and_a_failures_traceback() -> None:
    step = failing_release()["steps"][2]
    cases = step["cases"]
    assert [c["outcome"] for c in cases] == ["failed", "passed", "skipped"]
    assert cases[0]["nodeid"] == FAILING and cases[0]["message"] == MESSAGE
    assert "tests/helpers.py:12: AssertionError" in cases[0]["traceback"]
    assert "traceback" not in cases[1] and cases[2]["message"] == "no sample"
    json.dumps(step)  # what --json prints
    back = case_from_dict("model", cases[0])
    assert (back.classname, back.name) == (
        "tests.model.test_model_quality",
        "test_accuracy_on_held_out_split",
    )
    assert back.traceback == cases[0]["traceback"]


def test_failing_tests_are_named_with_their_assertion_line() -> None:
    assert failure_lines(failing_release()) == [
        f"FAILED {FAILING}: AssertionError: accuracy 0.889 < 0.9"
    ]
    errored = failing_release()
    errored["steps"].append(
        suite_step("data", [case("tests/d.py::test_x", "error", "", when="setup")], "1 error")
    )
    assert failure_lines(errored)[-1] == "ERROR tests/d.py::test_x: error"
    assert failures(errored)[-1].step == "test data"


def test_annotations_only_under_github_actions_and_only_when_failed() -> None:
    document = failing_release()
    assert github_annotations(document, env={}) == []
    assert github_annotations(document, env={"GITHUB_ACTIONS": "false"}) == []
    assert github_annotations({**document, "ok": True}, env=GITHUB) == []


def test_annotation_on_the_tests_line_escaped_as_github_reads_it() -> None:
    (line,) = github_annotations(failing_release(), env=GITHUB)
    # The test's own line (30), not the helper's where the assertion fired: the file named
    # is the test's. Newlines and the nodeid's colons are escaped, so the command is one line.
    assert line == (
        f"::error file={MODEL_FILE},line=30,"
        f"title=FAILED {MODEL_FILE}%3A%3Atest_accuracy_on_held_out_split"
        "::AssertionError: accuracy 0.889 < 0.9%0Aassert 0.8888888888888888 >= 0.9"
    )


def test_annotation_without_a_line_when_the_traceback_has_none() -> None:
    document = _with_model_cases([case(f"{MODEL_FILE}::test_p[a,b]", "failed", "50% off\r")])
    (line,) = github_annotations(document, env=GITHUB)
    assert line.startswith(f"::error file={MODEL_FILE},title=FAILED ")
    assert "test_p[a%2Cb]" in line and line.endswith("::50%25 off%0D")


def test_at_most_ten_annotations_the_tenth_counting_the_rest() -> None:
    many = [case(f"{MODEL_FILE}::test_{n}", "failed", f"assert {n}") for n in range(12)]
    lines = github_annotations(_with_model_cases(many), env=GITHUB)
    assert len(lines) == 10
    assert "test_8" in lines[8] and "test_9" not in "".join(lines)
    assert lines[9].startswith("::error title=relman::3 more failing tests")


def test_a_run_stopped_without_a_failing_test_names_its_step() -> None:
    gate = {"name": "gate", "status": "failed", "seconds": 0.1, "detail": "dev: accuracy 0.8"}
    document = {"ok": False, "steps": [{"name": "verify", "status": "passed"}, gate]}
    assert github_annotations(document, env=GITHUB) == [
        "::error title=relman%3A gate::dev: accuracy 0.8"
    ]
    bare = {"ok": False, "steps": [], "error": "tests could not run"}
    assert github_annotations(bare, env=GITHUB) == ["::error title=relman::tests could not run"]


def _with_model_cases(cases: list[Any]) -> dict[str, Any]:
    document = failing_release()
    document["steps"][2] = suite_step("model", cases, "failed")
    return document

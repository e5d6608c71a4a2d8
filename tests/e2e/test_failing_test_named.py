"""A CI release stopped by a failing model test names the test everywhere CI looks: the JSON,
the JUnit report, the Markdown summary, GitHub's annotations, and the text of `relman
release` and `relman test`. The real demo, with a regularisation its accuracy test rejects."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.e2e.served import relman, relman_json, second_release, served, served_count

pytestmark = pytest.mark.e2e
__all__ = ["served"]  # the fixture, imported for pytest

MODEL_FILE = "tests/model/test_model_quality.py"
TEST = f"{MODEL_FILE}::test_accuracy_on_held_out_split"


def test_a_failing_model_test_is_named_in_every_report(served: Path, tmp_path: Path) -> None:
    root = served
    second_release(root, c="0.01")  # the held-out accuracy falls under the test's 0.9 floor
    junit, summary = tmp_path / "release.xml", tmp_path / "summary.md"
    ci = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "", "CI": "true"}

    done = relman_json(
        root,
        "release",
        "--to",
        "staging",
        "--junit",
        str(junit),
        "--summary",
        str(summary),
        **ci,
    )
    assert done["_exit"] == 1, done["_stderr"]
    assert done["steps"][-1]["name"] == "test model" and served_count(root) == 0

    # the JSON: the step's cases, the failing one with its message and traceback
    (case,) = [c for c in done["steps"][-1]["cases"] if c["outcome"] == "failed"]
    assert case["nodeid"] == TEST
    assert case["message"].startswith("AssertionError: accuracy 0.")
    assert f"{MODEL_FILE}:" in case["traceback"]

    # JUnit: a testcase named after the test, with its assertion message
    failure = ET.parse(junit).find(
        ".//testcase[@classname='tests.model.test_model_quality']"
        "[@name='test_accuracy_on_held_out_split']/failure"
    )
    assert failure is not None, junit.read_text()
    assert (failure.get("message") or "").startswith("AssertionError: accuracy 0.")
    assert "assert accuracy >= ACCURACY_FLOOR" in (failure.text or "")

    # the summary names it with its assertion line
    text = summary.read_text()
    assert f"`{TEST}` (test model): AssertionError: accuracy 0." in text

    # GitHub's annotation, on stderr: stdout held the JSON document alone
    annotations = [line for line in done["_stderr"].splitlines() if line.startswith("::error")]
    assert len(annotations) == 1 and annotations[0].startswith(f"::error file={MODEL_FILE},line=")
    assert "::AssertionError: accuracy 0." in annotations[0]

    # the text of `relman release` and `relman test` name it too
    named = f"FAILED {TEST}: AssertionError: accuracy 0."
    for args in (["release", "--to", "staging"], ["test", "model"]):
        text_run = relman(root, "--batch", *args)
        assert text_run.returncode == 1, text_run.stderr
        assert named in text_run.stdout, text_run.stdout

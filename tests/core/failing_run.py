"""A canned run document of a release stopped by a failing model test, its steps made by the
code that makes them (SuiteResult.to_step), for the tests of the reports read from it."""

from __future__ import annotations

from typing import Any

from core.testing.results import OUTCOMES, SuiteResult, TestCaseResult

MODEL_FILE = "tests/model/test_model_quality.py"
FAILING = f"{MODEL_FILE}::test_accuracy_on_held_out_split"
MESSAGE = "AssertionError: accuracy 0.889 < 0.9\nassert 0.8888888888888888 >= 0.9"
# pytest's long traceback of a failure raised in a helper the test called: the test's own
# line is 30, the helper's 12.
TRACEBACK = f"""\
    def test_accuracy_on_held_out_split(model, held_out):
>       check_floor(accuracy)

{MODEL_FILE}:30:
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _

    def check_floor(accuracy):
>       assert accuracy >= 0.9, f"accuracy {{accuracy:.3f}} < 0.9"
E       AssertionError: accuracy 0.889 < 0.9
E       assert 0.8888888888888888 >= 0.9

tests/helpers.py:12: AssertionError"""


def case(
    nodeid: str, outcome: str, message: str = "", traceback: str = "", when: str = "call"
) -> TestCaseResult:
    path, _, name = nodeid.rpartition("::")
    classname = path.replace("/", ".").removesuffix(".py")
    return TestCaseResult("model", nodeid, classname, name, outcome, 0.05, message, traceback, when)


def suite_step(name: str, cases: list[TestCaseResult], detail: str) -> dict[str, Any]:
    """The release's ``test SUITE`` step of a suite that ran ``cases``."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for one in cases:
        counts[one.outcome] += 1
    failed = any(one.outcome in ("failed", "error") for one in cases)
    status = "failed" if failed else "passed"
    result = SuiteResult(name, status, 6.5, len(cases), counts, cases, detail, "tail", 1)
    return {**result.to_step(), "name": f"test {name}"}


def failing_release() -> dict[str, Any]:
    model = [
        case(FAILING, "failed", MESSAGE, TRACEBACK),
        case(f"{MODEL_FILE}::test_metrics_json_matches_the_model", "passed"),
        case(f"{MODEL_FILE}::test_predicts_only_known_species", "skipped", "no sample"),
    ]
    return {
        "ok": False,
        "service": "iris",
        "release": "3f2a9c0d11e4",
        "exit_code": 1,
        "error": "test model: 1 passed, 1 failed, 1 skipped in 6.5 s",
        "steps": [
            {"name": "verify", "status": "passed", "seconds": 0.25, "detail": "clean tree"},
            suite_step("unit", [case("tests/unit/test_f.py::test_rows", "passed")], "1 passed"),
            suite_step("model", model, "1 passed, 1 failed, 1 skipped in 6.5 s"),
        ],
        "environments": ["dev", "staging"],
        "seconds": 9.0,
    }

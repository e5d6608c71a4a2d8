"""core.testing.junit: the XML CI systems read, built from results (no pytest run needed here)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from core.testing.junit import junit_xml, steps_junit, suite_from_steps, write_junit
from core.testing.results import OUTCOMES, SuiteResult, TestCaseResult
from tests.core.failing_run import MESSAGE, failing_release


def case(
    nodeid: str, outcome: str, when: str = "call", message: str = "", tb: str = ""
) -> TestCaseResult:
    path, _, name = nodeid.rpartition("::")
    classname = path.replace("/", ".").removesuffix(".py")
    return TestCaseResult("unit", nodeid, classname, name, outcome, 0.25, message, tb, when)


def result(cases: list[TestCaseResult], status: str = "failed", detail: str = "") -> SuiteResult:
    counts = dict.fromkeys(OUTCOMES, 0)
    for c in cases:
        counts[c.outcome] += 1
    return SuiteResult("unit", status, 1.5, len(cases), counts, cases, detail, "tail line", 1)


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.split("\n", 1)[1])


def attrs(node: ET.Element | None) -> dict[str, str | None]:
    assert node is not None
    return {k: node.get(k) for k in ("tests", "failures", "errors", "skipped")}


def test_outcomes_map_as_pytest_junitxml_does() -> None:
    f = "tests/test_m.py::"
    cases = [
        case(f + "test_pass", "passed"),
        case(
            f + "test_fail",
            "failed",
            message="assert 1 == 2",
            tb="def test_fail():\n>   assert 1 == 2",
        ),
        case(f + "test_err", "error", "setup", "RuntimeError: broke"),
        case(f + "test_skip", "skipped", message="not today"),
        case(f + "test_xfail", "xfailed", message="known"),
        case(f + "test_xpass", "xpassed", message="lucky"),
        case(f + "test_td", "passed"),
        case(f + "test_td", "error", "teardown", "RuntimeError: td"),
        case(f + "test_both", "failed", message="assert 0"),
        case(f + "test_both", "error", "teardown", "RuntimeError: td"),
    ]
    root = parse(junit_xml([result(cases)]))
    suite = root.find("testsuite")
    # pytest counts the test that failed and then errored in teardown once.
    assert attrs(suite) == {"tests": "9", "failures": "2", "errors": "3", "skipped": "2"}
    assert attrs(root) == attrs(suite)
    assert suite is not None and suite.get("name") == "unit"
    first = suite.find("testcase")
    assert first is not None
    assert (first.get("classname"), first.get("name"), first.get("time")) == (
        "tests.test_m",
        "test_pass",
        "0.250",
    )
    failure = suite.find("testcase[@name='test_fail']/failure")
    assert failure is not None and failure.get("message") == "assert 1 == 2"
    assert failure.text is not None and ">   assert 1 == 2" in failure.text
    error = suite.find("testcase[@name='test_err']/error")
    assert (
        error is not None and error.get("message") == 'failed on setup with "RuntimeError: broke"'
    )
    xfail = suite.find("testcase[@name='test_xfail']/skipped")
    assert xfail is not None and xfail.get("type") == "pytest.xfail"
    assert suite.find("testcase[@name='test_xpass']/*") is None
    # A failing suite carries its output tail for the CI log.
    assert suite.findtext("system-out") == "tail line"


def test_failed_suite_without_failing_test_is_never_green() -> None:
    timed_out = result(
        [case("tests/t.py::test_ok", "passed")], detail="timed out after 2 s (1 of 5 done)"
    )
    suite = parse(junit_xml([timed_out])).find("testsuite")
    assert attrs(suite) == {"tests": "2", "failures": "0", "errors": "1", "skipped": "0"}
    assert suite is not None
    error = suite.find("testcase[@name='pytest']/error")
    assert error is not None and error.get("message") == "timed out after 2 s (1 of 5 done)"


def test_gate_steps_become_a_testsuite(tmp_path: Path) -> None:
    steps = [
        {"name": "accuracy-floor", "status": "passed", "seconds": 0.01, "detail": "0.96 >= 0.90"},
        {
            "name": "no-regression",
            "status": "failed",
            "seconds": 0.02,
            "detail": "accuracy 0.912 < 0.950",
        },
        {"name": "latency", "status": "skipped", "seconds": 0, "detail": "no live baseline"},
    ]
    path = tmp_path / "out" / "junit.xml"
    passed = result([case("tests/t.py::test_ok", "passed")], status="passed")
    write_junit(path, [passed], extra=[suite_from_steps("gates", steps)])
    root = ET.parse(path).getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == ["unit", "gates"]
    gates = root.find("testsuite[@name='gates']")
    assert attrs(gates) == {"tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    assert attrs(root) == {"tests": "4", "failures": "1", "errors": "0", "skipped": "1"}
    failure = root.find(".//testcase[@name='no-regression']/failure")
    assert failure is not None and failure.get("message") == "accuracy 0.912 < 0.950"
    skipped = root.find(".//testcase[@name='latency']/skipped")
    assert skipped is not None and skipped.get("message") == "no live baseline"
    assert root.find("testsuite[@name='unit']/system-out") is None
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]  # no temp file left


def test_text_xml_cannot_hold_is_dropped() -> None:
    bad = case("tests/t.py::test_bin", "failed", message="got \x00\x1b[31mred", tb="\x07bell")
    text = junit_xml([result([bad])])
    failure = parse(text).find(".//failure")
    assert failure is not None and failure.get("message") == "got [31mred"
    assert failure.text == "bell"


def test_a_release_document_has_a_testcase_per_test(tmp_path: Path) -> None:
    """`relman release --junit`: the failing test by name with its message and traceback,
    the other steps testcases of their own."""
    document = failing_release()
    document["steps"].append(
        {"name": "test data", "status": "failed", "seconds": 0.0, "detail": "pytest is missing"}
    )
    root = ET.parse(steps_junit(document, tmp_path / "release.xml")).getroot()
    names = [s.get("name") for s in root.iter("testsuite")]
    assert names == ["relman release", "test unit", "test model"]
    release = root.find("testsuite[@name='relman release']")
    assert release is not None
    assert [c.get("name") for c in release.iter("testcase")] == ["verify", "test data"]
    model = root.find("testsuite[@name='test model']")
    assert attrs(model) == {"tests": "3", "failures": "1", "errors": "0", "skipped": "1"}
    failure = root.find(
        ".//testcase[@classname='tests.model.test_model_quality']"
        "[@name='test_accuracy_on_held_out_split']/failure"
    )
    assert failure is not None and failure.get("message") == MESSAGE
    assert failure.text is not None and "tests/helpers.py:12: AssertionError" in failure.text
    assert attrs(root) == {"tests": "6", "failures": "2", "errors": "0", "skipped": "1"}


def test_a_suite_step_failed_without_a_failing_case_stays_red(tmp_path: Path) -> None:
    document = failing_release()
    document["steps"][1] = {**document["steps"][1], "status": "failed", "detail": "timed out"}
    root = ET.parse(steps_junit(document, tmp_path / "release.xml")).getroot()
    error = root.find("testsuite[@name='test unit']/testcase[@name='pytest']/error")
    assert error is not None and error.get("message") == "timed out"

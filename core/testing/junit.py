"""JUnit XML for CI systems: one ``testsuite`` per suite, one ``testcase`` per result.

The counts of each ``testsuite`` (tests, failures, errors, skipped) are the ones pytest's own
``--junitxml`` writes for the same run: xfailed counts as skipped, xpassed as passed (a strict
xpass is a failure), setup/teardown errors as errors, and a test that fails and then errors in
teardown counts once in ``tests``, as pytest counts it. Gates and other pipeline steps can be
added as a testsuite of their own (:func:`suite_from_steps`), so CI shows them beside tests.

A suite that failed without any failing test (a timeout in collection, pytest not finishing,
no tests collected) gets one error testcase carrying its detail line: a CI reading only the
XML must never see it as green.

The report of a run document (:func:`steps_junit`, e.g. ``relman release --junit``) is made of
the document alone: each step that ran a suite (one with ``cases``) becomes that suite's
testsuite, a testcase per test with its message and traceback, as ``relman test --junit``
writes it; the other steps (verify, gate, build, each promotion's steps) stay testcases of
one testsuite of their own.
"""

from __future__ import annotations

import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UsageError
from core.testing.results import OUTCOMES, SuiteResult, case_from_dict

# Characters XML 1.0 cannot hold (pytest's bin_xml_escape drops the same).
_ILLEGAL_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MESSAGE_LIMIT = 1000


@dataclass(frozen=True)
class JUnitCase:
    classname: str
    name: str
    seconds: float = 0.0
    kind: str = "passed"  # "passed" | "failure" | "error" | "skipped"
    message: str = ""
    text: str = ""  # the traceback, or other lines shown under the message
    skip_type: str = "pytest.skip"


@dataclass(frozen=True)
class JUnitSuite:
    name: str
    cases: list[JUnitCase]
    seconds: float = 0.0
    # pytest's `tests` count when it differs from len(cases); None: len(cases).
    tests: int | None = None
    system_out: str = ""

    def counts(self) -> dict[str, int]:
        kinds = [case.kind for case in self.cases]
        return {
            "tests": len(self.cases) if self.tests is None else self.tests,
            "failures": kinds.count("failure"),
            "errors": kinds.count("error"),
            "skipped": kinds.count("skipped"),
        }


_KIND = {
    "passed": "passed",
    "xpassed": "passed",
    "failed": "failure",
    "error": "error",
    "skipped": "skipped",
    "xfailed": "skipped",
}


def suite_from_result(result: SuiteResult) -> JUnitSuite:
    cases = [
        JUnitCase(
            classname=case.classname,
            name=case.name,
            seconds=case.seconds,
            kind=_KIND.get(case.outcome, "error"),
            message=_error_message(case.outcome, case.when, case.message),
            text=case.traceback,
            skip_type="pytest.xfail" if case.outcome == "xfailed" else "pytest.skip",
        )
        for case in result.cases
    ]
    # pytest opens a second testcase for a test that failed and then errored in teardown,
    # but counts the test once.
    failed = {c.nodeid for c in result.cases if c.outcome == "failed" and c.when == "call"}
    doubled = sum(
        1
        for c in result.cases
        if c.when == "teardown" and c.outcome == "error" and c.nodeid in failed
    )
    if result.status == "failed" and not any(c.kind in ("failure", "error") for c in cases):
        cases.append(JUnitCase(result.name, "pytest", result.seconds, "error", result.detail))
    failed_run = result.status == "failed"
    return JUnitSuite(
        name=result.name,
        cases=cases,
        seconds=result.seconds,
        tests=len(cases) - doubled,
        system_out=result.output_tail if failed_run else "",
    )


def suite_from_step(step: Mapping[str, Any]) -> JUnitSuite:
    """The testsuite of a run document's step that ran a suite (it has ``cases``): one
    testcase per test, as :func:`suite_from_result` makes them."""
    name = str(step.get("name", ""))
    cases = [case_from_dict(name, c) for c in step.get("cases") or [] if isinstance(c, Mapping)]
    counts = step.get("counts")
    result = SuiteResult(
        name=name,
        status="passed" if step.get("status") == "passed" else "failed",
        seconds=float(step.get("seconds") or 0.0),
        collected=len(cases),
        counts=dict(counts) if isinstance(counts, Mapping) else dict.fromkeys(OUTCOMES, 0),
        cases=cases,
        detail=str(step.get("detail", "")),
        output_tail="",
        exit_code=0,
    )
    return suite_from_result(result)


def suite_from_steps(name: str, steps: Iterable[Mapping[str, Any]]) -> JUnitSuite:
    """A testsuite of run steps (docs/json.md: {"name", "status", "seconds", "detail"}): e.g.
    gates."""
    cases = []
    for step in steps:
        status = str(step.get("status", ""))
        detail = str(step.get("detail", ""))
        kind = {"passed": "passed", "failed": "failure", "skipped": "skipped"}.get(status, "error")
        if kind == "error":
            detail = detail or f"unknown status {status!r}"
        cases.append(
            JUnitCase(
                classname=name,
                name=str(step.get("name", "")),
                seconds=float(step.get("seconds") or 0.0),
                kind=kind,
                message=detail if kind != "passed" else "",
                skip_type="relman.skip",
            )
        )
    return JUnitSuite(name=name, cases=cases, seconds=sum(c.seconds for c in cases))


def junit_xml(suites: list[SuiteResult], extra: list[JUnitSuite] | None = None) -> str:
    junit_suites = [suite_from_result(result) for result in suites] + list(extra or [])
    root = ET.Element("testsuites", name="relman")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    for suite in junit_suites:
        counts = suite.counts()
        for key in totals:
            totals[key] += counts[key]
        attributes = {key: str(value) for key, value in counts.items()}
        attributes["time"] = f"{suite.seconds:.3f}"
        node = ET.SubElement(root, "testsuite", {"name": suite.name, **attributes})
        for case in suite.cases:
            node.append(_testcase(case))
        if suite.system_out:
            ET.SubElement(node, "system-out").text = _clean(suite.system_out)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{sum(s.seconds for s in junit_suites):.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def write_junit(
    path: Path, suites: list[SuiteResult], extra: list[JUnitSuite] | None = None
) -> None:
    """Write the report atomically: a CI step never reads half a file."""
    text = junit_xml(suites, extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def steps_junit(document: Mapping[str, Any], path: Path) -> Path:
    """JUnit of a run document's ``steps``: one testsuite "relman release" of the steps, and
    one testsuite per step that ran a suite, a testcase per test.

    A path that cannot be written is a UsageError naming it (it came from the command line).
    """
    steps = [step for step in document.get("steps") or [] if isinstance(step, Mapping)]
    ran = [isinstance(step.get("cases"), list) for step in steps]
    others = [step for step, tests in zip(steps, ran, strict=True) if not tests]
    suites = [suite_from_steps("relman release", others)]
    suites += [suite_from_step(step) for step, tests in zip(steps, ran, strict=True) if tests]
    try:
        write_junit(Path(path), [], suites)
    except OSError as exc:
        raise UsageError(
            f"cannot write the JUnit report to {path}: {exc.strerror or exc}; "
            "pass a writable path to --junit"
        ) from exc
    return Path(path)


def _testcase(case: JUnitCase) -> ET.Element:
    node = ET.Element(
        "testcase",
        classname=_clean(case.classname),
        name=_clean(case.name),
        time=f"{case.seconds:.3f}",
    )
    message = _clean(case.message)[:MESSAGE_LIMIT]
    if case.kind in ("failure", "error"):
        child = ET.SubElement(node, case.kind, message=message)
        child.text = _clean(case.text) or None
    elif case.kind == "skipped":
        ET.SubElement(node, "skipped", type=case.skip_type, message=message)
    return node


def _error_message(outcome: str, when: str, message: str) -> str:
    # Worded as pytest's junitxml words them, which CI users already know.
    if outcome == "error" and when in ("setup", "teardown"):
        return f'failed on {when} with "{message}"'
    if outcome == "error" and when == "collect":
        return f"collection failure: {message}"
    return message


def _clean(text: str) -> str:
    return _ILLEGAL_XML.sub("", text)

"""The failing tests of a run document, as every report names them.

A run that ran suites (``relman test``, ``relman release``) carries each suite's tests in the
suite's step as ``cases`` (docs/json.md). The reports made from the document read them back
here: the command line's ``FAILED nodeid: message`` lines (worded as the TUI's run screen
words them), the Markdown summary's list of failing tests, and GitHub's workflow commands
(``::error file=...,line=...,title=...::message``) that put each failure on its line of the
test file in the job's page and the pull request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.testing.results import FAILING

__all__ = ["ANNOTATION_LIMIT", "Failure", "failure_lines", "failures", "github_annotations"]

# GitHub shows at most 10 error annotations of one step and drops the rest silently (the
# "Limitations" of actions/toolkit's problem-matchers page): the tenth says how many are left.
ANNOTATION_LIMIT = 10
# ``tests/model/test_quality.py:30: AssertionError``: where pytest's long traceback says an
# entry failed, relative to the folder pytest ran in (the project's root).
_WHERE = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?: |$)")


@dataclass(frozen=True)
class Failure:
    """One failed or errored test of a step."""

    step: str  # the step that ran it: "test model", or "iris: test model" with services
    nodeid: str
    outcome: str  # "failed" | "error"
    message: str  # pytest's message; may span lines
    traceback: str = ""

    @property
    def headline(self) -> str:
        """The message's first line: ``AssertionError: accuracy 0.889 < 0.9``."""
        lines = [line.strip() for line in self.message.splitlines() if line.strip()]
        return lines[0] if lines else self.outcome

    @property
    def line(self) -> str:
        """``FAILED tests/m.py::test_x: AssertionError: ...``, as the TUI's run screen says."""
        return f"{self.outcome.upper()} {self.nodeid}: {self.headline}"

    @property
    def path(self) -> str:
        """The test's file, as pytest's nodeid names it (relative to the project's root)."""
        return self.nodeid.split("::", 1)[0]

    @property
    def lineno(self) -> int | None:
        """The line of the test's file where it failed: the last traceback entry in that
        file (the test's own line even when the assertion fired in a helper), else None."""
        found = None
        for text in self.traceback.splitlines():
            match = _WHERE.match(text)
            if match and match["path"] == self.path:
                found = int(match["line"])
        return found


def failures(document: Mapping[str, Any]) -> list[Failure]:
    """The failed and errored tests of the document's steps, in the order they ran."""
    found = []
    for step in _steps(document):
        for case in step.get("cases") or []:
            if isinstance(case, Mapping) and case.get("outcome") in FAILING:
                found.append(
                    Failure(
                        step=str(step.get("name", "")),
                        nodeid=str(case.get("nodeid", "")),
                        outcome=str(case["outcome"]),
                        message=str(case.get("message") or ""),
                        traceback=str(case.get("traceback") or ""),
                    )
                )
    return found


def failure_lines(document: Mapping[str, Any]) -> list[str]:
    """``FAILED nodeid: message`` for each failing test of the document."""
    return [failure.line for failure in failures(document)]


def github_annotations(
    document: Mapping[str, Any], env: Mapping[str, str] = os.environ
) -> list[str]:
    """The ``::error`` workflow commands of a failed run, when GitHub Actions runs it
    (``GITHUB_ACTIONS=true``); none otherwise, and none for a run that went through.

    One per failing test, on its file and line; a run that failed without a failing test
    (a gate, a build, a suite that never ran) gets one naming the step that stopped it.
    """
    if env.get("GITHUB_ACTIONS") != "true" or document.get("ok", True):
        return []
    failed = failures(document)
    if not failed:
        step = next((s for s in _steps(document) if s.get("status") == "failed"), None)
        title = f"relman: {step.get('name')}" if step is not None else "relman"
        detail = step.get("detail") if step is not None else None
        return [_command({"title": title}, str(detail or document.get("error") or "failed"))]
    shown = failed if len(failed) <= ANNOTATION_LIMIT else failed[: ANNOTATION_LIMIT - 1]
    lines = []
    for failure in shown:
        properties: dict[str, str] = {"file": failure.path}
        if failure.lineno is not None:
            properties["line"] = str(failure.lineno)
        properties["title"] = f"{failure.outcome.upper()} {failure.nodeid}"
        lines.append(_command(properties, failure.message or failure.headline))
    if len(shown) < len(failed):
        more = len(failed) - len(shown)
        lines.append(
            _command(
                {"title": "relman"},
                f"{more} more failing tests (GitHub shows {ANNOTATION_LIMIT} annotations a "
                "step): the JUnit report and the job summary name them all",
            )
        )
    return lines


def _steps(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [step for step in document.get("steps") or [] if isinstance(step, Mapping)]


def _command(properties: Mapping[str, str], message: str) -> str:
    """``::error k=v,...::message``, escaped as GitHub's toolkit escapes them (its
    escapeProperty and escapeData): a newline or comma can never end the command early."""
    shown = ",".join(
        f"{key}={_escape(value, in_property=True)}" for key, value in properties.items()
    )
    return f"::error {shown}::{_escape(message)}" if shown else f"::error::{_escape(message)}"


def _escape(text: str, *, in_property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if in_property:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text

"""The release run's Markdown summary, $GITHUB_STEP_SUMMARY, and its steps as JUnit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from core.delivery.summary import human_duration, human_size, markdown_summary, write_summary
from core.errors import EXIT_USAGE, UsageError
from core.testing.junit import steps_junit
from tests.core.failing_run import FAILING, case, failing_release, suite_step


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "ok": False,
        "service": "iris",
        "release": "3f2a9c0d11e4",
        "version": "v1.3.0",
        "steps": [
            {"name": "verify", "status": "passed", "seconds": 0.42, "detail": "clean tree"},
            {"name": "test unit", "status": "passed", "seconds": 83.0, "detail": "12 passed"},
            {
                "name": "gate prod",
                "status": "failed",
                "seconds": 0.01,
                "detail": "accuracy 0.912 < 0.950 | prod baseline\n0.948",
            },
            {"name": "deploy prod", "status": "skipped", "seconds": 0, "detail": "blocked"},
        ],
        "lineage": {
            "git": {"commit": "a1b2c3d4e5f6a7b8c9d0", "branch": "main", "dirty": False},
            "model": [
                {
                    "name": "clf",
                    "path": "models/model.pkl",
                    "md5": "0123456789abcdef0123456789abcdef",
                    "size": 1536,
                }
            ],
            "data": [
                {"path": "data/iris.csv", "md5": "fedcba98765432100123", "size": 3 * 2**20},
                {"path": "data/features", "md5": "abcdef0123456789.dir", "size": 10, "nfiles": 2},
            ],
            "params": {"params.yaml": {"lr": 0.1, "train": {"epochs": 5}}},
            "metrics": {"metrics.json": {"accuracy": 0.912345678}},
        },
        "environments": ["dev", "staging"],
        "seconds": 95.5,
    }
    doc.update(changes)
    return doc


def test_failed_run_summary() -> None:
    text = markdown_summary(document())
    lines = text.splitlines()

    assert lines[0] == "## ❌ iris v1.3.0: release failed"
    assert "Release `3f2a9c0d11e4`" in lines
    # The first failure is quoted above the table, one line.
    assert "> **gate prod**: accuracy 0.912 &lt; 0.950 | prod baseline 0.948" in lines
    table = lines[lines.index("| | Step | Time | Detail |") :]
    assert table[1] == "| :-: | --- | ---: | --- |"
    assert table[2:6] == [
        "| ✅ | verify | 0.4 s | clean tree |",
        "| ✅ | test unit | 1 min 23 s | 12 passed |",
        "| ❌ | gate prod | 0.0 s | accuracy 0.912 &lt; 0.950 \\| prod baseline 0.948 |",
        "| ⏭️ | deploy prod |  | blocked |",
    ]
    assert table[6] == ""
    # Every row has the same number of unescaped cell separators.
    for row in table[:6]:
        assert row.replace("\\|", "").count("|") == 5


def test_lineage_section() -> None:
    text = markdown_summary(document())

    section = text.split("### Lineage\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section == [
        "- **Commit**: `a1b2c3d4e5f6` on `main`",
        "- **Model**: clf (`models/model.pkl`) · md5 `01234567` · 1.5 KiB",
        "- **Data**:",
        "  - `data/iris.csv` · md5 `fedcba98` · 3.0 MiB",
        "  - `data/features` · md5 `abcdef01` · 10 B · 2 files",
        "- **Params**: `lr=0.1`, `train.epochs=5`",
        "- **Metrics**: `accuracy=0.912346`",
    ]
    assert text.endswith("Total: 1 min 36 s\n")


def test_successful_run_title_and_no_failure_quote() -> None:
    steps = [{"name": "deploy dev", "status": "passed", "seconds": 2.0, "detail": "live"}]
    text = markdown_summary(
        document(ok=True, steps=steps, environments=[{"name": "dev"}, {"name": "prod"}])
    )

    assert text.startswith("## ✅ iris v1.3.0 released to dev, prod\n")
    assert "> " not in text


def test_sparse_document_leaves_out_what_it_lacks() -> None:
    text = markdown_summary({"ok": False, "error": "relman.toml:3: unknown key 'x'", "steps": []})

    assert text == "## ❌ release: release failed\n\n> relman.toml:3: unknown key 'x'\n"


def test_flat_params_and_html_in_names() -> None:
    doc = document(steps=[{"name": "<b>x</b>", "status": "odd", "seconds": None, "detail": ""}])
    doc["lineage"] = {"params": {"lr": 0.5, "deep": {"k": 1}}}

    text = markdown_summary(doc)

    assert "| ❔ | &lt;b&gt;x&lt;/b&gt; |  |  |" in text
    assert "- **Params**: `lr=0.5`, `deep.k=1`" in text


def test_human_units() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 5 * 2**30, None, -1)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "5.0 GiB",
        "",
        "",
    ]
    assert [human_duration(s) for s in (0, 59.94, 60, 3725, None)] == [
        "0.0 s",
        "59.9 s",
        "1 min 0 s",
        "1 h 2 min",
        "",
    ]


def test_write_summary_writes_the_file_and_appends_to_github(tmp_path: Path) -> None:
    github = tmp_path / "step_summary.md"
    github.write_text("## earlier step\n", encoding="utf-8")
    out = tmp_path / "out" / "summary.md"
    doc = document()

    written = write_summary(doc, out, github_env={"GITHUB_STEP_SUMMARY": str(github)})
    write_summary(doc, out, github_env={"GITHUB_STEP_SUMMARY": str(github)})

    assert written == [out, github]
    assert out.read_text(encoding="utf-8") == markdown_summary(doc)  # replaced, not appended
    assert github.read_text(encoding="utf-8") == (
        "## earlier step\n" + ("\n" + markdown_summary(doc)) * 2
    )


def test_write_summary_without_path_or_github(tmp_path: Path) -> None:
    assert write_summary(document(), None, github_env={}) == []
    assert write_summary(document(), None, github_env={"GITHUB_STEP_SUMMARY": ""}) == []
    # The same file given twice is written once.
    github = tmp_path / "s.md"
    assert write_summary(document(), github, github_env={"GITHUB_STEP_SUMMARY": str(github)}) == [
        github
    ]
    assert github.read_text(encoding="utf-8") == markdown_summary(document())


def test_unwritable_paths_are_usage_errors_naming_them(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")

    with pytest.raises(UsageError, match=r"cannot write the summary to .*file/summary\.md"):
        write_summary(document(), blocker / "summary.md", github_env={})
    with pytest.raises(UsageError, match=r"\$GITHUB_STEP_SUMMARY \(.*/file/x\.md\)") as caught:
        write_summary(document(), None, github_env={"GITHUB_STEP_SUMMARY": str(blocker / "x.md")})
    assert caught.value.exit_code == EXIT_USAGE
    assert "\n" not in str(caught.value)
    with pytest.raises(UsageError, match=r"cannot write the JUnit report to .*file/j\.xml"):
        steps_junit(document(), blocker / "j.xml")


def test_steps_junit(tmp_path: Path) -> None:
    path = steps_junit(document(), tmp_path / "reports" / "release.xml")

    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["relman release"]
    suite = suites[0]
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "4",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
    }
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["verify", "test unit", "gate prod", "deploy prod"]
    failure = cases[2].find("failure")
    assert failure is not None
    assert failure.get("message") == "accuracy 0.912 < 0.950 | prod baseline\n0.948"
    skipped = cases[3].find("skipped")
    assert skipped is not None and skipped.get("message") == "blocked"
    assert cases[0].find("failure") is None and cases[0].get("time") == "0.420"


def test_failing_tests_listed_with_their_assertion_line() -> None:
    text = markdown_summary(failing_release())
    lines = text.splitlines()
    listed = lines.index("### Failing tests")
    assert lines[listed + 2] == (
        f"- ❌ `{FAILING}` (test model): AssertionError: accuracy 0.889 &lt; 0.9"
    )
    assert listed < lines.index("| | Step | Time | Detail |")  # before the steps table
    assert "### Failing tests" not in markdown_summary(document())  # none without cases


def test_many_failing_tests_are_counted_past_twenty() -> None:
    many = [case(f"tests/t.py::test_{n}", "failed", f"assert {n}") for n in range(23)]
    failing = failing_release()
    failing["steps"][2] = suite_step("model", many, "23 failed")
    lines = markdown_summary(failing).splitlines()
    assert "- ❌ `tests/t.py::test_19` (test model): assert 19" in lines
    assert "tests/t.py::test_20" not in "\n".join(lines)
    assert "- and 3 more failing tests" in lines

"""The contract lives in the repository: code, tests and docs cite docs/ pages that exist,
never a design file kept outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("core", "store", "tui", "screens", "docs", "tests", "benchmarks")
# Spelled in two parts, so that this file does not cite it either.
OUTSIDE = "DESIGN" + ".md"
CITATION = re.compile(r"\bdocs/([a-z0-9-]+\.md|schemas/[a-z0-9-]+\.json)")


def _texts() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*")):
            if (
                path.suffix in {".py", ".md", ".toml", ".tcss"}
                and "demo_template" not in path.parts
            ):
                found.append(path)
    return found


def test_nothing_cites_the_design_file_outside_the_repository() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in _texts()
        if OUTSIDE in path.read_text(encoding="utf-8")
    ]
    assert not citing, f"cite the docs/ page that says it instead: {citing}"


def test_every_docs_page_cited_exists() -> None:
    cited = [
        (str(path.relative_to(ROOT)), name)
        for path in _texts()
        for name in CITATION.findall(path.read_text(encoding="utf-8"))
    ]
    assert ("core/documents.py", "json.md") in cited  # the scan sees citations at all
    missing = sorted(
        f"{where}: docs/{name}" for where, name in cited if not (ROOT / "docs" / name).is_file()
    )
    assert not missing, missing

"""docs/schemas/ is what core/documents.py generates, the schemas say what a script may rely
on (and reject a document that breaks it), and the TUI's canned fixtures fit them."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from core.documents import SCHEMAS as GENERATED
from core.documents import schema_files
from tests.contract.schemas import SCHEMAS, problems
from tests.tui import canned, canned_live

ROOT = Path(__file__).resolve().parents[2]
# The canned answers ignore the project they are asked about.
PROJECT: Any = None


# ------------------------------------------------------------------------ no drift


def test_committed_schemas_are_what_the_types_generate() -> None:
    stale = [
        name
        for name, text in schema_files().items()
        if not (SCHEMAS / name).exists() or (SCHEMAS / name).read_text(encoding="utf-8") != text
    ]
    assert not stale, (
        f"docs/schemas/ differs from core/documents.py for {', '.join(stale)}: run "
        "'python -m core.documents --write docs/schemas' and commit the result"
    )


def test_docs_schemas_holds_no_schema_the_code_does_not_generate() -> None:
    assert sorted(path.name for path in SCHEMAS.glob("*.json")) == sorted(GENERATED)


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_the_generator_command_writes_then_finds_nothing_to_do(tmp_path: Path) -> None:
    def generator(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "core.documents", *args, str(tmp_path)]
        return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)

    assert generator("--check").returncode == 1  # an empty folder is out of date
    assert generator("--write").returncode == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(GENERATED)
    assert generator("--check").returncode == 0
    (tmp_path / "status.json").write_text("{}\n", encoding="utf-8")
    checked = generator("--check")
    assert checked.returncode == 1
    assert "status.json" in checked.stderr


# ------------------------------------------------------------- what the schemas say


def test_the_fixed_fields_of_a_step_are_required_and_status_is_one_of_three() -> None:
    schema = json.loads((SCHEMAS / "step.json").read_text(encoding="utf-8"))
    assert schema["required"] == ["name", "status", "seconds", "detail"]
    assert schema["properties"]["status"]["enum"] == ["passed", "failed", "skipped"]
    run = json.loads((SCHEMAS / "run.json").read_text(encoding="utf-8"))
    assert run["required"] == ["ok", "steps"]


def _without(document: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """A deep copy of ``document`` with the key at ``path`` removed."""
    broken = copy.deepcopy(document)
    parent: Any = broken
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return broken


# A canned document of each schema, made afresh for each test.
CANNED: dict[str, Any] = {
    "status.json": lambda: canned.status(PROJECT),
    "history.json": lambda: canned.history(PROJECT),
    "metrics.json": lambda: canned_live.metrics(PROJECT, "shop", "prod"),
    "alerts.json": lambda: canned_live.alerts(PROJECT),
    "gate.json": lambda: canned.gate(PROJECT, "shop", "prod"),
    "run.json": lambda: canned.deploy_document("promote", "prod", canned.PROD, "v1.3.2"),
}


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ("status.json", ("ok",)),
        ("status.json", ("services", 0, "candidate", "git")),
        ("status.json", ("services", 0, "candidate", "data", 0, "md5")),
        ("status.json", ("services", 0, "environments", "prod", "since")),
        ("history.json", ("entries", 0, "summary")),
        ("metrics.json", ("points", 0, "p99_ms")),
        ("alerts.json", ("alerts", 0, "rollback")),
        ("gate.json", ("steps", 2, "detail")),
        ("run.json", ("steps",)),
    ],
    ids=lambda value: "/".join(map(str, value)) if isinstance(value, tuple) else value,
)
def test_a_document_missing_a_required_field_is_rejected(
    schema: str, path: tuple[str | int, ...]
) -> None:
    document = CANNED[schema]()
    assert problems(schema, document) == []  # whole, it passes: the key is what fails
    found = problems(schema, _without(document, *path))
    assert found, f"{schema} took a document without {'/'.join(map(str, path))}"
    assert any(repr(path[-1]) in line and "required" in line for line in found), found


def test_a_wrong_type_or_an_unknown_status_is_rejected() -> None:
    gate = canned.gate(PROJECT, "shop", "prod")
    gate["steps"][0]["status"] = "running"
    assert problems("gate.json", gate)
    metrics = canned_live.metrics(PROJECT, "shop", "prod")
    metrics["points"][0]["rps"] = None  # rps is always a number; only percentiles may be null
    assert problems("metrics.json", metrics)
    status = canned.status(PROJECT)
    status["services"][0]["candidate"]["git"]["dirty"] = "no"
    assert problems("status.json", status)


def test_fields_may_be_added_to_any_document() -> None:
    status = canned.status(PROJECT)
    status["added_later"] = {"anything": [1, 2]}
    status["services"][0]["candidate"]["git"]["signed"] = True
    assert problems("status.json", status) == []


def test_nullable_fields_take_null() -> None:
    metrics = canned_live.metrics(PROJECT, "shop", "dev")
    metrics["points"][0].update(p50_ms=None, p95_ms=None, p99_ms=None)
    assert problems("metrics.json", metrics) == []
    alerts = canned_live.alerts(PROJECT)
    alerts["collector"] = None
    alerts["alerts"][0]["release"] = None
    assert problems("alerts.json", alerts) == []


# ------------------------------------------------------------- the TUI's fixtures


def test_canned_status_and_history_fit_their_schemas() -> None:
    assert problems("status.json", canned.status(PROJECT)) == []
    assert problems("history.json", canned.history(PROJECT)) == []
    assert problems("history.json", canned.history(PROJECT, env="prod", limit=1)) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
@pytest.mark.parametrize("range_", ["5m", "1h", "24h"])
def test_canned_metrics_fit_the_schema(env: str, range_: str) -> None:
    document = canned_live.metrics(PROJECT, "shop", env, range_)
    assert document["points"], "a canned series without points checks nothing of a point"
    assert problems("metrics.json", document) == []


def test_canned_alerts_fit_the_schema() -> None:
    document = canned_live.alerts(PROJECT)
    assert {alert["state"] for alert in document["alerts"]} == {"firing", "pending", "resolved"}
    assert problems("alerts.json", document) == []


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_canned_gate_fits_the_gate_and_run_schemas(env: str) -> None:
    document = canned.gate(PROJECT, "shop", env)
    assert problems("gate.json", document) == []
    assert problems("run.json", document) == []


@pytest.mark.parametrize("kind", ["promote", "rollback"])
@pytest.mark.parametrize("error", [None, "prod needs 1 approval; has 0"])
def test_canned_promote_and_rollback_fit_the_deploy_and_run_schemas(
    kind: str, error: str | None
) -> None:
    document = canned.deploy_document(
        kind, "prod", canned.PROD, "v1.3.2", error=error, exit_code=1 if error else 0
    )
    assert problems("deploy.json", document) == []
    assert problems("run.json", document) == []

"""The sample request relman init writes for a BentoML service someone else wrote
(core/scaffold/request_sample.py): each body is checked by BentoML's own input validation,
the ``model_validate_json`` its HTTP server runs on a request's body."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.scaffold.request_sample import build_request, service_sample
from core.scaffold.service_sample import read_csv

SERVICE = """\
from __future__ import annotations

import typing as t

import bentoml
import numpy as np
import pandas as pd
from bentoml.validators import DataframeSchema, Shape
from pydantic import BaseModel, Field


class Customer(BaseModel):
    tenure: int
    monthly_charges: float = Field(alias="MonthlyCharges")
    plan: t.Literal["basic", "pro"]
    paperless: bool
    region: t.Optional[str] = None
    discount: float = 0.0
    score: float


@bentoml.service
class Churn:
    @bentoml.api
    def predict(self, customer: Customer) -> float:
        return float(customer.tenure)

    @bentoml.api
    def many(self, customers: t.List[Customer], threshold: float = 0.5) -> t.List[float]:
        return [float(c.tenure) for c in customers]

    @bentoml.api
    def frame(self, df: pd.DataFrame) -> t.List[float]:
        return [float(v) for v in df["tenure"]]

    @bentoml.api
    def columns(
        self,
        df: t.Annotated[
            pd.DataFrame, DataframeSchema(orient="columns", columns=["tenure", "MonthlyCharges"])
        ],
    ) -> t.List[float]:
        return [float(v) for v in df["MonthlyCharges"]]

    @bentoml.api
    def root(self, customer: Customer, /) -> float:
        return float(customer.tenure)

    @bentoml.api
    def matrix(self, x: t.List[t.List[float]]) -> t.List[float]:
        return [sum(row) for row in x]

    @bentoml.api
    def array(self, x: t.Annotated[np.ndarray, Shape((-1, 3))]) -> t.List[float]:
        return [float(row.sum()) for row in x]
"""

CSV = """\
customer_id,tenure,MonthlyCharges,plan,paperless,region,churned
7,,20.5,basic,1,north,0
8,12,70.25,pro,0,south,1
9,30,99.0,basic,1,east,0
"""


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """A folder with the service and its training data; the service as BentoML loads it."""
    from bentoml._internal.service.loader import import_service

    root = tmp_path_factory.mktemp("churn")
    (root / "service.py").write_text(SERVICE)
    (root / "data").mkdir()
    (root / "data" / "customers.csv").write_text(CSV)
    service = import_service("service:Churn", working_dir=str(root))
    try:
        yield root, service
    finally:
        sys.modules.pop("service", None)


def _request(service: Any, api: str, root: Path) -> tuple[Any, list[str]]:
    spec = service.apis[api].input_spec
    header, records = read_csv(root / "data" / "customers.csv")
    return build_request(
        spec.model_json_schema(),
        bool(getattr(spec, "__root_input__", False)),
        header,
        records,
        "data/customers.csv",
    )


def _validated(service: Any, api: str, body: Any) -> Any:
    """The body as BentoML's HTTP server parses it (JSONSerde.deserialize_model)."""
    return service.apis[api].input_spec.model_validate_json(json.dumps(body))


def test_a_pydantic_model_is_filled_from_a_row_of_the_data(churn: tuple[Path, Any]) -> None:
    root, service = churn
    body, notes = _request(service, "predict", root)
    # The first complete row (7 has no tenure); MonthlyCharges by its alias, the bool from
    # 0/1, region an Optional filled because a column has it, discount left to its default.
    assert body == {
        "customer": {
            "tenure": 12,
            "MonthlyCharges": 70.25,
            "plan": "pro",
            "paperless": False,
            "region": "south",
            "score": 0.0,
        }
    }
    assert notes == [
        "placeholders in the sample request: score (no column of data/customers.csv is "
        "named like it): put real values in sample_request.json"
    ]
    parsed = _validated(service, "predict", body)
    assert parsed.customer.monthly_charges == 70.25 and parsed.customer.discount == 0.0


def test_a_list_of_models_is_two_rows(churn: tuple[Path, Any]) -> None:
    root, service = churn
    body, _notes = _request(service, "many", root)
    assert [c["tenure"] for c in body["customers"]] == [12, 30]
    assert "threshold" not in body  # a parameter with a default and no column
    assert len(_validated(service, "many", body).customers) == 2


def test_a_dataframe_is_records_of_the_data_without_its_label(churn: tuple[Path, Any]) -> None:
    root, service = churn
    body, notes = _request(service, "frame", root)
    assert body == {
        "df": [
            {
                "customer_id": 8,
                "tenure": 12,
                "MonthlyCharges": 70.25,
                "plan": "pro",
                "paperless": 0,
                "region": "south",
            },
            {
                "customer_id": 9,
                "tenure": 30,
                "MonthlyCharges": 99.0,
                "plan": "basic",
                "paperless": 1,
                "region": "east",
            },
        ]
    }
    assert notes == []
    frame = _validated(service, "frame", body).df
    assert list(frame["tenure"]) == [12, 30] and "churned" not in frame.columns


def test_a_dataframe_in_columns_orient_with_its_own_columns(churn: tuple[Path, Any]) -> None:
    root, service = churn
    body, _notes = _request(service, "columns", root)
    assert body == {"df": {"tenure": [12, 30], "MonthlyCharges": [70.25, 99.0]}}
    frame = _validated(service, "columns", body).df
    assert list(frame.columns) == ["tenure", "MonthlyCharges"] and len(frame) == 2


def test_a_positional_only_model_is_the_whole_body(churn: tuple[Path, Any]) -> None:
    root, service = churn
    body, _notes = _request(service, "root", root)
    assert body["tenure"] == 12 and "customer" not in body
    assert _validated(service, "root", body).tenure == 12


@pytest.mark.parametrize("api", ["matrix", "array"])
def test_lists_of_rows_and_arrays_are_the_numeric_columns(
    churn: tuple[Path, Any], api: str
) -> None:
    root, service = churn
    body, _notes = _request(service, api, root)
    assert body == {"x": [[8, 12, 70.25, 0], [9, 30, 99.0, 1]]}
    if api == "matrix":
        assert _validated(service, api, body).x[1] == [9, 30, 99.0, 1]


def test_the_service_is_read_in_a_child_process_and_its_predict_api_chosen(
    churn: tuple[Path, Any],
) -> None:
    root, _service = churn
    sample = service_sample(root, root, "service:Churn", ["data/customers.csv"])
    assert sample.endpoint == "predict"
    assert sample.body["customer"]["tenure"] == 12


def test_a_service_that_cannot_be_imported_gets_no_sample_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "service.py").write_text("import not_a_module_anywhere\n")
    sample = service_sample(tmp_path, tmp_path, "service:Svc", [])
    assert sample.body is None
    [note] = sample.notes
    assert note.startswith("no sample request written: service:Svc: cannot import it here (")
    assert "not_a_module_anywhere" in note and "write sample_request.json" in note


def test_without_data_the_required_fields_are_placeholders(churn: tuple[Path, Any]) -> None:
    _root, service = churn
    spec = service.apis["predict"].input_spec
    body, notes = build_request(spec.model_json_schema(), False, [], [], None)
    assert body == {
        "customer": {
            "tenure": 0,
            "MonthlyCharges": 0.0,
            "plan": "basic",
            "paperless": False,
            "score": 0.0,
        }
    }
    assert notes and "(no CSV among its data)" in notes[0]
    _validated(service, "predict", body)

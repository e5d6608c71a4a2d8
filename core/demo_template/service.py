"""The BentoML service of the demo: classify iris flowers, log every prediction.

Each request's inputs and predictions go to ``bentoml.monitor("iris")``; BentoML's default
monitor writes them as JSON lines (with a timestamp, request_id and trace_id it adds itself)
under ``monitoring/iris/data/``, where relman's collector reads them for drift and for joining
late ground truth (``relman feedback``).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import bentoml
from bentoml.exceptions import InvalidArgument

from src.features import FEATURE_NAMES, engineer, to_matrix

MODEL_PATH = Path(__file__).resolve().parent / "models" / "model.pkl"


@bentoml.service(traffic={"timeout": 10})
class IrisClassifier:
    def __init__(self) -> None:
        with open(MODEL_PATH, "rb") as handle:
            self.model = pickle.load(handle)

    @bentoml.api
    def predict(self, features: list[list[float]]) -> list[str]:
        """The species of each flower, from rows of four measurements (cm)."""
        try:
            matrix = to_matrix(features)
        except ValueError as exc:
            # A 400 with the reason, not a 500: the caller sent a bad request body.
            raise InvalidArgument(str(exc)) from exc
        predictions = [str(label) for label in self.model.predict(engineer(matrix))]
        with bentoml.monitor("iris") as monitor:
            # One monitor record per row: the four measurements and the predicted species.
            for values, prediction in zip(matrix, predictions, strict=True):
                for name, value in zip(FEATURE_NAMES, values, strict=True):
                    monitor.log(float(value), name=name, role="feature", data_type="numerical")
                monitor.log(
                    prediction, name="prediction", role="prediction", data_type="categorical"
                )
        return predictions

"""The BentoML service of the demo: classify iris flowers, log every prediction.

Each request's inputs and predictions go to ``bentoml.monitor("iris")``; BentoML's default
monitor writes them as JSON lines (with a timestamp, request_id and trace_id it adds itself)
under ``monitoring/iris/data/``, where relman's collector reads them for drift and for joining
late ground truth (``relman feedback``).

Fault injection, for demonstrations (``relman traffic --inject``): when this service is served
by relman, ``RELMAN_INSTANCE`` names the instance's folder, and a ``faults.json`` there, while
it exists, slows down or fails the API requests. Without that file it costs one cached stat a
second; without the variable, nothing at all.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import random
import time
from pathlib import Path
from typing import Any

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


class FaultInjection:
    """ASGI middleware applying ``$RELMAN_INSTANCE/faults.json`` to every POST request:

    ``{"latency_ms": 250, "latency_leak_ms_per_min": 50, "since": T0, "error_rate": 0.3,
    "until": T1}`` (all optional; times in Unix seconds) adds ``latency_ms`` plus
    ``latency_leak_ms_per_min`` for each minute since ``since``, then answers 500 with
    probability ``error_rate``, until ``until``. The file is looked at once a second at most
    and read again only when it changes (mtime, inode, size).

    A middleware rather than code in ``predict``: the wait is an ``asyncio.sleep`` that holds
    no worker thread (sync APIs run on one thread), so the added latency is exactly the
    fault's; and BentoML's metrics middleware, outside this one, counts the 500s and the
    time like any other answer's.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.path = os.path.join(os.environ.get("RELMAN_INSTANCE", ""), "faults.json")
        self.checked = float("-inf")
        self.version: tuple[int, int, int] | None = None
        self.fault: dict[str, Any] = {}

    def current(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self.checked >= 1.0:
            self.checked = now
            try:
                stat = os.stat(self.path)
                version = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
            except OSError:
                version = None
            if version != self.version:
                self.version, self.fault = version, {}
                if version is not None:
                    try:
                        with open(self.path, encoding="utf-8") as handle:
                            loaded = json.load(handle)
                        self.fault = loaded if isinstance(loaded, dict) else {}
                    except (OSError, ValueError):
                        self.version = None  # half written: read it again next time
        return self.fault

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        fault = self.current() if scope["type"] == "http" and scope["method"] == "POST" else {}
        now = time.time()
        if fault and now < float(fault.get("until", float("inf"))):
            minutes = max(0.0, now - float(fault.get("since", now))) / 60
            extra_ms = float(fault.get("latency_ms", 0)) + minutes * float(
                fault.get("latency_leak_ms_per_min", 0)
            )
            if extra_ms > 0:
                await asyncio.sleep(extra_ms / 1000)
            if random.random() < float(fault.get("error_rate", 0)):
                body = b'{"error": "fault injected by relman traffic"}'
                headers = [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({"type": "http.response.start", "status": 500, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


if os.environ.get("RELMAN_INSTANCE"):
    IrisClassifier.add_asgi_middleware(FaultInjection)

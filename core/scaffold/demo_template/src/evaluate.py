"""DVC stage `evaluate`: score the model on the held-out split, write metrics.json."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

from sklearn.metrics import accuracy_score, f1_score

# DVC runs `python src/evaluate.py` from the repository root; import `src` as a package, the
# same way the tests and the BentoML service do.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.features import engineer, read_dataset  # noqa: E402


def main() -> None:
    with open(ROOT / "models" / "model.pkl", "rb") as handle:
        model = pickle.load(handle)
    matrix, labels = read_dataset(ROOT / "data" / "prepared" / "test.csv")
    predicted = model.predict(engineer(matrix))
    metrics = {
        "accuracy": round(float(accuracy_score(labels, predicted)), 4),
        "f1_macro": round(float(f1_score(labels, predicted, average="macro")), 4),
        "n_test": len(labels),
    }
    (ROOT / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""DVC stage `train`: fit a logistic regression on the training split."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import yaml
from sklearn.linear_model import LogisticRegression

# DVC runs `python src/train.py` from the repository root; import `src` as a package, the
# same way the tests and the BentoML service do.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.features import engineer, read_dataset  # noqa: E402


def main() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["train"]
    matrix, labels = read_dataset(ROOT / "data" / "prepared" / "train.csv")
    model = LogisticRegression(
        C=params["C"], max_iter=params["max_iter"], random_state=params["seed"]
    )
    model.fit(engineer(matrix), labels)
    out = ROOT / "models" / "model.pkl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as handle:
        pickle.dump(model, handle)


if __name__ == "__main__":
    main()

"""DVC stage `prepare`: split data/iris.csv into a stratified train and test set."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml
from sklearn.model_selection import train_test_split

# DVC runs `python src/prepare.py` from the repository root; import `src` as a package, the
# same way the tests and the BentoML service do.
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from src.features import read_dataset, write_dataset  # noqa: E402


def main() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["prepare"]
    matrix, labels = read_dataset(ROOT / "data" / "iris.csv")
    x_train, x_test, y_train, y_test = train_test_split(
        matrix,
        labels,
        test_size=params["test_size"],
        random_state=params["seed"],
        stratify=labels,
    )
    out = ROOT / "data" / "prepared"
    write_dataset(out / "train.csv", x_train, y_train)
    write_dataset(out / "test.csv", x_test, y_test)


if __name__ == "__main__":
    main()

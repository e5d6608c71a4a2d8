"""Add a batch of new flower measurements to data/iris.csv (the demo's "new data").

    python src/add_measurements.py            # 30 rows, 10 per species
    python src/add_measurements.py --rows 60

Each new row is a measured flower of the same species with a little noise (seeded by the
number of rows already there, so a batch is the same on every machine). With `relman watch`
running, the `retrain` pipeline in relman.toml notices the change, retrains, commits and
serves the new model in dev by itself.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "iris.csv"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30, help="rows to add (default 30)")
    args = parser.parse_args(argv)
    with DATA.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [row for row in reader if row]
    by_species: dict[str, list[list[str]]] = {}
    for row in rows:
        by_species.setdefault(row[-1], []).append(row)
    rng = random.Random(len(rows))
    species = sorted(by_species)
    added = []
    for index in range(args.rows):
        source = rng.choice(by_species[species[index % len(species)]])
        values = [min(9.9, max(0.1, float(v) + rng.gauss(0.0, 0.1))) for v in source[:-1]]
        added.append([f"{value:.1f}" for value in values] + [source[-1]])
    with DATA.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(added)
    print(f"added {len(added)} rows to {DATA.relative_to(ROOT)} ({len(rows)} -> {len(rows) + len(added)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

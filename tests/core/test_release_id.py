"""Release ids: content-addressed, order-independent, machine-independent, dirty-marked.
What goes into ``SOURCE`` (the build context) is tested in test_build_context.py and, on a
real repository, in test_lineage.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.lineage.release_id import canonical_json, is_dirty_id, release_id

# The hash of a build context (core.lineage.build_context), not a commit.
SOURCE = "a" * 64
ARTIFACTS = {"models/model.pkl": "c7ec5a2eeee004e4fe7207373c615290", "data/iris.csv": None}
PARAMS = {"params.yaml": {"lr": 0.1, "train": {"epochs": 3}}}


def test_known_value_guards_the_format() -> None:
    # If this changes, every release id recorded in every ledger changes meaning.
    assert release_id(SOURCE, ARTIFACTS, PARAMS) == "23d034add77c"


def test_insertion_order_does_not_matter() -> None:
    reordered = dict(reversed(list(ARTIFACTS.items())))
    params = {"params.yaml": {"train": {"epochs": 3}, "lr": 0.1}}
    assert release_id(SOURCE, reordered, params) == release_id(SOURCE, ARTIFACTS, PARAMS)


def test_every_input_changes_the_id() -> None:
    base = release_id(SOURCE, ARTIFACTS, PARAMS)
    assert release_id("f" * 64, ARTIFACTS, PARAMS) != base
    assert release_id(SOURCE, {**ARTIFACTS, "data/iris.csv": "0" * 32}, PARAMS) != base
    assert release_id(SOURCE, ARTIFACTS, {"params.yaml": {"lr": 0.2}}) != base


def test_windows_paths_give_the_same_id() -> None:
    windows = {path.replace("/", "\\"): md5 for path, md5 in ARTIFACTS.items()}
    assert release_id(SOURCE, windows, PARAMS) == release_id(SOURCE, ARTIFACTS, PARAMS)


def test_dirty_ids_are_marked() -> None:
    dirty = release_id(SOURCE, ARTIFACTS, PARAMS, dirty=True)
    assert dirty == release_id(SOURCE, ARTIFACTS, PARAMS) + "-dirty"
    assert is_dirty_id(dirty) and not is_dirty_id(dirty.removesuffix("-dirty"))


def test_same_id_in_another_process_with_another_hash_seed() -> None:
    code = (
        "from core.lineage.release_id import release_id\n"
        f"print(release_id({SOURCE!r}, {ARTIFACTS!r}, {PARAMS!r}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert done.stdout.strip() == release_id(SOURCE, ARTIFACTS, PARAMS)


def test_canonical_json_has_no_whitespace_and_sorted_keys() -> None:
    assert canonical_json({"b": 1, "a": [1, "é"]}) == '{"a":[1,"é"],"b":1}'

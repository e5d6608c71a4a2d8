"""core/lineage/artifacts_block.py: the artifacts of a dvc.yaml read as text are what YAML
reads, or nothing (the caller then loads YAML): never a different answer."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.lineage.artifacts_block import READ, artifacts_section


def by_yaml(text: str) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load(text) or {}
    artifacts = doc.get("artifacts") or {}
    return {
        name: {key: value for key, value in (spec or {}).items() if key in READ}
        for name, spec in artifacts.items()
    }


STAGES = """\
stages:
  train:
    cmd: python train.py
    deps:
    - data/train.csv
    outs:
    - artifacts/model.pkl
"""

READS = {
    "plain": STAGES
    + """\
artifacts:
  churn:
    path: artifacts/model.pkl
    type: model
    desc: the churn model  # a comment
    labels:
    - tabular
    - sklearn
  features:
    path: data/features.parquet
    type: dataset
""",
    "quoted and commented, before the stages": """\
# the project's artifacts
artifacts:

    ranker:   # the ranker
        path: "models/ranker.pkl"
        type: 'model'
        meta:
            owner: ml-team
        labels: [a, b]
"""
    + STAGES,
    "none": STAGES,
    "nested name": "artifacts:\n  sub/forecast:\n    path: m.pkl\n    type: model\n",
    "a block scalar skipped": (
        "artifacts:\n  m:\n    desc: |\n      line one\n      type: not this\n    path: m.pkl\n"
    ),
}


@pytest.mark.parametrize("text", READS.values(), ids=READS.keys())
def test_block_style_reads_as_yaml_does(text: str) -> None:
    assert artifacts_section(text) == by_yaml(text)


FALLS_BACK = {
    "flow section": "artifacts: {m: {path: m.pkl, type: model}}\n",
    "flow artifact": "artifacts:\n  m: {path: m.pkl, type: model}\n",
    "an alias": "artifacts:\n  m:\n    path: *where\n    type: model\n",
    "a number": "artifacts:\n  m:\n    path: 2024\n    type: model\n",
    "null": "artifacts:\n  m:\n    path: m.pkl\n    type: null\n",
    "an escape": 'artifacts:\n  m:\n    path: "m\\t.pkl"\n    type: model\n',
    "a tab": "artifacts:\n\tm:\n\t\tpath: m.pkl\n",
    "repeated": "artifacts:\n  m:\n    path: a\n    path: b\n",
    "quoted key": '"artifacts":\n  m:\n    path: m.pkl\n    type: model\n',
    "multi-line flow": "artifacts:\n  m:\n    labels: [a,\n      b]\n    path: m.pkl\n",
    "a name YAML reads as a boolean": "artifacts:\n  on:\n    path: m.pkl\n    type: model\n",
    "a name YAML reads as a number": "artifacts:\n  2024:\n    path: m.pkl\n    type: model\n",
    "a json document": '{"artifacts": {"m": {"path": "m.pkl", "type": "model"}}}',
}


@pytest.mark.parametrize("text", FALLS_BACK.values(), ids=FALLS_BACK.keys())
def test_anything_else_is_left_to_yaml(text: str) -> None:
    assert artifacts_section(text) is None


names = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
plain = st.from_regex(r"[a-z][a-z0-9_./-]{0,12}", fullmatch=True)
scalars = st.one_of(
    plain,
    plain.map(lambda s: f'"{s}"'),
    plain.map(lambda s: f"'{s}'"),
    st.sampled_from(["model", "dataset", "yes", "null", "1.5", "~", "[x]", "{a: b}", "*x"]),
)
specs = st.dictionaries(st.sampled_from(["path", "type", "desc", "meta"]), scalars, min_size=1)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(names, specs, min_size=1, max_size=4),
    st.sampled_from([2, 4]),
    st.booleans(),
)
def test_generated_sections_read_as_yaml_or_not_at_all(
    artifacts: dict[str, dict[str, str]], indent: int, first: bool
) -> None:
    pad = " " * indent
    body = "".join(
        f"{pad}{name}:\n" + "".join(f"{pad * 2}{key}: {value}\n" for key, value in spec.items())
        for name, spec in artifacts.items()
    )
    text = ("artifacts:\n" + body + STAGES) if first else (STAGES + "artifacts:\n" + body)
    try:
        expected = by_yaml(text)
    except yaml.YAMLError:
        expected = None
    got = artifacts_section(text)
    assert got is None or got == expected

"""A repository relman did not write, built with the real tools: git, DVC and GTO's own
package, in the shapes real projects have (issue 15's list).

- ``data/raw.csv`` tracked by a ``.dvc`` file; ``params.yaml`` read with ``${...}``;
- a ``foreach`` stage ``prepare@a`` / ``prepare@b`` writing ``features/a.txt``, ``b.txt``;
- ``train`` writing ``models/model.pkl`` and ``metrics.json``; artifact ``churn`` (model);
- a nested ``sub/dvc.yaml`` with stage ``embed`` and artifact ``encoder`` (GTO's
  ``sub:encoder``), also a model;
- three commits, registered by ``gto`` as v0.1.0, v0.2.0 and v0.3.0 of ``churn`` and
  assigned to prod, staging and dev;
- no BentoML service, no relman.toml, no ``.relman``;
- everything pushed to a local DVC remote; then the copy of ``data/raw.csv`` is taken out
  of the local cache and the remote removed: the data is known by its md5 and is nowhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DVC_YAML = """\
stages:
  prepare:
    foreach: [a, b]
    do:
      cmd: python src/prepare.py ${item}
      deps: [data/raw.csv, src/prepare.py]
      outs:
        - features/${item}.txt
  train:
    cmd: python src/train.py ${train.seed}
    deps: [features/a.txt, features/b.txt, src/train.py]
    params: [train.seed]
    outs: [models/model.pkl]
    metrics:
      - metrics.json:
          cache: false
artifacts:
  churn:
    path: models/model.pkl
    type: model
    desc: churn classifier
"""

SUB_DVC_YAML = """\
stages:
  embed:
    cmd: python ../src/embed.py
    deps: [../data/raw.csv]
    outs: [emb.bin]
artifacts:
  encoder:
    path: emb.bin
    type: model
"""

SOURCES = {
    "prepare.py": "import sys\nitem = sys.argv[1]\n"
    "open(f'features/{item}.txt', 'w').write(open('data/raw.csv').read() + item)\n",
    "train.py": "import json, pickle, sys\nseed = int(sys.argv[1])\n"
    "pickle.dump({'seed': seed}, open('models/model.pkl', 'wb'))\n"
    "json.dump({'auc': 0.8 + seed / 100}, open('metrics.json', 'w'))\n",
    "embed.py": "open('emb.bin', 'w').write(open('../data/raw.csv').read()[::-1])\n",
}

# (version, stage, seed): each commit trains with its own seed.
RELEASES = [("v0.1.0", "prod", 1), ("v0.2.0", "staging", 2), ("v0.3.0", "dev", 3)]


@dataclass(frozen=True)
class Adopted:
    root: Path
    commits: dict[str, str]  # version -> commit
    model_md5: str  # models/model.pkl as dvc.lock records it at HEAD
    data_md5: str  # data/raw.csv as its .dvc file records it


def _run(root: Path, *args: str) -> str:
    # The stages run `python`: the project's environment is the test's, as if activated.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def _dvc(root: Path, *args: str) -> str:
    return _run(root, sys.executable, "-m", "dvc", *args)


def trained_repository(root: Path, files: dict[str, str], data: str) -> Path:
    """``files`` (path from ``root``: text) in a new git + DVC repository, Ada's, with the
    CSV ``data`` tracked by a .dvc file; its pipeline reproduced and everything committed."""
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    _run(root, "git", "init", "-q", "-b", "main")
    _run(root, "git", "config", "user.email", "ada@example.invalid")
    _run(root, "git", "config", "user.name", "Ada")
    _dvc(root, "init", "-q")
    _dvc(root, "add", "-q", data)
    _dvc(root, "repro", "-q")
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "a trained model")
    return root


@contextmanager
def adopted_in(base: Path) -> Iterator[Adopted]:
    """The repository built in ``base`` by a user of its own (tests/e2e/conftest.py)."""
    import pytest

    from tests.e2e.conftest import isolate_user

    with pytest.MonkeyPatch.context() as mp:
        isolate_user(mp, base)
        yield build_adopted(base)


def _new_repository(root: Path, raw_csv: str) -> None:
    """git and DVC in ``root``, Ada's identity, and ``data/raw.csv`` tracked by a .dvc file."""
    _run(root, "git", "init", "-q", "-b", "main")
    _run(root, "git", "config", "user.email", "ada@example.invalid")
    _run(root, "git", "config", "user.name", "Ada")
    _dvc(root, "init", "-q")
    (root / "data" / "raw.csv").write_text(raw_csv)
    _dvc(root, "add", "-q", "data/raw.csv")


def build_adopted(base: Path) -> Adopted:
    """Make the repository in ``base/churn-project`` (its remote beside it, then removed)."""
    import gto.api
    import yaml

    root = base / "churn-project"
    (root / "data").mkdir(parents=True)
    (root / "features").mkdir()
    (root / "models").mkdir()
    (root / "sub").mkdir()
    (root / "src").mkdir()
    for name, text in SOURCES.items():
        (root / "src" / name).write_text(text)
    _new_repository(root, "id,churned\n1,0\n2,1\n3,0\n")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "sub" / "dvc.yaml").write_text(SUB_DVC_YAML)
    (root / ".gitignore").write_text("/features/\n/models/\n")
    commits: dict[str, str] = {}
    for version, _stage, seed in RELEASES:
        (root / "params.yaml").write_text(f"train:\n  seed: {seed}\n")
        _dvc(root, "repro", "-q", "dvc.yaml", "sub/dvc.yaml")
        _run(root, "git", "add", "-A")
        _run(root, "git", "commit", "-qm", f"train with seed {seed}")
        commits[version] = _run(root, "git", "rev-parse", "HEAD")
        gto.api.register(str(root), "churn", ref="HEAD", version=version)
    for version, stage, _seed in RELEASES:
        gto.api.assign(str(root), "churn", stage, version=version)

    remote = base / "churn-remote"
    _dvc(root, "remote", "add", "-d", "store", str(remote))
    _run(root, "git", "commit", "-qam", "a DVC remote")
    _dvc(root, "push", "-q")
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    model_md5 = next(
        out["md5"] for out in lock["stages"]["train"]["outs"] if out["path"] == "models/model.pkl"
    )
    record = yaml.safe_load((root / "data" / "raw.csv.dvc").read_text())
    data_md5 = record["outs"][0]["md5"]
    # The data is now only where nobody can reach it: out of the cache, the remote gone.
    (root / ".dvc" / "cache" / "files" / "md5" / data_md5[:2] / data_md5[2:]).unlink()
    shutil.rmtree(remote)
    return Adopted(root, commits, model_md5, data_md5)


SHAPES_DVC_YAML = """\
vars:
  - conf/extra.yaml
stages:
  stamp:
    cmd: python -c "import time; open('stamp.txt', 'w').write(str(time.time()))"
    always_changed: true
    outs:
      - stamp.txt:
          cache: false
  fit:
    matrix:
      size: ${models}
      opt: [adam, sgd]
    cmd: python src/fit.py ${item.size}-${item.opt}-${seed} models/${item.size}-${item.opt}.pkl
    deps: [data/raw.csv, src/fit.py]
    params: [train.lr]
    outs:
      - models/${item.size}-${item.opt}.pkl
  evaluate:
    cmd: python src/evaluate.py
    deps: [models/small-adam.pkl, src/evaluate.py]
    metrics:
      - metrics.json:
          cache: false
      - eval.yaml:
          cache: false
  frozen-prep:
    cmd: python src/fit.py frozen frozen.txt
    deps: [data/raw.csv]
    outs: [frozen.txt]
artifacts:
  small:
    path: models/small-adam.pkl
    type: model
  large:
    path: models/large-sgd.pkl
    type: model
"""

SHAPES_SOURCES = {
    "fit.py": "import os, sys\nkind, out = sys.argv[1], sys.argv[2]\n"
    "os.makedirs(os.path.dirname(out) or '.', exist_ok=True)\n"
    "open(out, 'w').write(kind + open('data/raw.csv').read())\n",
    "evaluate.py": "import json\njson.dump({'acc': 0.9}, open('metrics.json', 'w'))\n"
    "open('eval.yaml', 'w').write('loss:\\n  val: 0.2\\n')\n",
}


def build_shapes(base: Path) -> Path:
    """A repository of other shapes: a ``matrix`` stage over a list from params.yaml, a
    ``vars:`` file interpolated with ``${...}``, metrics in JSON and nested YAML, a frozen
    stage and an ``always_changed`` one; two model artifacts; no GTO tag."""
    root = base / "shapes"
    for folder in ("data", "conf", "src"):
        (root / folder).mkdir(parents=True)
    _new_repository(root, "x,y\n1,2\n3,4\n")
    (root / "params.yaml").write_text("train:\n  lr: 0.1\nmodels: [small, large]\n")
    (root / "conf" / "extra.yaml").write_text("seed: 7\n")
    for name, text in SHAPES_SOURCES.items():
        (root / "src" / name).write_text(text)
    (root / "dvc.yaml").write_text(SHAPES_DVC_YAML)
    _dvc(root, "repro", "-q")
    _dvc(root, "freeze", "frozen-prep")  # frozen once it has run, as a person freezes one
    _run(root, "git", "add", "-A")
    _run(root, "git", "commit", "-qm", "shapes")
    return root

"""A big DVC repository relman never configured, for benchmarks/bench_adopt_status.py
(issue 15, "Measured in benchmarks"; docs/adopting.md says how relman reads one).

200 pipeline stages (``foreach`` stages among them, 27 in a nested ``sub/dvc.yaml``), 5
models declared as ``artifacts:`` of ``type: model`` (one of them GTO's ``sub:forecast``),
10,000 files in four ``dvc add``-ed folders, params.yaml (and sub/params.yaml), metrics.json,
GTO tags written by GTO's own package for several versions and stages, all committed; no
relman.toml. The stages are not run one by one: their outputs are written here with the
script their ``cmd`` names, and dvc.lock with the md5s DVC would record (files in DVC's
cache), so that ``dvc status`` says everything is up to date, which :func:`build` checks.
Everything is deterministic: contents, commit and tag dates.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SHARDS = [f"shard{i}" for i in range(4)]
FILES_PER_SHARD = 2_500
FEATURES = [f"f{i:03d}" for i in range(80)]
AGGREGATES = 80
MODELS = ["churn", "fraud", "ltv", "ranker"]  # in dvc.yaml; sub/dvc.yaml has "forecast"
EMBEDDINGS = 25
# Registered versions, in order: (artifact, version, commit index); then the stages.
VERSIONS = [
    ("churn", "v1.0.0", 0), ("fraud", "v1.0.0", 0), ("ltv", "v1.0.0", 0),
    ("ranker", "v1.0.0", 0), ("sub:forecast", "v1.0.0", 0),
    ("churn", "v1.1.0", 1), ("fraud", "v1.1.0", 1),
    ("churn", "v1.2.0", 2),
]  # fmt: skip
ASSIGNMENTS = [
    ("churn", "prod", "v1.0.0"), ("churn", "staging", "v1.1.0"), ("churn", "dev", "v1.2.0"),
    ("fraud", "prod", "v1.0.0"), ("fraud", "dev", "v1.1.0"),
    ("ltv", "staging", "v1.0.0"), ("sub:forecast", "dev", "v1.0.0"),
]  # fmt: skip
EPOCH = 1_700_000_000  # commits and tags are dated from here, a minute apart

# The script every stage runs: `python src/stage.py OUT LABEL` writes OUT from LABEL. The
# generator writes the same outputs by calling render() from this very text.
STAGE_SCRIPT = '''\
"""Write one stage's output: `python stage.py OUT LABEL`."""
import json
import os
import sys


def render(label: str, out: str) -> str:
    if out.endswith(".json"):
        score = 0.5 + sum(map(ord, label)) % 50 / 100
        return json.dumps({"stage": label, "score": round(score, 2)}) + "\\n"
    return f"{label}\\n" * 4


if __name__ == "__main__":
    out, label = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as handle:
        handle.write(render(label, out))
'''

PARAMS = {
    "prep": {"scale": 2},
    "feat": {"window": 7},
    "agg": {"method": "mean"},
    "train": {m: {"lr": 0.05 * (i + 1), "depth": 4 + i} for i, m in enumerate(MODELS)},
}
SUB_PARAMS = {"embed": {"dim": 16}, "train": {"lr": 0.01}}


@dataclass(frozen=True)
class Stage:
    """One resolved stage: its name in dvc.lock and what it reads and writes (paths relative
    to its dvc.yaml's folder)."""

    name: str
    cmd: str
    label: str
    deps: list[str]
    params: list[str]
    outs: list[str]  # cached
    metrics: list[str] = field(default_factory=list)  # cache: false


@dataclass(frozen=True)
class Repository:
    root: Path
    stages: int
    tracked_files: int
    models: list[str]
    tags: int


def _stage(name: str, out: str, deps: list[str], params: list[str], *, metric: bool = False,
           up: str = "") -> Stage:  # fmt: skip
    label = name.replace("@", "-")
    return Stage(
        name=name,
        cmd=f"python {up}src/stage.py {out} {label}",
        label=label,
        deps=sorted([f"{up}src/stage.py", *deps]),
        params=params,
        outs=[] if metric else [out],
        metrics=[out] if metric else [],
    )


def root_stages() -> list[Stage]:
    """The 173 stages of dvc.yaml, resolved as DVC resolves them (``prep@shard0``)."""
    stages = [
        _stage(f"prep@{s}", f"data/prep/{s}.csv", [f"data/raw/{s}"], ["prep.scale"]) for s in SHARDS
    ]
    stages += [
        _stage(f"feat@{f}", f"data/feat/{f}.txt", [f"data/prep/{SHARDS[i % 4]}.csv"],
               ["feat.window"])
        for i, f in enumerate(FEATURES)
    ]  # fmt: skip
    stages += [
        _stage(f"agg_{i:03d}", f"data/agg/a{i:03d}.txt",
               [f"data/feat/{FEATURES[i]}.txt", f"data/feat/{FEATURES[(i + 1) % 80]}.txt"],
               ["agg.method"])
        for i in range(AGGREGATES)
    ]  # fmt: skip
    per_model = AGGREGATES // len(MODELS)
    stages += [
        _stage(f"train@{m}", f"models/{m}.pkl",
               [f"data/agg/a{i:03d}.txt" for i in range(j * per_model, (j + 1) * per_model)],
               [f"train.{m}"])
        for j, m in enumerate(MODELS)
    ]  # fmt: skip
    stages += [
        _stage(f"evaluate@{m}", f"eval/{m}.json", [f"models/{m}.pkl"], [], metric=True)
        for m in MODELS
    ]
    stages.append(
        _stage("report", "metrics.json", [f"eval/{m}.json" for m in MODELS], [], metric=True)
    )
    return stages


def sub_stages() -> list[Stage]:
    """The 27 stages of sub/dvc.yaml (paths from sub/)."""
    stages = [
        _stage(f"embed_{i:03d}", f"emb/e{i:03d}.txt", [f"../data/prep/{SHARDS[i % 4]}.csv"],
               ["embed.dim"], up="../")
        for i in range(EMBEDDINGS)
    ]  # fmt: skip
    stages.append(
        _stage("train", "models/forecast.pkl", [f"emb/e{i:03d}.txt" for i in range(EMBEDDINGS)],
               ["train.lr"], up="../")
    )  # fmt: skip
    stages.append(
        _stage("evaluate", "metrics.json", ["models/forecast.pkl"], [], metric=True, up="../")
    )
    return stages


def root_dvc_yaml() -> str:
    """dvc.yaml as a person writes it: foreach stages with ``${item}``, ``${key}``."""
    per_model = AGGREGATES // len(MODELS)
    stages: dict[str, Any] = {
        "prep": {
            "foreach": SHARDS,
            "do": {
                "cmd": "python src/stage.py data/prep/${item}.csv prep-${item}",
                "deps": ["src/stage.py", "data/raw/${item}"],
                "params": ["prep.scale"],
                "outs": ["data/prep/${item}.csv"],
            },
        },
        "feat": {
            "foreach": {f: {"shard": SHARDS[i % 4]} for i, f in enumerate(FEATURES)},
            "do": {
                "cmd": "python src/stage.py data/feat/${key}.txt feat-${key}",
                "deps": ["src/stage.py", "data/prep/${item.shard}.csv"],
                "params": ["feat.window"],
                "outs": ["data/feat/${key}.txt"],
            },
        },
    }
    for stage in root_stages():
        if stage.name.startswith("agg_"):
            stages[stage.name] = {
                "cmd": stage.cmd,
                "deps": stage.deps,
                "params": stage.params,
                "outs": stage.outs,
            }
    stages["train"] = {
        # the aggregates each model reads: item.a0 .. item.a19
        "foreach": {
            m: {f"a{k}": f"data/agg/a{j * per_model + k:03d}.txt" for k in range(per_model)}
            for j, m in enumerate(MODELS)
        },
        "do": {
            "cmd": "python src/stage.py models/${key}.pkl train-${key}",
            "deps": ["src/stage.py"] + [f"${{item.a{k}}}" for k in range(per_model)],
            "params": ["train.${key}"],
            "outs": ["models/${key}.pkl"],
        },
    }
    stages["evaluate"] = {
        "foreach": MODELS,
        "do": {
            "cmd": "python src/stage.py eval/${item}.json evaluate-${item}",
            "deps": ["src/stage.py", "models/${item}.pkl"],
            "metrics": [{"eval/${item}.json": {"cache": False}}],
        },
    }
    report = next(s for s in root_stages() if s.name == "report")
    stages["report"] = {
        "cmd": report.cmd,
        "deps": report.deps,
        "metrics": [{"metrics.json": {"cache": False}}],
    }
    artifacts = {
        m: {"path": f"models/{m}.pkl", "type": "model", "desc": f"{m} model"} for m in MODELS
    }
    artifacts["events"] = {"path": "data/raw/shard0", "type": "dataset"}
    return yaml.safe_dump({"stages": stages, "artifacts": artifacts}, sort_keys=False)


def sub_dvc_yaml() -> str:
    stages: dict[str, Any] = {}
    for stage in sub_stages():
        entry: dict[str, Any] = {"cmd": stage.cmd, "deps": stage.deps}
        if stage.params:
            entry["params"] = stage.params
        if stage.outs:
            entry["outs"] = stage.outs
        if stage.metrics:
            entry["metrics"] = [{path: {"cache": False}} for path in stage.metrics]
        stages[stage.name] = entry
    artifacts = {"forecast": {"path": "models/forecast.pkl", "type": "model"}}
    return yaml.safe_dump({"stages": stages, "artifacts": artifacts}, sort_keys=False)


# ------------------------------------------------------------------------------ building


def _run(root: Path, *args: str) -> str:
    env = dict(os.environ, DVC_NO_ANALYTICS="1")
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {root}: {done.stderr.strip()[-800:]}")
    return done.stdout


def dvc(root: Path, *args: str) -> str:
    """``python -m dvc ARGS`` in ``root``."""
    return _run(root, sys.executable, "-m", "dvc", *args)


@contextmanager
def dated(step: int) -> Iterator[None]:
    """git dates what it writes ``step`` minutes after EPOCH, and so does GTO's package (its
    tags are written by dulwich in this process, dated by time.time())."""
    from unittest import mock

    when = EPOCH + 60 * step
    stamp = f"@{when} +0000"
    saved = {k: os.environ.get(k) for k in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE")}
    os.environ.update(GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
    try:
        with mock.patch("time.time", return_value=float(when)):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _file_hash(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def _cache(root: Path, path: Path, md5: str) -> None:
    """``path`` into DVC's cache (3.x layout, read-only as DVC leaves it)."""
    target = root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    target.chmod(0o444)


def _param(params: dict[str, Any], key: str) -> Any:
    value: Any = params
    for part in key.split("."):
        value = value[part]
    return value


def _lock(root: Path, folder: str, stages: list[Stage], params: dict[str, Any]) -> str:
    """Write each stage's outputs and return the dvc.lock DVC would write for them."""
    namespace: dict[str, Any] = {}
    exec(STAGE_SCRIPT, namespace)  # render() as the stages' script has it
    base = root / folder
    tracked: dict[str, dict[str, Any]] = {}  # dvc add-ed folders, from their .dvc files
    for shard in SHARDS:
        record = yaml.safe_load((root / "data" / "raw" / f"{shard}.dvc").read_text())
        out = record["outs"][0]
        tracked[str(root / "data" / "raw" / shard)] = {
            "hash": "md5", "md5": out["md5"], "size": out["size"], "nfiles": out["nfiles"]
        }  # fmt: skip
    entries: dict[str, Any] = {}
    for stage in stages:  # in order: a stage's deps are written before it
        for out in stage.outs + stage.metrics:
            path = base / out
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(namespace["render"](stage.label, out))

        def described(rel: str) -> dict[str, Any]:
            path = (base / rel).resolve()
            return {"path": rel, **(tracked.get(str(path)) or _file_hash(path))}

        entry: dict[str, Any] = {"cmd": stage.cmd}
        entry["deps"] = [described(dep) for dep in sorted(stage.deps)]
        if stage.params:
            entry["params"] = {
                "params.yaml": {key: _param(params, key) for key in sorted(stage.params)}
            }
        outs = [described(out) for out in sorted(stage.outs + stage.metrics)]
        for out in stage.outs:
            info = next(o for o in outs if o["path"] == out)
            _cache(root, base / out, info["md5"])
        entry["outs"] = outs
        entries[stage.name] = entry
    return yaml.safe_dump({"schema": "2.0", "stages": entries}, sort_keys=False)


def _data(root: Path) -> None:
    """10,000 small files in four folders, each ``dvc add``-ed."""
    for shard in SHARDS:
        folder = root / "data" / "raw" / shard
        folder.mkdir(parents=True)
        for i in range(FILES_PER_SHARD):
            (folder / f"event-{i:05d}.json").write_text(
                json.dumps({"shard": shard, "id": i, "value": (i * 7919) % 1000}) + "\n"
            )
    dvc(root, "add", "-q", *(f"data/raw/{shard}" for shard in SHARDS))


def build(root: Path) -> Repository:
    """Make the repository in ``root`` (a new folder); SystemExit when DVC does not call it
    up to date."""
    import gto.api

    root.mkdir(parents=True)
    root = root.resolve()
    with dated(0):
        _run(root, "git", "init", "-q", "-b", "main")
        _run(root, "git", "config", "user.email", "ada@example.invalid")
        _run(root, "git", "config", "user.name", "Ada")
        dvc(root, "init", "-q")
        (root / "src").mkdir()
        (root / "src" / "stage.py").write_text(STAGE_SCRIPT)
        (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
        (root / "sub").mkdir()
        (root / "sub" / "params.yaml").write_text(yaml.safe_dump(SUB_PARAMS, sort_keys=False))
        (root / "README.md").write_text("# shop-ml\n\nModels for the shop.\n")
        _data(root)
        (root / "dvc.yaml").write_text(root_dvc_yaml())
        (root / "sub" / "dvc.yaml").write_text(sub_dvc_yaml())
        (root / "dvc.lock").write_text(_lock(root, ".", root_stages(), PARAMS))
        (root / "sub" / "dvc.lock").write_text(_lock(root, "sub", sub_stages(), SUB_PARAMS))
        (root / ".gitignore").write_text("/data/prep/\n/data/feat/\n/data/agg/\n/models/\n")
        (root / "sub" / ".gitignore").write_text("/emb/\n/models/\n")
    said = dvc(root, "status")
    if "up to date" not in said:
        raise SystemExit(f"dvc status in the generated repository is not clean:\n{said[:2000]}")
    commits = []
    for step in range(3):
        with dated(1 + step):
            if step:
                with (root / "README.md").open("a") as readme:
                    readme.write(f"\nRelease notes {step}.\n")
            _run(root, "git", "add", "-A")
            _run(root, "git", "commit", "-q", "-m", f"shop-ml {step}")
            commits.append(_run(root, "git", "rev-parse", "HEAD").strip())
    tags = 0
    for step, (name, version, commit) in enumerate(VERSIONS):
        with dated(10 + step):
            gto.api.register(str(root), name, ref=commits[commit], version=version)
        tags += 1
    for step, (name, stage, version) in enumerate(ASSIGNMENTS):
        with dated(30 + step):
            gto.api.assign(str(root), name, stage, version=version)
        tags += 1
    if _run(root, "git", "status", "--porcelain").strip():
        raise SystemExit(f"{root}: uncommitted changes after the build")
    return Repository(
        root=root,
        stages=len(root_stages()) + len(sub_stages()),
        tracked_files=len(SHARDS) * FILES_PER_SHARD,
        models=[*MODELS, "sub:forecast"],
        tags=tags,
    )


def copy(source: Path, target: Path) -> Path:
    """A copy of the repository (its git history, DVC cache and workspace), without DVC's
    state of the original's inodes (.dvc/tmp)."""

    def skip(folder: str, names: list[str]) -> list[str]:
        return ["tmp"] if Path(folder) == source / ".dvc" else []

    shutil.copytree(source, target, symlinks=True, ignore=skip)
    return target

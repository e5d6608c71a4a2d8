"""The candidate of a real git + DVC repository: facts, problems, cache states, bad input."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ProjectError
from core.lineage.candidate import Candidate, candidate, candidates
from tests.core.conftest import DvcRepo, git


def status(repo: DvcRepo | Path) -> Candidate:
    root = repo.root if isinstance(repo, DvcRepo) else repo
    return candidate(root, model=["clf"], data=["iris", "data/features"])


def test_clean_tree_has_recorded_hashes_and_no_problems(dvc_repo: DvcRepo) -> None:
    c = status(dvc_repo)

    assert c.problems == []
    assert c.git.commit == dvc_repo.git("rev-parse", "HEAD")
    assert (c.git.branch, c.git.dirty, c.git.message) == ("main", False, "train the model")
    [model] = c.model
    lock = dvc_repo.lock_out("models/model.pkl")
    assert (model.name, model.type, model.path) == ("clf", "model", "models/model.pkl")
    assert (model.md5, model.size, model.cache, model.in_cache) == (
        lock["md5"],
        lock["size"],
        "local",
        True,
    )
    iris, features = c.data
    dvc_file = (dvc_repo.root / "data/iris.csv.dvc").read_text()
    assert iris.md5 is not None and f"md5: {iris.md5}" in dvc_file
    assert iris.source == "data/iris.csv.dvc"
    assert features.md5 == dvc_repo.lock_out("data/features")["md5"]
    assert features.md5.endswith(".dir") and features.nfiles == 2
    assert c.params == {"params.yaml": {"lr": 0.1}}
    assert c.metrics == {"metrics.json": {"accuracy": 0.95, "loss": {"train": 0.1}}}
    assert len(c.release) == 12


def test_to_dict_is_the_documented_json_shape(dvc_repo: DvcRepo) -> None:
    doc = json.loads(json.dumps(status(dvc_repo).to_dict()))

    assert {"release", "git", "data", "model", "params", "metrics", "problems"} <= doc.keys()
    assert {"commit", "dirty", "branch", "dirty_files"} <= doc["git"].keys()
    for entry in doc["model"] + doc["data"]:
        assert {"path", "md5", "size", "in_cache", "name", "nfiles", "cache"} <= entry.keys()


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("params.yaml", "lr: 0.5\n", "train: dependency params.yaml changed (lr modified)"),
        ("src/train.py", "# edited\n", "train: dependency src/train.py changed"),
        ("data/iris.csv", "a,b\n", "train: dependency data/iris.csv changed"),
        ("models/model.pkl", "tampered\n", "train: output models/model.pkl modified"),
    ],
)
def test_a_change_shows_up_with_its_reason(
    dvc_repo: DvcRepo, path: str, text: str, expected: str
) -> None:
    target = dvc_repo.root / path
    before = target.read_text()
    # Outputs are checked out as links or read-only copies: replace the file, as editors do.
    target.unlink()
    target.write_text(before + text if path.endswith(".py") else text)

    c = status(dvc_repo)

    assert any(line.startswith(expected) for line in c.problems), c.problems
    if path == "data/iris.csv":
        assert any(
            line.startswith("data/iris.csv.dvc: output data/iris.csv modified")
            for line in c.problems
        )


def test_an_uncommitted_dvc_lock_is_a_problem(dvc_repo: DvcRepo) -> None:
    dvc_repo.write("params.yaml", "lr: 0.3\n")
    dvc_repo.dvc("reproduce")

    c = status(dvc_repo)

    assert "dvc.lock: not committed (run 'git add dvc.lock' and commit)" in c.problems
    assert not any(line.startswith("train:") for line in c.problems), "the pipeline is fresh"
    assert c.release.endswith("-dirty")
    # What the tree would release is what dvc.lock now records, not the last commit.
    assert c.model[0].md5 == dvc_repo.lock_out("models/model.pkl")["md5"]


def test_a_cache_object_deleted_everywhere_is_missing(dvc_repo: DvcRepo) -> None:
    model = dvc_repo.lock_out("models/model.pkl")
    dvc_repo.cache_file(model["md5"]).unlink()

    c = status(dvc_repo)

    assert (c.model[0].cache, c.model[0].in_cache) == ("missing", False)
    assert any(
        line.startswith("models/model.pkl: not in the local cache, nor in the remote")
        for line in c.problems
    ), c.problems


def test_a_cache_object_only_in_the_remote_says_pull(dvc_repo: DvcRepo) -> None:
    dvc_repo.dvc("push")
    model = dvc_repo.lock_out("models/model.pkl")
    dvc_repo.cache_file(model["md5"]).unlink()
    features = dvc_repo.lock()["stages"]["train"]["outs"][0]
    assert features["path"] == "data/features"
    # A directory is local only when its listing and every file in it are.
    listing = json.loads(dvc_repo.cache_file(features["md5"]).read_text())
    dvc_repo.cache_file(listing[0]["md5"]).unlink()

    c = status(dvc_repo)

    assert c.model[0].cache == "remote"
    assert c.data[1].cache == "remote"
    assert "models/model.pkl: not in the local cache (in the remote: run 'dvc pull')" in c.problems
    assert "data/features: not in the local cache (in the remote: run 'dvc pull')" in c.problems


def test_without_a_remote_a_lost_object_is_missing(dvc_repo: DvcRepo) -> None:
    (dvc_repo.root / ".dvc/config").write_text("")
    dvc_repo.cache_file(dvc_repo.lock_out("models/model.pkl")["md5"]).unlink()

    c = status(dvc_repo)

    assert c.model[0].cache == "missing"
    assert any("and no DVC remote set" in line for line in c.problems), c.problems


def test_release_id_is_the_same_in_a_fresh_clone(dvc_repo: DvcRepo, tmp_path: Path) -> None:
    dvc_repo.dvc("push")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(dvc_repo.root), str(clone))
    # The remote URL is relative to .dvc/: point the clone at the same folder.
    (clone / ".dvc/config").write_text(
        f"[core]\n    remote = local\n['remote \"local\"']\n    url = {dvc_repo.remote}\n"
    )
    git(clone, "update-index", "--assume-unchanged", ".dvc/config")
    DvcRepo(clone, dvc_repo.remote).dvc("pull")

    original, copy = status(dvc_repo), status(clone)

    assert copy.problems == [], copy.problems
    assert copy.release == original.release
    assert [a.md5 for a in copy.model + copy.data] == [
        a.md5 for a in original.model + original.data
    ]


def test_candidates_share_one_open_and_scope_problems(dvc_repo: DvcRepo) -> None:
    (dvc_repo.root / "models/model.pkl").unlink()
    (dvc_repo.root / "models/model.pkl").write_text("tampered\n")

    both = candidates(dvc_repo.root, {"clf": (["clf"], ["iris"]), "raw": (["data/iris.csv"], [])})

    assert any("output models/model.pkl modified" in p for p in both["clf"].problems)
    # data/iris.csv comes from its .dvc file alone: the stale train stage is not its problem.
    assert both["raw"].problems == [], both["raw"].problems


def test_an_unknown_service_artifact_is_a_problem(dvc_repo: DvcRepo) -> None:
    c = candidate(dvc_repo.root, model=["foo"], data=[])

    assert c.model == []
    assert c.problems == [
        "service lists model 'foo', which is neither an artifact in dvc.yaml nor a "
        "DVC-tracked path (fix relman.toml)"
    ]


def test_not_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"^not a git repository: .*git init"):
        candidate(tmp_path, model=["clf"], data=[])


def test_no_dvc_yaml(dvc_repo: DvcRepo) -> None:
    (dvc_repo.root / "dvc.yaml").unlink()

    with pytest.raises(ProjectError, match=r"^no dvc.yaml in .*dvc stage add"):
        status(dvc_repo)


def test_dvc_lock_out_of_sync_with_dvc_yaml(dvc_repo: DvcRepo) -> None:
    text = (dvc_repo.root / "dvc.yaml").read_text()
    (dvc_repo.root / "dvc.yaml").write_text(text.replace(' src/train.py"', ' src/train.py --v2"'))

    c = status(dvc_repo)

    assert "train: command changed since dvc.lock (run 'dvc repro train')" in c.problems


def test_a_stage_missing_from_dvc_lock(dvc_repo: DvcRepo) -> None:
    (dvc_repo.root / "dvc.lock").unlink()

    c = status(dvc_repo)

    assert any(
        p.startswith("train: not in dvc.lock, out of sync with dvc.yaml") for p in c.problems
    )


def test_a_malformed_hash_names_the_file(dvc_repo: DvcRepo) -> None:
    dvc_file = dvc_repo.root / "data/iris.csv.dvc"
    md5 = status(dvc_repo).data[0].md5
    assert md5
    dvc_file.write_text(dvc_file.read_text().replace(md5, "zzz"))

    c = status(dvc_repo)

    assert any(p.startswith("data/iris.csv.dvc: malformed md5 'zzz'") for p in c.problems)
    assert c.data[0].cache == "missing" and not c.data[0].hash_valid


def test_an_unreadable_dvc_file_is_a_problem_not_a_crash(dvc_repo: DvcRepo) -> None:
    (dvc_repo.root / "data/iris.csv.dvc").write_text("outs: [\n")

    c = status(dvc_repo)

    assert any(p.startswith("data/iris.csv.dvc:2: DVC cannot read it") for p in c.problems)


def test_a_broken_dvc_lock_is_named_with_its_line_not_as_dvc_yaml(dvc_repo: DvcRepo) -> None:
    lock = dvc_repo.root / "dvc.lock"
    lines = lock.read_text().splitlines()
    lock.write_text("\n".join([*lines[:3], "  broken: [", ""]))

    c = status(dvc_repo)

    said = [p for p in c.problems if "DVC cannot read it" in p]
    assert said and said[0].startswith("dvc.lock:5: DVC cannot read it ("), said
    assert not any(p.startswith("dvc.yaml") for p in said)


def test_detached_head_is_noted(dvc_repo: DvcRepo) -> None:
    dvc_repo.git("checkout", "-q", "--detach")

    c = status(dvc_repo)

    assert (c.git.branch, c.git.detached, c.problems) == (None, True, [])
    assert any(note.startswith("detached HEAD") for note in c.notes)


def test_a_shallow_clone_is_noted_and_works(dvc_repo: DvcRepo, tmp_path: Path) -> None:
    dvc_repo.write("README.md", "more history\n")
    dvc_repo.commit("second")
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{dvc_repo.root}", str(clone))
    shutil.copytree(dvc_repo.root / ".dvc/cache", clone / ".dvc/cache")
    DvcRepo(clone, dvc_repo.remote).dvc("checkout")

    c = status(clone)

    assert c.git.shallow and any(note.startswith("shallow clone") for note in c.notes)
    assert c.release == status(dvc_repo).release


def test_importing_lineage_loads_neither_dvc_nor_ui_libraries() -> None:
    code = (
        "import sys, core.lineage.candidate, core.lineage.gto, core.lineage.release_id\n"
        "print(sorted(m for m in ('dvc', 'textual', 'rich') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.stdout.strip() == "[]"


def test_metrics_come_from_stage_outputs_and_the_top_level_section(dvc_repo: DvcRepo) -> None:
    """The files `dvc metrics show` reads: metric outputs and dvc.yaml's `metrics:` list;
    lists are left out, as DVC leaves them out."""
    dvc_repo.write("eval/extra.json", json.dumps({"auc": 0.9, "curve": [1, 2], "note": "ok"}))
    dvc_repo.write(
        "dvc.yaml", (dvc_repo.root / "dvc.yaml").read_text() + "metrics:\n- eval/extra.json\n"
    )
    assert status(dvc_repo).metrics == {
        "metrics.json": {"accuracy": 0.95, "loss": {"train": 0.1}},
        "eval/extra.json": {"auc": 0.9, "note": "ok"},
    }


STAMP_AND_PREP = """\
  stamp:
    cmd: {stamp}
    always_changed: true
    outs:
      - stamp.txt:
          cache: false
  prep:
    cmd: {prep}
    deps: [src/prep.py]
    outs: [prep.txt]
"""


def test_an_always_changed_and_a_frozen_stage_upstream_read_as_dvc_status_does(
    dvc_repo: DvcRepo,
) -> None:
    """`dvc status` lists an always_changed stage as "always changed" whatever happens,
    and checks no dependency of a frozen one: neither makes the model look stale, and the
    candidate says what DVC does with them."""
    python = shlex.quote(Path(sys.executable).as_posix())
    stages = STAMP_AND_PREP.format(
        stamp=json.dumps(f"{python} src/stamp.py"), prep=json.dumps(f"{python} src/prep.py")
    )
    text = (dvc_repo.root / "dvc.yaml").read_text().replace("stages:\n", "stages:\n" + stages, 1)
    text = text.replace(
        "deps: [src/train.py, data/iris.csv]",
        "deps: [src/train.py, data/iris.csv, stamp.txt, prep.txt]",
    )
    dvc_repo.write("dvc.yaml", text)
    dvc_repo.write("src/prep.py", "open('prep.txt', 'w').write('prepared')\n")
    dvc_repo.write("src/stamp.py", "import time\nopen('stamp.txt', 'w').write(str(time.time()))\n")
    dvc_repo.dvc("reproduce")
    dvc_repo.dvc("freeze", "prep")
    dvc_repo.commit("a stamp before training, a frozen preparation")
    dvc_repo.write("src/prep.py", "open('prep.txt', 'w').write('prepared again')\n")
    dvc_repo.commit("prep.py edited, its stage frozen")

    assert dvc_repo.dvc("status") == {"stamp": ["always changed"]}
    c = status(dvc_repo)
    assert c.problems == []
    assert c.notes == [
        "stage stamp: always_changed: 'dvc status' always lists it and 'dvc repro' reruns it "
        "and the stages after it; the release is what dvc.lock recorded",
        "stage prep: frozen: its dependencies are not checked, as 'dvc status' does not check "
        "them ('dvc unfreeze prep' to check them again)",
    ]

    dvc_repo.dvc("unfreeze", "prep")  # unfrozen, the edit shows in both
    dvc_repo.commit("prep unfrozen")
    assert dvc_repo.dvc("status")["prep"] == [{"changed deps": {"src/prep.py": "modified"}}]
    assert status(dvc_repo).problems == ["prep: dependency src/prep.py changed"]


def test_tsv_and_csv_metrics_are_what_dvc_reads_of_them_and_named_in_a_note(
    dvc_repo: DvcRepo,
) -> None:
    """DVC 3 reads a metrics file as JSON, TOML or YAML by its extension: a TSV is a YAML
    error ('dvc metrics show' shows '-'), a CSV one line of text; relman shows no values
    from either, and a note says why."""
    dvc_repo.write("eval/scores.tsv", "auc\tloss\n0.9\t0.2\n")
    dvc_repo.write("eval/scores.csv", "auc,loss\n0.9,0.2\n")
    dvc_repo.write(
        "dvc.yaml",
        (dvc_repo.root / "dvc.yaml").read_text()
        + "metrics:\n- eval/scores.tsv\n- eval/scores.csv\n",
    )
    dvc_repo.commit("metrics in TSV and CSV")
    from dvc.repo import Repo
    from dvc.repo.metrics.show import show

    with Repo(str(dvc_repo.root)) as repo:
        shown = show(repo)[""]["data"]
    assert "error" in shown["eval/scores.tsv"]
    assert shown["eval/scores.csv"] == {"data": "auc,loss 0.9,0.2"}

    c = status(dvc_repo)
    assert c.metrics == {"metrics.json": {"accuracy": 0.95, "loss": {"train": 0.1}}}
    assert c.problems == []
    read_as = "it reads metrics files as JSON, TOML or YAML (by extension, any other as YAML)"
    assert [note for note in c.notes if note.startswith("metrics ")] == [
        f"metrics eval/scores.tsv: not shown: DVC 3 cannot parse it ('dvc metrics show' shows "
        f"'-'); {read_as}: write them so to see them here",
        "metrics eval/scores.csv: not shown: DVC 3 reads it as YAML: one line of text ('dvc "
        f"metrics show' shows that text); {read_as}: write them so to see them here",
    ]


# ------------------------------------------------------------------ what the release id follows

BENTOFILE = 'service: "service:Svc"\ninclude:\n  - "service.py"\n  - "src/**/*.py"\n'


@pytest.fixture
def served_repo(dvc_repo: DvcRepo) -> DvcRepo:
    """The fixture repository with a service and a bentofile that packs only its code."""
    dvc_repo.write("bentofile.yaml", BENTOFILE)
    dvc_repo.write("service.py", "class Svc: ...\n")
    dvc_repo.write("relman.toml", "[environments.dev]\nport = 3100\n")
    dvc_repo.commit("a service")
    return dvc_repo


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("relman.toml", "[environments.dev]\nport = 3107\n"),
        ("README.md", "# how to run it\n"),
        ("notebooks/explore.py", "# outside the bentofile's include\n"),
    ],
)
def test_a_commit_outside_what_the_release_serves_keeps_its_id(
    served_repo: DvcRepo, path: str, text: str
) -> None:
    before = status(served_repo)
    served_repo.write(path, text)

    uncommitted = status(served_repo)
    assert uncommitted.git.dirty and not uncommitted.dirty
    assert uncommitted.release == before.release and uncommitted.problems == []
    assert any(
        path in note and "do not change the release id" in note for note in uncommitted.notes
    )

    committed = served_repo.commit(f"only {path}")
    after = status(served_repo)
    assert after.release == before.release
    assert after.git.commit == committed != before.git.commit


def test_a_change_to_the_served_code_is_a_new_release(served_repo: DvcRepo) -> None:
    before = status(served_repo)
    served_repo.write("service.py", "class Svc:\n    version = 2\n")

    dirty = status(served_repo)
    assert dirty.dirty and dirty.release.endswith("-dirty")
    assert dirty.dirty_files == ["service.py"]
    assert any(
        p.startswith("working tree: 1 uncommitted change(s) (service.py)") for p in dirty.problems
    )

    served_repo.commit("new code")
    assert status(served_repo).release not in (before.release, dirty.release)


def test_a_new_model_data_or_params_is_a_new_release(served_repo: DvcRepo) -> None:
    seen = {status(served_repo).release}
    # params: a new lr trains a new model
    served_repo.write("params.yaml", "lr: 0.3\n")
    assert status(served_repo).dirty  # an uncommitted params file is part of the release
    served_repo.dvc("reproduce")
    served_repo.commit("lr 0.3")
    seen.add(status(served_repo).release)
    # data: one more row, tracked again, the model retrained
    (served_repo.root / "data/iris.csv").unlink()
    served_repo.write("data/iris.csv", "sepal,petal,label\n5.1,1.4,setosa\n7.0,4.7,versicolor\n")
    served_repo.dvc("add", "data/iris.csv")
    served_repo.dvc("reproduce")
    served_repo.commit("new data")
    seen.add(status(served_repo).release)
    assert len(seen) == 3

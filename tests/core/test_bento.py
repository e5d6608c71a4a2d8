"""core.build.bento without a real build: labels, the store lookup, what is refused and why, and the
build script's protocol (real child processes of real interpreters, BentoML's own config
loader for bad bentofiles)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import venv
from pathlib import Path

import pytest
import yaml

from core.build import bento
from core.build.bento import BuildResult, build_release, check_buildable
from core.build.bento_runner import MARKER
from core.build.bento_store import (
    BentoRef,
    bento_labels,
    bentoml_home,
    check_labels,
    find_bento,
    read_bento,
    relman_version,
)
from core.cancel import Cancelled
from core.config.model import Project, load_project
from core.errors import (
    BlockedError,
    ConfigError,
    InfraError,
    ProjectError,
    ReadOnlyError,
    UsageError,
)
from core.host.processes import pid_alive
from core.ledger.releases import open_ledger
from core.lineage.candidate import Candidate
from core.lineage.dvcinfo import ArtifactInfo
from core.lineage.gitinfo import GitInfo
from store import ReleaseRecord
from tests.core.conftest import DvcRepo
from tests.waiting import wait_for

RELEASE = "abc123def456"
COMMIT = "0123456789abcdef0123456789abcdef01234567"

RELMAN_TOML = """\
[project]
name = "demo"
{python}
[services.iris]
bento = "service:IrisClassifier"
build = "bentofile.yaml"
model = ["clf"]
data = ["iris"]
"""


def artifact(path: str, md5: str | None) -> ArtifactInfo:
    return ArtifactInfo(path=path, md5=md5, size=10, nfiles=None, cache="local")


def candidate(
    release: str = RELEASE,
    *,
    dirty_files: list[str] | None = None,
    problems: list[str] | None = None,
    models: int = 1,
) -> Candidate:
    git = GitInfo(
        commit=COMMIT,
        short=COMMIT[:7],
        branch="main",
        message="train",
        author="Test Author",
        committed_at="2025-01-01T00:00:00+00:00",
        dirty=bool(dirty_files),
        dirty_files=list(dirty_files or []),
    )
    return Candidate(
        release=release,
        git=git,
        model=[artifact(f"models/m{i}.pkl", f"{i}" * 32) for i in range(models)],
        data=[artifact("data/iris.csv", "d" * 32)],
        params={},
        metrics={},
        problems=list(problems or []),
    )


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "bentoml-home"
    monkeypatch.setenv("BENTOML_HOME", str(home))
    return home / "bentos"


def make_project(root: Path, *, python: str | None = None, bentofile: str | None = "") -> Project:
    root.mkdir(parents=True, exist_ok=True)
    line = f"python = {json.dumps(python)}\n" if python else ""
    (root / "relman.toml").write_text(RELMAN_TOML.format(python=line))
    if bentofile is not None:
        (root / "bentofile.yaml").write_text(bentofile or 'service: "service:IrisClassifier"\n')
    return load_project(root)


def store_bento(store: Path, name: str, version: str, labels: dict[str, str] | None = None) -> Path:
    folder = store / name / version
    folder.mkdir(parents=True)
    info = {"service": "service:IrisClassifier", "name": name, "version": version}
    info["labels"] = labels if labels is not None else {"project": "demo"}
    (folder / "bento.yaml").write_text(yaml.safe_dump(info))
    (store / name / "latest").write_text(version)
    return folder


def relman_labels(release: str = RELEASE, service: str = "iris") -> dict[str, str]:
    return {"relman.release": release, "relman.service": service}


# ------------------------------------------------------------------------------------ labels


def test_labels_carry_the_lineage_as_strings() -> None:
    labels = bento_labels("iris", candidate(models=2), version="v1.2.0")
    assert labels == {
        "relman.release": RELEASE,
        "relman.service": "iris",
        "relman.git_commit": COMMIT,
        "relman.model_md5": "0" * 32 + "," + "1" * 32,
        "relman.data_md5": "d" * 32,
        "relman.version": "v1.2.0",
        "relman.relman_version": relman_version(),
    }
    assert relman_version()  # the installed package's version


def test_empty_labels_are_left_out() -> None:
    cand = candidate()
    cand = Candidate(**{**cand.__dict__, "data": []})
    labels = bento_labels("iris", cand)
    assert "relman.data_md5" not in labels
    assert "relman.version" not in labels


def test_label_values_are_one_printable_line() -> None:
    labels = bento_labels("iris", candidate(), version="v1\n\tbeta\x00")
    assert labels["relman.version"] == "v1 beta"


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ({"relman.Release": "x"}, "lowercase"),
        ({"relman release": "x"}, "lowercase"),
        ({"r" * 64: "x"}, "63"),
        ({"relman.release": 3}, "strings"),
        ({"relman.release": "a\nb"}, "printable line"),
    ],
)
def test_check_labels_refuses_what_bentoml_or_relman_cannot_take(
    labels: dict[str, str], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        check_labels(labels)


# ----------------------------------------------------------------------------- the Bento store


def test_bentoml_home_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    monkeypatch.delenv("BENTOML_HOME", raising=False)
    assert bentoml_home() == Path("/home/someone/bentoml")
    monkeypatch.setenv("BENTOML_HOME", "")
    assert bentoml_home() == Path("/home/someone/bentoml")
    monkeypatch.setenv("STORE_ROOT", "/srv/$OTHER")
    monkeypatch.setenv("OTHER", "bento")
    monkeypatch.setenv("BENTOML_HOME", "$STORE_ROOT/home")
    assert bentoml_home() == Path("/srv/bento/home")
    monkeypatch.setenv("BENTOML_HOME", "~/store")
    assert bentoml_home() == Path("/home/someone/store")


def test_find_bento_matches_release_and_service_labels(store: Path) -> None:
    folder = store_bento(store, "iris_classifier", RELEASE, {"a": "b", **relman_labels()})
    store_bento(store, "other_service", "fedcba987654", relman_labels("fedcba987654"))
    found = find_bento("iris", RELEASE)
    assert found == BentoRef(
        tag=f"iris_classifier:{RELEASE}",
        path=folder,
        release=RELEASE,
        service="iris",
        labels={"a": "b", **relman_labels()},
    )
    assert find_bento("other", RELEASE) is None  # the same release id, another service
    assert find_bento("iris", "999999999999") is None


def test_find_bento_ignores_bentos_relman_did_not_make(store: Path) -> None:
    store_bento(store, "by_hand", RELEASE)  # the release's version, no relman labels
    store_bento(store, "other_release", RELEASE, relman_labels("000000000000"))
    broken = store / "broken" / RELEASE
    broken.mkdir(parents=True)
    (broken / "bento.yaml").write_text("name: [unclosed\n")
    (store / "no_yaml" / RELEASE).mkdir(parents=True)
    assert find_bento("iris", RELEASE) is None
    wanted = store_bento(store, "zz_relman", RELEASE, relman_labels())
    assert find_bento("iris", RELEASE) == read_bento(wanted)


def test_find_bento_never_matches_a_dirty_or_odd_id(store: Path) -> None:
    store_bento(store, "iris_classifier", "x", relman_labels("*"))
    assert find_bento("iris", f"{RELEASE}-dirty") is None
    assert find_bento("iris", "*") is None
    assert find_bento("iris", "../x") is None


def test_find_bento_on_a_missing_store(store: Path) -> None:
    assert not store.exists()
    assert find_bento("iris", RELEASE) is None


# ------------------------------------------------------------------------------ refusals


def test_a_dirty_release_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    dirty = candidate(f"{RELEASE}-dirty", dirty_files=["service.py", "params.yaml"])
    with pytest.raises(BlockedError) as caught:
        check_buildable(project, "iris", dirty)
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        "iris: working tree has uncommitted changes (service.py, params.yaml); "
        "commit them so the Bento matches a release"
    )


def test_a_candidate_with_a_lineage_problem_is_refused(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    cand = candidate(problems=["models/model.pkl: changed since dvc.lock (run dvc repro)", "x"])
    with pytest.raises(BlockedError, match=r"changed since dvc.lock \(run dvc repro\) \(and 1 "):
        check_buildable(project, "iris", cand)


def test_a_missing_build_config_names_relman_toml_and_its_line(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", bentofile=None)
    with pytest.raises(ConfigError) as caught:
        check_buildable(project, "iris", candidate())
    assert caught.value.exit_code == 2
    message = str(caught.value)
    assert ":6: [services.iris] build = 'bentofile.yaml': file not found (looked for " in message
    assert message.startswith(str(project.config_path)) or message.startswith("relman.toml")
    assert "\n" not in message


def test_a_stored_bento_is_reused_without_running_anything(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = make_project(tmp_path / "p")
    store_bento(store, "iris_classifier", RELEASE, relman_labels())

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a reused Bento must not start a build")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    result = build_release(project, "iris", candidate())
    assert result.reused
    assert result.bento.tag == f"iris_classifier:{RELEASE}"
    step = result.to_step()
    assert step["name"] == "build" and step["status"] == "passed"
    assert step["detail"] == f"reused iris_classifier:{RELEASE}"
    assert {"seconds", "bento", "reused", "release", "service"} <= set(step)


def test_the_built_detail_says_how_long() -> None:
    ref = BentoRef("iris_classifier:x", Path("/b"), "x", "iris", {})
    assert BuildResult(ref, reused=False, seconds=2.34).detail == "built iris_classifier:x in 2.3 s"


# --------------------------------------------------------------- the build script's protocol


def fake_python(tmp_path: Path, body: str) -> str:
    """An executable standing in for the project's interpreter: a shell script."""
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="module")
def python_without_bentoml(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real virtual environment, without BentoML (or anything else)."""
    where = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    return str(where / "bin" / "python")


def test_bentoml_missing_from_the_projects_environment(
    tmp_path: Path, store: Path, python_without_bentoml: str
) -> None:
    project = make_project(tmp_path / "p", python=python_without_bentoml)
    with pytest.raises(ConfigError) as caught:
        build_release(project, "iris", candidate())
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(
        f"bentoml is not installed in {python_without_bentoml}; pip install bentoml in the "
        "project's environment"
    )


def test_an_interpreter_that_does_not_exist(tmp_path: Path, store: Path) -> None:
    project = make_project(tmp_path / "p", python="env/bin/python")
    with pytest.raises(ProjectError, match=r"cannot run the project's python .*env/bin/python"):
        build_release(project, "iris", candidate())


@pytest.mark.parametrize(
    ("bentofile", "expected"),
    [
        ('service: "service:IrisClassifier"\nbogus: 1\n', "unknown key(s): bogus"),
        ("service: [unclosed\n", "line 2: invalid YAML: expected ',' or ']'"),
        ('service: "service:IrisClassifier"\ninclude: 3\n', "bad value for 'include'"),
        ("- a list\n", "not a mapping of build options"),
        ("", "not a mapping of build options"),
        ("labels: {a: b}\n", "names no service; add service: 'service:IrisClassifier'"),
        (
            'service: "other:Thing"\n',
            "builds service 'other:Thing', but relman.toml's bento is 'service:IrisClassifier'",
        ),
    ],
)
def test_an_invalid_bentofile_is_a_config_error_with_bentomls_reason(
    tmp_path: Path, store: Path, bentofile: str, expected: str
) -> None:
    project = make_project(tmp_path / "p", bentofile=bentofile or "\n")
    lines: list[str] = []
    with pytest.raises(ConfigError) as caught:
        build_release(project, "iris", candidate(), log=lines.append)
    message = str(caught.value)
    assert message.startswith(str(project.root / "bentofile.yaml"))
    assert expected in message
    assert message.endswith("; fix the BentoML build config of [services.iris]")
    assert not any(line.startswith(MARKER) for line in lines)


def test_a_service_that_does_not_import_says_why(tmp_path: Path, store: Path) -> None:
    project = make_project(tmp_path / "p")
    (project.root / "service.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(ConfigError) as caught:
        build_release(project, "iris", candidate())
    message = str(caught.value)
    assert "bentofile.yaml: cannot import the service 'service:IrisClassifier': " in message
    assert "No module named 'no_such_module_anywhere'" in message
    assert message.endswith(f"in the project's environment ({sys.executable})")


def test_a_service_py_spelling_of_the_same_service_is_accepted(tmp_path: Path) -> None:
    from core.build.bento_build_script import _import_path

    assert _import_path("service.py:IrisClassifier") == _import_path("service:IrisClassifier")
    assert _import_path("pkg/svc.py:A") == "pkg.svc:A"


def test_output_streams_line_by_line_and_the_marker_is_not_logged(
    tmp_path: Path, store: Path
) -> None:
    folder = store / "iris_classifier" / RELEASE
    python = fake_python(
        tmp_path,
        f"""\
        echo "first line"
        printf 'progress 1\\rprogress 2\\n'
        mkdir -p {folder}
        printf 'name: iris_classifier\\nversion: {RELEASE}\\nlabels:\\n' > {folder}/bento.yaml
        printf '  relman.release: "{RELEASE}"\\n  relman.service: iris\\n' >> {folder}/bento.yaml
        echo 'RELMAN_BENTO {{"kind": "built", "path": "{folder}"}}'
        """,
    )
    project = make_project(tmp_path / "p", python=python)
    lines: list[str] = []
    result = build_release(project, "iris", candidate(), log=lines.append)
    assert lines == ["first line", "progress 2"]
    assert not result.reused
    assert result.bento.tag == f"iris_classifier:{RELEASE}"
    assert result.bento.path == folder


def test_a_crashing_build_is_an_infra_error_quoting_the_last_lines(
    tmp_path: Path, store: Path
) -> None:
    python = fake_python(
        tmp_path,
        """\
        for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo "line $i"; done
        exit 7
        """,
    )
    project = make_project(tmp_path / "p", python=python)
    with pytest.raises(InfraError) as caught:
        build_release(project, "iris", candidate())
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert f"the Bento of iris (release {RELEASE}): the build exited with code 7" in message
    assert message.endswith("; last output: " + " | ".join(f"line {i}" for i in range(3, 13)))


def test_a_failed_build_reports_bentomls_error(tmp_path: Path, store: Path) -> None:
    python = fake_python(
        tmp_path,
        """\
        echo "Locking PyPI package versions."
        echo 'RELMAN_BENTO {"kind": "error", "message": "BentoMLException: Failed to lock"}'
        exit 1
        """,
    )
    project = make_project(tmp_path / "p", python=python)
    with pytest.raises(InfraError) as caught:
        build_release(project, "iris", candidate())
    assert str(caught.value) == (
        f"the Bento of iris (release {RELEASE}) failed: BentoMLException: Failed to lock; "
        "last output: Locking PyPI package versions."
    )


def test_a_hanging_build_is_stopped_with_its_process_group(tmp_path: Path, store: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    python = fake_python(
        tmp_path,
        f"""\
        sleep {GRANDCHILD_SECONDS} &
        echo $! > {pid_file}
        echo "waiting"
        wait
        """,
    )
    project = make_project(tmp_path / "p", python=python)
    # The timeout is what is under test; 2 s is room for the script to say "waiting" first.
    with pytest.raises(InfraError, match="timed out without a result; last output: waiting"):
        build_release(project, "iris", candidate(), timeout=2)
    wait_until_stopped(int(pid_file.read_text()))


# The grandchild a fake build leaves behind sleeps far longer than wait_until_stopped waits:
# if it is gone by then, relman stopped it; it did not end on its own.
GRANDCHILD_SECONDS = 600


def wait_until_stopped(pid: int) -> None:
    try:
        wait_for(lambda: not alive(pid), f"the build's grandchild {pid} to be stopped")
    finally:  # a failing test leaves no sleeper behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    return pid_alive(pid)


def test_another_builders_bento_of_the_same_tag_is_reused(tmp_path: Path, store: Path) -> None:
    folder = store / "iris_classifier" / RELEASE
    python = fake_python(
        tmp_path,
        f"""\
        mkdir -p {folder}
        printf 'name: iris_classifier\\nversion: {RELEASE}\\nlabels:\\n' > {folder}/bento.yaml
        printf '  relman.release: "{RELEASE}"\\n  relman.service: iris\\n' >> {folder}/bento.yaml
        echo 'RELMAN_BENTO {{"kind": "exists", "message": "Item already exists in the store"}}'
        exit 1
        """,
    )
    project = make_project(tmp_path / "p", python=python)
    result = build_release(project, "iris", candidate())
    assert result.reused and result.bento.path == folder


def test_importing_core_bento_loads_no_bentoml() -> None:
    code = (
        "import sys, core.build.bento, core.build.bento_build_script; "
        "print('bentoml' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------- build(): checked, then recorded


@pytest.fixture
def repo_project(dvc_repo: DvcRepo, tmp_path: Path, store: Path) -> Project:
    """The fixture git + DVC repository as a relman project whose interpreter is a fake
    build that prints two lines and fails (replace ``tmp_path / "fake-python"`` to change)."""
    python = fake_python(tmp_path, 'echo "Locking PyPI package versions."\necho boom\nexit 3\n')
    dvc_repo.write(".gitignore", ".relman/\n")
    dvc_repo.write("relman.toml", RELMAN_TOML.format(python=f"python = {json.dumps(python)}\n"))
    dvc_repo.write("bentofile.yaml", 'service: "service:IrisClassifier"\n')
    dvc_repo.commit("relman")
    return load_project(dvc_repo.root)


def test_a_failed_build_leaves_its_run_in_error_with_a_failed_step(repo_project: Project) -> None:
    with pytest.raises(InfraError, match="the build exited with code 3") as caught:
        bento.build(repo_project, "iris")
    with open_ledger(repo_project, read_only=True) as ledger:
        run = ledger.latest_run("build", service="iris")
        assert run is not None
        steps = ledger.steps(run.id)
    assert run.status == "error"
    assert run.reason == f"the Bento could not be built: {caught.value}"
    assert [(s.name, s.status, s.detail) for s in steps] == [("build", "failed", str(caught.value))]
    assert ledger_release(repo_project, run.release_id).service == "iris"


def test_ctrl_c_during_a_build_leaves_its_run_interrupted(repo_project: Project) -> None:
    def interrupt(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bento.build(repo_project, log=interrupt)
    with open_ledger(repo_project, read_only=True) as ledger:
        run = ledger.latest_run("build", service="iris")
    assert run is not None
    assert (run.status, run.reason) == ("interrupted", "interrupted while building the Bento")


def test_build_refuses_read_only_mode_and_unknown_services(repo_project: Project) -> None:
    with pytest.raises(ReadOnlyError, match="relman build: refused in read-only mode"):
        bento.build(repo_project, read_only=True)
    with pytest.raises(UsageError, match=r"no service 'nope' in relman.toml \(services: iris\)"):
        bento.build(repo_project, "nope")
    assert not repo_project.ledger_path.exists()


def ledger_release(project: Project, release_id: str | None) -> ReleaseRecord:
    assert release_id is not None
    with open_ledger(project, read_only=True) as ledger:
        return ledger.get_release(release_id)


def test_a_foreign_bento_with_the_releases_tag_blocks_the_build(
    tmp_path: Path, store: Path
) -> None:
    store_bento(store, "iris_classifier", RELEASE, relman_labels(service="other"))
    message = f"Item 'iris_classifier:{RELEASE}' already exists in the store /x"
    said = tmp_path / "said.txt"
    said.write_text(f"{MARKER} {json.dumps({'kind': 'exists', 'message': message})}\n")
    python = fake_python(tmp_path, f"cat {said}\nexit 1\n")
    project = make_project(tmp_path / "p", python=python)
    with pytest.raises(BlockedError) as caught:
        build_release(project, "iris", candidate())
    assert str(caught.value) == (
        f"the Bento of iris (release {RELEASE}): the BentoML store already holds "
        f"iris_classifier:{RELEASE}, which is not relman's Bento of iris at this release "
        "(built by hand, or by another service); remove it with 'bentoml delete "
        f"iris_classifier:{RELEASE}', or give this service's Bento its own name in its build "
        "config"
    )


def test_a_cancelled_build_stops_its_process_group_and_is_recorded(
    repo_project: Project, tmp_path: Path
) -> None:
    """The TUI's cancel: the build script and what it started stop, the run is recorded
    interrupted with a reason that says it was cancelled, and Cancelled says so."""
    pid_file = tmp_path / "grandchild.pid"
    fake_python(
        tmp_path,
        f"""\
        sleep {GRANDCHILD_SECONDS} &
        echo $! > {pid_file}
        echo "Locking PyPI package versions."
        wait
        """,
    )
    cancel = threading.Event()

    def log(line: str) -> None:
        if line.startswith("Locking"):  # the build is under way: cancel it, as a user would
            cancel.set()

    with pytest.raises(Cancelled) as caught:
        bento.build(repo_project, "iris", log=log, cancel=cancel)
    assert caught.value.exit_code == 1
    assert re.fullmatch(
        r"build cancelled after \d+\.\d s: the Bento of iris \(release \w+\) was not built "
        r"\(its build process was stopped\); recorded as interrupted "
        r"\(run #\d+\)",
        str(caught.value),
    )
    assert [(s["name"], s["status"], s["cancelled"]) for s in caught.value.steps] == [
        ("build", "failed", True)
    ]
    wait_until_stopped(int(pid_file.read_text()))
    with open_ledger(repo_project, read_only=True) as ledger:
        run = ledger.latest_run("build", service="iris")
        assert run is not None
        steps = ledger.steps(run.id)
    assert run.status == "interrupted" and run.details["cancelled"] is True
    assert run.reason.startswith("cancelled: build cancelled after ")
    assert [(s.name, s.status) for s in steps] == [("build", "failed")]
    assert steps[0].detail.startswith("build cancelled after ")


def test_a_build_cancelled_before_it_starts_runs_nothing(tmp_path: Path, store: Path) -> None:
    marker = tmp_path / "ran"
    python = fake_python(tmp_path, f"touch {marker}\n")
    project = make_project(tmp_path / "p", python=python)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match="build cancelled before it started"):
        build_release(project, "iris", candidate(), cancel=cancel)
    assert not marker.exists()


HALF_COPY = """\
    mkdir -p "$BENTOML_HOME/bentos/iris_classifier/{release}"
    echo "service: half" > "$BENTOML_HOME/bentos/iris_classifier/{release}/bento.yaml"
    echo "Copying the Bento into the store"
    sleep 60
    """


def test_a_build_cancelled_while_copying_leaves_no_half_bento(tmp_path: Path, store: Path) -> None:
    store_bento(store, "iris_classifier", "other000000")  # not this build's: kept
    python = fake_python(tmp_path, HALF_COPY.format(release=RELEASE))
    project = make_project(tmp_path / "p", python=python)
    cancel = threading.Event()
    said: list[str] = []

    def log(line: str) -> None:
        said.append(line)
        if line.startswith("Copying"):
            cancel.set()

    with pytest.raises(Cancelled):
        build_release(project, "iris", candidate(), log=log, cancel=cancel)
    assert not (store / "iris_classifier" / RELEASE).exists()
    assert (store / "iris_classifier" / "other000000" / "bento.yaml").exists()
    assert any("half copied" in line for line in said)
    assert find_bento("iris", RELEASE) is None


def test_a_build_timed_out_while_copying_leaves_no_half_bento(tmp_path: Path, store: Path) -> None:
    python = fake_python(tmp_path, HALF_COPY.format(release=RELEASE))
    project = make_project(tmp_path / "p", python=python)
    with pytest.raises(InfraError, match="timed out without a result"):
        build_release(project, "iris", candidate(), timeout=1.0)
    assert not (store / "iris_classifier" / RELEASE).exists()


def test_a_build_interrupted_while_copying_leaves_no_half_bento(
    tmp_path: Path, store: Path
) -> None:
    """Ctrl-C reaches relman as KeyboardInterrupt while BentoML copies: the same cleanup."""
    python = fake_python(tmp_path, HALF_COPY.format(release=RELEASE))
    project = make_project(tmp_path / "p", python=python)

    def log(line: str) -> None:
        if line.startswith("Copying"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_release(project, "iris", candidate(), log=log)
    assert not (store / "iris_classifier" / RELEASE).exists()

"""Release images for real: `relman build --image` on the demo builds the release's OCI image
with podman (offline, on relman's base image), podman runs it here and it answers the sample
request; an environment with ``runtime = "image"`` serves releases from their images behind
the same proxy: promotion, a crash on start, rollback, a relman killed mid-promotion, down.

Skipped (one line) where podman or the base image is missing: `./dev image-base` installs and
builds them. One image is built per module (the fixture); what the module creates
(containers, images) is removed at its end. The demo copy gets a release of its own (a
comment in service.py), so its image tags are this module's alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.build.image import base_image, image_ref
from core.config.model import load_project
from core.host.containers import Engine, find_engine
from core.host.ports import side_port
from core.host.processes import end_child, read_pid
from core.ledger.releases import open_ledger
from core.targets.container_run import ENV_LABEL, run_arguments
from tests.e2e.conftest import Demo
from tests.e2e.served import copy_demo, down_and_check, git, ports_of, predict, relman, relman_json
from tests.e2e.served import second_release as retrain
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("images")]

# Wheels for the images, kept between test runs like the base image (a cache: content only).
WHEEL_CACHE = "/var/tmp/relman-test-wheels"
LABELS = {"setosa", "versicolor", "virginica"}


@dataclass(frozen=True)
class Imaged:
    root: Path
    engine: Engine
    built: dict
    release: str
    candidate: dict  # its lineage, as `relman status` showed it when it was built
    again: dict  # the same `relman build --image` once more

    @property
    def dev_folder(self) -> Path:
        return self.root / ".relman" / "envs" / "iris" / "dev"


@pytest.fixture(scope="session")
def podman() -> Engine:
    """podman with the base image, or the module skipped before the demo is copied."""
    engine = find_engine("podman")
    base = base_image()
    if engine is None or engine.image(base) is None:
        pytest.skip(
            f"podman or its base image {base} is missing: `./dev image-base` installs podman, "
            "runc and debootstrap (as root) and builds it"
        )
    return engine


@pytest.fixture(scope="module")
def imaged(
    podman: Engine, demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Imaged]:
    """The demo with dev on images and a release of its own, built with `relman build
    --image` once for the module; afterwards nothing of it runs and its images are gone."""
    engine = podman
    root = copy_demo(demo, tmp_path_factory.mktemp("image") / "iris-demo")
    config = root / "relman.toml"
    # dev runs images and needs no suites: this module is about images, not gates.
    text, count = re.subn(
        r"(\[environments\.dev\]\nport = \d+\n)suites = \[[^\]]*\]\n",
        r'\1runtime = "image"\n',
        config.read_text(),
    )
    assert count == 1, "the demo's [environments.dev] changed: update this fixture"
    config.write_text(text)
    service = root / "service.py"
    service.write_text(service.read_text() + f"\n# image test {uuid.uuid4().hex}\n")
    git(root, "commit", "-qam", "dev runs images; a release of this module's own")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RELMAN_WHEEL_CACHE", WHEEL_CACHE)
        try:
            built = relman_json(root, "build", "--image")
            assert built["_exit"] == 0, built["_stderr"]
            candidate = relman_json(root, "status")["services"][0]["candidate"]
            again = relman_json(root, "build", "--image")
            release = built["bentos"][0]["release"]
            yield Imaged(root, engine, built, release, candidate, again)
        finally:
            down_and_check(root)
            env_folder = root / ".relman" / "envs" / "iris" / "dev"
            for container in engine.containers(ENV_LABEL, str(env_folder)):
                engine.remove(container.name)
            with open_ledger(load_project(root), read_only=True) as ledger:
                releases = [release.id for release in ledger.releases("iris")]
            for release in releases:
                engine.remove_image(image_ref("iris", release))


def _containers(imaged: Imaged) -> list[str]:
    return sorted(c.name for c in imaged.engine.containers(ENV_LABEL, str(imaged.dev_folder)))


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


# ---------------------------------------------------------------------------- the image


def test_build_image_tags_the_release_and_labels_its_lineage(imaged: Imaged) -> None:
    built, release = imaged.built, imaged.release
    ref = f"localhost/relman/iris:{release}"
    assert [s["name"] for s in built["steps"]] == ["build", "image"]
    [image] = built["images"]
    assert image["ref"] == ref
    assert (image["builder"], image["engine"], image["reused"]) == ("offline", "podman", False)
    info = imaged.engine.image(ref)
    assert info is not None and info.id == image["id"] and info.size == image["size"]
    candidate = imaged.candidate
    assert candidate["release"] == release
    labels = info.labels
    assert labels["dev.relman.release"] == release
    assert labels["dev.relman.service"] == "iris"
    assert labels["dev.relman.git_commit"] == candidate["git"]["commit"]
    assert labels["org.opencontainers.image.revision"] == candidate["git"]["commit"]
    assert labels["dev.relman.model_md5"] == candidate["model"][0]["md5"]
    assert labels["dev.relman.data_md5"] == candidate["data"][0]["md5"]
    assert labels["dev.relman.bento"] == built["bentos"][0]["tag"]
    assert labels["org.opencontainers.image.created"].endswith("Z")
    # Recorded in the ledger with the Bento: the build run names the image.
    with open_ledger(load_project(imaged.root), read_only=True) as ledger:
        run = ledger.latest_run("build", release, status="passed")
        assert run is not None
        assert run.details["image"]["ref"] == ref
        assert [s.name for s in ledger.steps(run.id)] == ["build", "image"]
    # A release's image is built once.
    again = imaged.again
    assert again["_exit"] == 0, again["_stderr"]
    assert again["images"][0]["reused"] is True
    assert again["images"][0]["id"] == image["id"]


def test_podman_runs_the_image_and_it_answers_the_sample_request(imaged: Imaged) -> None:
    port = side_port()
    name = f"relman-test-{imaged.release}-{port}"
    monitoring = imaged.root / "run-by-hand"
    monitoring.mkdir()
    monitoring.chmod(0o777)
    command = imaged.engine.command(
        *run_arguments(
            image=image_ref("iris", imaged.release),
            name=name,
            host="127.0.0.1",
            port=port,
            env_folder=imaged.root / "by-hand",
            instance_folder=monitoring,
            monitoring=monitoring,
            environ={},
        )
    )
    child = subprocess.Popen(
        command,
        env=imaged.engine.environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _ready(port) or child.poll() is not None, "the container to be ready")
        assert child.poll() is None, child.stdout.read().decode() if child.stdout else ""
        answer = predict(port)
        assert len(answer) == 2 and set(answer) <= LABELS, answer
    finally:
        imaged.engine.stop(name, 10)
        imaged.engine.remove(name)
        end_child(child, grace=10)
    assert not imaged.engine.containers(ENV_LABEL, str(imaged.root / "by-hand"))


# ------------------------------------------------------------------- dev from its images


@pytest.mark.slow
def test_dev_serves_releases_from_their_images(imaged: Imaged) -> None:
    root, first = imaged.root, imaged.release
    dev = ports_of(root)["dev"]

    promoted = relman_json(root, "promote", "iris", "--to", "dev")
    assert promoted["_exit"] == 0, promoted["_stderr"]
    validate = next(s for s in promoted["steps"] if s["name"] == "validate")
    assert validate["detail"].startswith(f"localhost/relman/iris:{first} ready in ")
    [container] = _containers(imaged)
    assert container.startswith(f"relman-iris-demo-iris-dev-{first}-")
    assert set(predict(dev)) <= LABELS

    # A second release: the promotion builds its image (the Bento's first), then switches.
    retrain(root)
    second = relman_json(root, "status")["services"][0]["candidate"]["release"]
    promoted = relman_json(root, "promote", "iris", "--to", "dev")
    assert promoted["_exit"] == 0, promoted["_stderr"]
    names = [s["name"] for s in promoted["steps"]]
    assert names.index("build") < names.index("image") < names.index("lock"), names
    [container] = _containers(imaged)
    assert f"-{second}-" in container
    assert set(predict(dev)) <= LABELS

    # Rollback: the first image again; the second's container is gone.
    rolled = relman_json(root, "rollback", "iris", "--env", "dev")
    assert rolled["_exit"] == 0, rolled["_stderr"]
    [container] = _containers(imaged)
    assert f"-{first}-" in container

    # A release whose container crashes on start: exit 3, one line, the first still serves.
    service = root / "service.py"
    kept = service.read_text()
    service.write_text(
        kept + "import os\nif os.environ.get('BENTOML_CONTAINERIZED'):\n"
        "    raise RuntimeError('this release cannot start in a container')\n"
    )
    git(root, "commit", "-qam", "a release that crashes in its container")
    crashed = relman_json(root, "promote", "iris", "--to", "dev")
    assert crashed["_exit"] == 3, crashed["_stderr"]
    assert (
        "exited while starting in dev: RuntimeError: this release cannot start"
        in (crashed["error"])
    )
    assert crashed["error"].endswith(f"{first} still serves dev"), crashed["error"]
    assert "\n" not in crashed["error"]
    [container] = _containers(imaged)
    assert f"-{first}-" in container
    assert set(predict(dev)) <= LABELS

    # relman killed after validating the second release: its container is left running...
    killed = relman(
        root, "--batch", "promote", "iris", "--to", "dev", "--release", second,
        RELMAN_FAILPOINT="validate:done",
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert len(_containers(imaged)) == 2
    # ... and so is it when its podman client is killed too: only the label finds it.
    for folder in (imaged.dev_folder / "instances").glob(f"{second}-*"):
        pid = read_pid(folder / "pid")
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    state = relman_json(root, "status")["services"][0]["environments"]["dev"]
    assert state["release"] == first
    # The next promotion undoes the interrupted one, removes the orphan, and goes through.
    again = relman_json(root, "promote", "iris", "--to", "dev", "--release", second)
    assert again["_exit"] == 0, again["_stderr"]
    recovered = next(s for s in again["steps"] if s["name"] == "recover")
    assert f"{first} still serves dev" in recovered["detail"]
    [container] = _containers(imaged)
    assert f"-{second}-" in container

    # relman down stops it: no container of dev is left (the fixture checks the processes).
    down = relman(root, "--batch", "down")
    assert down.returncode == 0, down.stderr
    assert _containers(imaged) == []
    assert not _ready(dev)

"""`relman build --image` without building one: the image's name and labels, the
Containerfile, which builder a Bento gets, the podman command line of an instance, the
engine's answers parsed, and the one-line errors when podman or the base image is missing
(docs/targets.md, Images)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from core.build.bento_store import BentoRef
from core.build.image import (
    ImageSpec,
    build_image,
    builder_for,
    image_labels,
    image_ref,
    read_image_spec,
    render_containerfile,
    requirements_locked,
)
from core.config.model import load_project
from core.errors import ProjectError
from core.host import containers
from core.host.containers import Engine, _docker_container, _image_info, _podman_container
from core.targets.container_run import container_name, run_arguments
from tui.cli import run

BENTO_LABELS = {
    "project": "iris-demo",
    "relman.release": "4ee6ae6a9bad",
    "relman.service": "iris",
    "relman.git_commit": "0123456789abcdef0123456789abcdef01234567",
    "relman.model_md5": "c2bbd29e68d6fbfd0765ebe320d3f46e",
    "relman.data_md5": "013d0da08d6506664ce640459139176b",
    "relman.version": "v1.0.0",
    "relman.relman_version": "0.1.0",
}
PROJECT = """\
[project]
name = "iris-demo"

[services.iris]
bento = "service:IrisClassifier"
model = ["iris-model"]

[environments.dev]
port = 3100
runtime = "image"
"""


def _bento(path: Path, image: dict | None = None, **more: object) -> BentoRef:
    info = {
        "service": "service:IrisClassifier",
        "name": "iris_classifier",
        "version": "4ee6ae6a9bad",
        "labels": BENTO_LABELS,
        **more,
    }
    if image is not None:
        info["image"] = image
    path.mkdir(parents=True, exist_ok=True)
    (path / "bento.yaml").write_text(yaml.safe_dump(info))
    return BentoRef(
        "iris_classifier:4ee6ae6a9bad", path, "4ee6ae6a9bad", "iris", dict(BENTO_LABELS)
    )


DEFAULT_IMAGE = {
    "base_image": "python:3.11-slim",
    "python_version": "3.11",
    "commands": [
        "apt-get update && apt-get install -q -y --no-install-recommends "
        "--allow-remove-essential ca-certificates gnupg2 bash build-essential git"
    ],
    "python_requirements": "scikit-learn\nnumpy\nbentoml==1.4.40\n",
    "post_commands": [],
}


# ------------------------------------------------------------------------- name and labels


def test_the_image_is_named_after_service_and_release() -> None:
    assert image_ref("iris", "4ee6ae6a9bad") == "localhost/relman/iris:4ee6ae6a9bad"
    # Image names are lowercase letters, digits and separators.
    assert image_ref("Fraud Model", "abc") == "localhost/relman/fraud-model:abc"


def test_labels_carry_the_lineage_and_the_oci_keys(tmp_path: Path) -> None:
    bento = _bento(tmp_path / "b")
    labels = image_labels(
        bento,
        builder="offline",
        created="2026-12-07T10:00:00Z",
        base="localhost/relman-base:bookworm",
        source="https://example.com/acme/iris.git",
    )
    assert labels == {
        "dev.relman.release": "4ee6ae6a9bad",
        "dev.relman.service": "iris",
        "dev.relman.git_commit": "0123456789abcdef0123456789abcdef01234567",
        "dev.relman.model_md5": "c2bbd29e68d6fbfd0765ebe320d3f46e",
        "dev.relman.data_md5": "013d0da08d6506664ce640459139176b",
        "dev.relman.version": "v1.0.0",
        "dev.relman.relman_version": "0.1.0",
        "dev.relman.bento": "iris_classifier:4ee6ae6a9bad",
        "dev.relman.builder": "offline",
        "org.opencontainers.image.title": "iris",
        "org.opencontainers.image.version": "v1.0.0",
        "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567",
        "org.opencontainers.image.created": "2026-12-07T10:00:00Z",
        "org.opencontainers.image.source": "https://example.com/acme/iris.git",
        "org.opencontainers.image.base.name": "localhost/relman-base:bookworm",
    }
    # The Bento's own labels (project) are not lineage; no source or base: left out.
    bare = image_labels(bento, builder="containerize", created="2026-12-07T10:00:00Z")
    assert "org.opencontainers.image.source" not in bare
    assert "org.opencontainers.image.base.name" not in bare
    assert not any(key.endswith("project") for key in bare)


# ---------------------------------------------------------------------- the Containerfile


def test_the_containerfile_installs_the_wheels_offline_and_runs_the_bentos_entrypoint() -> None:
    text = render_containerfile(
        "localhost/relman-base:bookworm",
        labels={"dev.relman.release": "4ee6ae6a9bad"},
        envs={"MODE": "fast"},
        wheels_digest="abcdef",
    )
    lines = text.splitlines()
    assert lines[1] == "FROM localhost/relman-base:bookworm"
    install = next(line for line in lines if "pip install" in line)
    # Bind-mounted (never a layer), from the wheels alone, the digest in the cached command.
    assert install.startswith("RUN --mount=type=bind,source=wheels,target=/wheels ")
    assert ": wheels abcdef && python3 -m venv /app/.venv" in install
    assert "--no-index --find-links /wheels -r /wheels/requirements.txt" in install
    assert "-c /wheels/constraints.txt" in install
    assert "ENV MODE=fast" in lines
    assert "COPY --chown=1034:1034 bento /home/bentoml/bento" in lines
    assert "USER bentoml" in lines
    assert 'ENTRYPOINT ["/bin/bash", "/home/bentoml/bento/env/docker/entrypoint.sh"]' in lines
    # The labels last: one layer, after everything a cache can reuse.
    assert lines[-1] == 'LABEL "dev.relman.release"="4ee6ae6a9bad"'


def test_containerfile_words_are_quoted_so_nothing_expands_or_breaks() -> None:
    text = render_containerfile(
        "base", labels={"k": 'say "hi" to $HOME \\ now'}, envs={"GREETING": "a b"}
    )
    assert 'LABEL "k"="say \\"hi\\" to \\$HOME \\\\ now"' in text
    assert 'ENV GREETING="a b"' in text
    several = render_containerfile("base", labels={"a": "1", "b": "2"})
    assert several.endswith('LABEL "a"="1" \\\n    "b"="2"\n')


@pytest.mark.parametrize(
    ("text", "locked"),
    [
        ("scikit-learn==1.5.2\nnumpy==2.1.0\nbentoml==1.4.40\n", True),
        ("# locked by uv\n--index-url https://x\nnumpy==2.1.0 ; python_version >= '3.9'\n", True),
        ("uvicorn[standard]==0.30.0\n", True),
        ("numpy==2.1.0 \\\n    --hash=sha256:abc \\\n    # via scikit-learn\n", True),
        ("scikit-learn\nnumpy\nbentoml==1.4.40\n", False),
        ("numpy>=2\n", False),
        ("", False),
    ],
)
def test_requirements_count_as_locked_only_when_each_pins_one_version(
    text: str, locked: bool
) -> None:
    assert requirements_locked(text) is locked


# --------------------------------------------------------------------------- the builder


def test_a_bento_asking_for_the_default_image_is_built_offline(tmp_path: Path) -> None:
    bento = _bento(tmp_path / "b", DEFAULT_IMAGE, envs=[{"name": "MODE", "value": "fast"}])
    spec = read_image_spec(bento.path)
    assert spec.default_base
    assert spec.envs == {"MODE": "fast"}
    assert builder_for(spec) == ("offline", "the Bento asks for BentoML's default Debian image")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"base_image": "ghcr.io/acme/python:3.11"}, "names its base image ghcr.io/acme"),
        (
            {"commands": [*DEFAULT_IMAGE["commands"], "apt-get install -q -y libgomp1"]},
            "runs commands of its own",
        ),
        ({"post_commands": ["echo done"]}, "runs commands of its own"),
    ],
)
def test_a_bento_asking_for_more_goes_to_bentoml_containerize(
    tmp_path: Path, change: dict, why: str
) -> None:
    bento = _bento(tmp_path / "b", {**DEFAULT_IMAGE, **change})
    builder, reason = builder_for(read_image_spec(bento.path))
    assert builder == "containerize"
    assert why in reason


def test_a_setup_script_or_the_older_docker_section_is_read_too(tmp_path: Path) -> None:
    bento = _bento(tmp_path / "b", DEFAULT_IMAGE)
    (bento.path / "env" / "docker").mkdir(parents=True)
    (bento.path / "env" / "docker" / "setup_script").write_text("#!/bin/sh\n")
    assert builder_for(read_image_spec(bento.path)) == (
        "containerize",
        "the Bento's image has a setup script",
    )
    old = _bento(tmp_path / "old", docker={"distro": "debian", "system_packages": ["libgomp1"]})
    assert builder_for(read_image_spec(old.path))[0] == "containerize"
    plain = _bento(tmp_path / "plain", docker={"distro": "debian", "python_version": "3.11"})
    assert builder_for(read_image_spec(plain.path))[0] == "offline"
    assert builder_for(ImageSpec())[0] == "offline"


# ------------------------------------------------------------------ one line when missing


def test_build_image_without_podman_or_docker_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "relman.toml").write_text(PROJECT)
    monkeypatch.setattr(containers, "_which", lambda name: None)
    code = run(["--project", str(tmp_path), "build", "--image"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "relman: relman build --image: neither podman nor a running docker is available; "
        "install podman (Debian: apt-get install podman runc) or start docker\n"
    )


def test_a_missing_base_image_is_one_line_naming_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "relman.toml").write_text(PROJECT)
    project = load_project(tmp_path)
    bento = _bento(tmp_path / "bento", DEFAULT_IMAGE)
    monkeypatch.delenv("RELMAN_IMAGE_BASE", raising=False)
    # An engine whose storage holds nothing: `false image inspect ...` fails.
    empty = Engine("podman", "/bin/false")
    with pytest.raises(ProjectError) as info:
        build_image(project, empty, bento)
    assert str(info.value) == (
        "relman build --image: no base image localhost/relman-base:bookworm in podman's "
        "storage; build it once with `./dev image-base` in relman's checkout "
        "(docs/targets.md, Images)"
    )
    assert info.value.exit_code == 2


def test_runtime_is_validated_at_load_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "relman.toml").write_text(PROJECT.replace('"image"', '"docker"'))
    monkeypatch.chdir(tmp_path)
    assert run(["status"]) == 2
    assert capsys.readouterr().err == (
        "relman: relman.toml:10: bad value for 'runtime' in [environments.dev]: input should "
        "be 'bento' or 'image' (got 'docker')\n"
    )


def test_promoting_to_an_image_environment_without_podman_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "relman.toml").write_text(PROJECT)
    monkeypatch.setattr(containers, "_which", lambda name: None)
    code = run(["--project", str(tmp_path), "--batch", "promote", "iris", "--to", "dev"])
    assert code == 2
    assert capsys.readouterr().err == (
        'relman: [environments.dev] runtime = "image": podman is not installed; install it '
        "(Debian: apt-get install podman runc)\n"
    )


# ------------------------------------------------------------------- running an instance


def test_an_instance_container_is_named_labelled_limited_and_published_on_loopback(
    tmp_path: Path,
) -> None:
    name = container_name("iris demo", "iris", "dev", "4ee6ae6a9bad", 24600)
    assert name == "relman-iris_demo-iris-dev-4ee6ae6a9bad-24600"
    assert re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
    engine = Engine("podman", "/usr/bin/podman", "/usr/sbin/runc")
    command = engine.command(
        *run_arguments(
            image="localhost/relman/iris:4ee6ae6a9bad",
            name=name,
            host="127.0.0.1",
            port=24600,
            env_folder=tmp_path / "env",
            instance_folder=tmp_path / "env" / "instances" / "x",
            monitoring=tmp_path / "mon",
            environ={"BENTOML_CONFIG_OVERRIDES": '{"a": 1}'},
        )
    )
    assert command[:4] == ["/usr/bin/podman", "--runtime", "/usr/sbin/runc", "run"]
    assert command[-1] == "localhost/relman/iris:4ee6ae6a9bad"
    joined = " ".join(command)
    assert "--rm --replace --name relman-iris_demo-iris-dev-4ee6ae6a9bad-24600" in joined
    assert "--ulimit nofile=1024:1024 --ulimit nproc=1024:1024" in joined
    assert "--publish 127.0.0.1:24600:3000" in joined
    assert f"--label dev.relman.env-folder={tmp_path / 'env'}" in joined
    assert f"--volume {tmp_path / 'mon'}:/home/bentoml/monitoring" in joined
    assert '--env BENTOML_CONFIG_OVERRIDES={"a": 1}' in joined


# ----------------------------------------------------------------- the engine's answers


def test_the_engines_answers_are_read() -> None:
    image = _image_info(
        "localhost/relman/iris:x",
        {"Id": "sha256:1", "Size": 5, "Labels": {"a": "b"}, "Created": "2026-12-07T10:00:00Z"},
    )
    assert (image.id, image.size, image.labels) == ("sha256:1", 5, {"a": "b"})
    # docker keeps the labels under Config
    assert _image_info("r", {"Id": "2", "Config": {"Labels": {"c": "d"}}}).labels == {"c": "d"}
    podman = _podman_container(
        json.loads('{"Id": "abc", "Names": ["relman-x"], "State": "running", "Labels": {"k": "v"}}')
    )
    assert (podman.name, podman.state, podman.labels) == ("relman-x", "running", {"k": "v"})
    docker = _docker_container({"ID": "abc", "Names": "relman-x", "Labels": "k=v,dev.a=/x=y"})
    assert docker.labels == {"k": "v", "dev.a": "/x=y"}

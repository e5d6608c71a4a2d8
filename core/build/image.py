"""`relman build --image`: the OCI image of a release, built from its Bento (docs/targets.md,
Images).

The image is ``localhost/relman/SERVICE:RELEASE`` and carries the release's lineage as labels:
the Bento's ``relman.*`` labels as ``dev.relman.*`` (release, service, git commit, model and
data md5s, version), the Bento's tag and the builder, and the OCI annotation keys that fit
(``org.opencontainers.image.revision``, ``.created``, ``.version``, ``.title``, ``.source``
when the repository has an ``origin`` remote, ``.base.name``). An image already holding the
release is reused, as a Bento is.

Two builders, chosen from what the Bento asks of its image (its bento.yaml):

- ``offline`` when it asks for nothing but BentoML's default Debian image with Python: the
  Bento's locked requirements are downloaded as wheels on this machine (``pip download
  --only-binary=:all:`` by the project's interpreter, through a wheel cache; the versions of
  the project's environment pin what the Bento leaves unpinned, so the image runs what
  `bentoml serve` runs here), and a Containerfile ``FROM`` relman's base image (Debian with
  Python, built locally: ``./dev image-base``) installs them into ``/app/.venv`` with ``podman
  build --network none``, copies the Bento to ``/home/bentoml/bento`` and starts it with the
  Bento's own ``env/docker/entrypoint.sh``, as BentoML's images do. No registry, no network
  during the image build.
- ``containerize`` when the Bento names its own base image, system packages, a setup script,
  a conda environment or a Dockerfile template: ``bentoml containerize`` (BentoML's own
  Dockerfile), which pulls that base and installs the packages from the network while it
  builds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from core.build.bento_runner import Log, Streamed, run_streamed
from core.build.bento_store import LABEL_PREFIX, BentoRef, bentoml_home
from core.cancel import Cancelled, CancelSignal
from core.errors import BlockedError, ConfigError, InfraError, ProjectError
from core.host.containers import Engine, ImageInfo
from core.ledger.steps import step

if TYPE_CHECKING:
    from core.config.model import Project
    from core.documents import ImageEntry, Step

__all__ = [
    "BASE_COMMAND",
    "IMAGE_LABEL_PREFIX",
    "Builder",
    "ImageResult",
    "ImageSpec",
    "base_image",
    "build_image",
    "builder_for",
    "find_image",
    "image_labels",
    "image_ref",
    "read_image_spec",
    "render_containerfile",
    "requirements_locked",
]

Builder = Literal["offline", "containerize"]

REPOSITORY = "localhost/relman"
IMAGE_LABEL_PREFIX = "dev.relman."
OCI = "org.opencontainers.image."
# relman's base image (docs/targets.md, Images); RELMAN_IMAGE_BASE names another one.
BASE_VARIABLE = "RELMAN_IMAGE_BASE"
DEFAULT_BASE = "localhost/relman-base:bookworm"
BASE_COMMAND = "./dev image-base"
WHEEL_CACHE_VARIABLE = "RELMAN_WHEEL_CACHE"
# The base image's label saying which Python it has (``./dev image-base`` sets it).
BASE_PYTHON_LABEL = "dev.relman.python"
# BentoML's image user and layout (its Dockerfile templates).
BENTO_UID = 1034
BENTO_HOME = "/home/bentoml"
BENTO_PATH = f"{BENTO_HOME}/bento"
VENV = "/app/.venv"
# The debian distro's default install command (BentoML's CONTAINER_METADATA): a Bento whose
# image runs only this asks for no system packages of its own.
_DEFAULT_COMMAND = (
    "apt-get update && apt-get install -q -y --no-install-recommends "
    "--allow-remove-essential ca-certificates gnupg2 bash build-essential git"
)
DOWNLOAD_TIMEOUT = 900.0
BUILD_TIMEOUT = 1800.0
# A requirement pinned to one version: ``name==1.2.3``, ``name[extra]==1.2.3 ; marker``.
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s;=<>!~,]+\s*(;.*)?$")
_REPO_PART = re.compile(r"[^a-z0-9._-]+")


def _ignore(_line: str) -> None:
    pass


# ---------------------------------------------------------------------------------- naming


def image_ref(service: str, release: str) -> str:
    """``localhost/relman/SERVICE:RELEASE`` (the service name in the alphabet image names
    allow)."""
    name = _REPO_PART.sub("-", service.lower()).strip("-._") or "service"
    return f"{REPOSITORY}/{name}:{release}"


def base_image() -> str:
    """The base image of the offline builder: ``$RELMAN_IMAGE_BASE``, else relman's own."""
    return os.environ.get(BASE_VARIABLE) or DEFAULT_BASE


def image_labels(
    bento: BentoRef,
    *,
    builder: Builder,
    created: str,
    base: str | None = None,
    source: str | None = None,
) -> dict[str, str]:
    """The image's labels: the Bento's lineage (``relman.X`` as ``dev.relman.X``), its tag and
    the builder, and the OCI annotation keys that fit. Empty values are left out."""
    lineage = {
        IMAGE_LABEL_PREFIX + key.removeprefix(LABEL_PREFIX): value
        for key, value in bento.labels.items()
        if key.startswith(LABEL_PREFIX)
    }
    labels = {
        **lineage,
        f"{IMAGE_LABEL_PREFIX}release": bento.release,
        f"{IMAGE_LABEL_PREFIX}service": bento.service,
        f"{IMAGE_LABEL_PREFIX}bento": bento.tag,
        f"{IMAGE_LABEL_PREFIX}builder": builder,
        f"{OCI}title": bento.service,
        f"{OCI}version": bento.labels.get(f"{LABEL_PREFIX}version", ""),
        f"{OCI}revision": bento.labels.get(f"{LABEL_PREFIX}git_commit", ""),
        f"{OCI}created": created,
        f"{OCI}source": source or "",
        f"{OCI}base.name": base or "",
    }
    return {key: " ".join(value.split()) for key, value in labels.items() if value.strip()}


# ----------------------------------------------------------------------- the Bento's image


@dataclass(frozen=True)
class ImageSpec:
    """What a Bento asks of its image (bento.yaml's ``image`` section, or its older
    ``docker`` section, and the files BentoML put in ``env/``)."""

    base_image: str | None = None
    python_version: str | None = None
    commands: tuple[str, ...] = ()
    post_commands: tuple[str, ...] = ()
    envs: dict[str, str] = field(default_factory=dict)
    extras: tuple[str, ...] = ()  # setup script, conda environment, Dockerfile template

    @property
    def default_base(self) -> bool:
        """BentoML's default Debian image with Python: ``python:X.Y-slim`` (or none named)."""
        if self.base_image is None:
            return True
        return bool(self.python_version) and self.base_image == f"python:{self.python_version}-slim"


def read_image_spec(bento_path: Path) -> ImageSpec:
    """The image the Bento at ``bento_path`` asks for; ConfigError when its bento.yaml is
    unreadable."""
    try:
        info = yaml.safe_load((bento_path / "bento.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{bento_path / 'bento.yaml'}: cannot be read ({exc}); build the Bento again"
        ) from exc
    info = info if isinstance(info, dict) else {}
    image: dict[str, Any] | None = info["image"] if isinstance(info.get("image"), dict) else None
    docker: dict[str, Any] = info["docker"] if isinstance(info.get("docker"), dict) else {}
    envs = {
        str(entry.get("name")): str(entry.get("value", ""))
        for entry in info.get("envs") or []
        if isinstance(entry, dict) and entry.get("name") and entry.get("value") is not None
    }
    extras = [
        name
        for name, path in (
            ("a setup script", "env/docker/setup_script"),
            ("a Dockerfile template", "env/docker/Dockerfile.template"),
            ("a conda environment", "env/conda/environment.yml"),
        )
        if (bento_path / path).exists()
    ]
    if image is not None:
        commands = tuple(str(c) for c in image.get("commands") or [])
        return ImageSpec(
            base_image=_text(image.get("base_image")),
            python_version=_text(image.get("python_version")),
            commands=commands,
            post_commands=tuple(str(c) for c in image.get("post_commands") or []),
            envs=envs,
            extras=tuple(extras),
        )
    # BentoML's older spec: a docker section whose defaults are the debian distro.
    packages = docker.get("system_packages") or []
    distro = _text(docker.get("distro"))
    if distro and distro != "debian":
        extras.append(f"distro {distro}")
    if docker.get("cuda_version"):
        extras.append("CUDA")
    own_envs: dict[str, Any] = docker["env"] if isinstance(docker.get("env"), dict) else {}
    installs = [f"apt-get install {' '.join(map(str, packages))}"] if packages else []
    return ImageSpec(
        base_image=_text(docker.get("base_image")),
        python_version=_text(docker.get("python_version")),
        commands=(_DEFAULT_COMMAND, *installs),
        envs={**{str(k): str(v) for k, v in own_envs.items()}, **envs},
        extras=tuple(extras),
    )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def builder_for(spec: ImageSpec) -> tuple[Builder, str]:
    """Which builder makes the image of a Bento asking for ``spec``, and why (one phrase)."""
    if not spec.default_base:
        return "containerize", f"the Bento names its base image {spec.base_image}"
    extra_commands = [c for c in spec.commands if c != _DEFAULT_COMMAND] + list(spec.post_commands)
    if extra_commands:
        return "containerize", "the Bento's image runs commands of its own (system packages)"
    if spec.extras:
        return "containerize", f"the Bento's image has {', '.join(spec.extras)}"
    return "offline", "the Bento asks for BentoML's default Debian image"


# -------------------------------------------------------------------------- the Containerfile


def render_containerfile(
    base: str,
    *,
    labels: Mapping[str, str] | None = None,
    envs: Mapping[str, str] | None = None,
    wheels_digest: str = "",
) -> str:
    """The offline builder's Containerfile: BentoML's image layout (user 1034, the Bento in
    /home/bentoml/bento, a venv in /app/.venv, its entrypoint) on ``base``, installing the
    build context's ``wheels/`` (bind-mounted, never copied into a layer) without network,
    and ``labels`` in one last instruction (one layer, after everything that is cached).

    ``wheels_digest`` goes into the install step's command, so a layer cached for other
    wheels is never reused for these."""
    env_lines = "".join(f"ENV {name}={_env_value(value)}\n" for name, value in (envs or {}).items())
    label_line = ""
    if labels:
        pairs = " \\\n    ".join(f"{_quote(k)}={_quote(v)}" for k, v in labels.items())
        label_line = f"LABEL {pairs}\n"
    return (
        "# Generated by relman build --image (docs/targets.md, Images). Do not edit.\n"
        f"FROM {base}\n"
        "ENV LANG=C.UTF-8 LC_ALL=C.UTF-8 PYTHONIOENCODING=UTF-8 PYTHONUNBUFFERED=1\n"
        f"RUN groupadd -g {BENTO_UID} -o bentoml && "
        f"useradd -m -u {BENTO_UID} -g {BENTO_UID} -o -r bentoml\n"
        f"ENV BENTO_PATH={BENTO_PATH} BENTOML_HOME={BENTO_HOME}/ BENTOML_CONTAINERIZED=true\n"
        f"{env_lines}"
        "RUN --mount=type=bind,source=wheels,target=/wheels "
        f": wheels {wheels_digest or 'unknown'} && "
        f"python3 -m venv {VENV} && "
        f"{VENV}/bin/pip install --no-cache-dir --disable-pip-version-check --no-index "
        "--find-links /wheels -r /wheels/requirements.txt -c /wheels/constraints.txt\n"
        f"ENV VIRTUAL_ENV={VENV} "
        f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"COPY --chown={BENTO_UID}:{BENTO_UID} bento {BENTO_PATH}\n"
        f"WORKDIR {BENTO_PATH}\n"
        "USER bentoml\n"
        "EXPOSE 3000\n"
        f'ENTRYPOINT ["/bin/bash", "{BENTO_PATH}/env/docker/entrypoint.sh"]\n'
        f"{label_line}"
    )


def _env_value(value: str) -> str:
    return _quote(value) if re.search(r"[\s\"'$\\]", value) or not value else value


def _quote(value: str) -> str:
    """``value`` as a Containerfile's double-quoted word: no escape but the backslash, no
    variable expanded, no line broken."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{" ".join(escaped.splitlines())}"'


def requirements_locked(text: str) -> bool:
    """True when every requirement of a requirements.txt pins one version (``name==X``):
    BentoML locked them (``lock_packages``). Options and comments do not count."""
    # A trailing backslash continues a requirement onto its --hash lines.
    lines = [line.split(" #", 1)[0].strip().rstrip("\\").strip() for line in text.splitlines()]
    requirements = [line for line in lines if line and not line.startswith(("#", "-"))]
    return bool(requirements) and all(_PINNED.match(line) for line in requirements)


# -------------------------------------------------------------------------- finding one


def find_image(engine: Engine, service: str, release: str) -> ImageInfo | None:
    """The image relman built for ``service`` at ``release``, if the engine's storage holds
    it; BlockedError when its tag names an image of something else."""
    ref = image_ref(service, release)
    info = engine.image(ref)
    if info is None:
        return None
    said = (
        info.labels.get(f"{IMAGE_LABEL_PREFIX}release"),
        info.labels.get(f"{IMAGE_LABEL_PREFIX}service"),
    )
    if said != (release, service):
        raise BlockedError(
            f"{ref} in {engine.kind}'s storage is not relman's image of {service} at {release} "
            f"(labelled {said[1]!r} {said[0]!r}); remove it with `{engine.kind} rmi {ref}`"
        )
    return info


# ------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class ImageResult:
    """The image of one service's release: built now, or found and reused."""

    service: str
    release: str
    ref: str
    id: str
    size: int
    builder: str
    reused: bool
    seconds: float
    engine: str

    @property
    def detail(self) -> str:
        size = f"{self.size / 1e6:.0f} MB"
        if self.reused:
            return f"reused {self.ref} ({size})"
        return (
            f"built {self.ref} with {self.engine} ({self.builder}) in {self.seconds:.1f} s, {size}"
        )

    def to_step(self) -> Step:
        """The ``image`` step of docs/json.md (always passed: a failed build raises)."""
        return step(
            "image",
            "passed",
            self.seconds,
            self.detail,
            service=self.service,
            release=self.release,
            image=self.ref,
            reused=self.reused,
        )

    def to_dict(self) -> ImageEntry:
        """The ``images`` entry of ``relman build --image --json``."""
        return {
            "service": self.service,
            "release": self.release,
            "ref": self.ref,
            "id": self.id,
            "size": self.size,
            "builder": self.builder,
            "engine": self.engine,
            "reused": self.reused,
        }


def build_image(
    project: Project,
    engine: Engine,
    bento: BentoRef,
    *,
    log: Log = _ignore,
    cancel: CancelSignal | None = None,
) -> ImageResult:
    """The image of ``bento``'s release: the stored one when relman built it already, else
    built now (the builder's output streamed to ``log``)."""
    started = time.monotonic()
    ref = image_ref(bento.service, bento.release)
    found = find_image(engine, bento.service, bento.release)
    if found is not None:
        return _result(bento, found, engine, "reused", started, reused=True)
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"image build cancelled before it started: {ref} was not built")
    builder, why = builder_for(read_image_spec(bento.path))
    log(f"building {ref} with {engine.kind} ({builder}: {why})")
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if builder == "offline":
        base = base_image()
        labels = image_labels(
            bento, builder=builder, created=created, base=base, source=_source(project)
        )
        _build_offline(project, engine, bento, ref, base, labels, log, cancel)
    else:
        labels = image_labels(bento, builder=builder, created=created, source=_source(project))
        _containerize(project, engine, bento, ref, labels, log, cancel)
    info = engine.image(ref)
    if info is None:
        raise InfraError(
            f"{engine.kind} reported {ref} built, but its storage does not hold it; build again"
        )
    return _result(bento, info, engine, builder, started, reused=False)


def _result(
    bento: BentoRef, info: ImageInfo, engine: Engine, builder: str, started: float, *, reused: bool
) -> ImageResult:
    return ImageResult(
        service=bento.service,
        release=bento.release,
        ref=info.ref,
        id=info.id,
        size=info.size,
        builder=info.labels.get(f"{IMAGE_LABEL_PREFIX}builder", builder),
        reused=reused,
        seconds=time.monotonic() - started,
        engine=engine.kind,
    )


def _source(project: Project) -> str | None:
    """The repository's ``origin`` URL (OCI's image.source), without credentials."""
    try:
        done = subprocess.run(
            ["git", "-C", str(project.root), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    url = done.stdout.strip() if done.returncode == 0 else ""
    return re.sub(r"//[^/@]*@", "//", url) or None


def _build_offline(
    project: Project,
    engine: Engine,
    bento: BentoRef,
    ref: str,
    base: str,
    labels: dict[str, str],
    log: Log,
    cancel: CancelSignal | None,
) -> None:
    base_info = engine.image(base)
    if base_info is None:
        raise ProjectError(
            f"relman build --image: no base image {base} in {engine.kind}'s storage; build it "
            f"once with `{BASE_COMMAND}` in relman's checkout (docs/targets.md, Images)"
        )
    probe = _project_environment(project)
    wanted = base_info.labels.get(BASE_PYTHON_LABEL)
    if wanted and probe["python"] != wanted:
        raise ConfigError(
            f"relman build --image: the project's Python ({project.python()}) is "
            f"{probe['python']} and the base image {base} has {wanted}: wheels downloaded here "
            f"would not install there; set {BASE_VARIABLE} to a base image with Python "
            f"{probe['python']}"
        )
    state = project.state_dir / "images"
    state.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"build-{bento.release}-", dir=state) as raw:
        context = Path(raw)
        shutil.copytree(bento.path, context / "bento", symlinks=True)
        wheels = context / "wheels"
        wheels.mkdir()
        requirements = bento.path / "env" / "python" / "requirements.txt"
        text = requirements.read_text(encoding="utf-8") if requirements.is_file() else ""
        (wheels / "requirements.txt").write_text(text, encoding="utf-8")
        pins = probe["dists"] if not requirements_locked(text) else {}
        if pins:
            log(
                "the Bento's requirements are not locked: pinned to the versions of the "
                f"project's environment ({project.python()})"
            )
        (wheels / "constraints.txt").write_text(
            "".join(f"{name}=={version}\n" for name, version in sorted(pins.items())),
            encoding="utf-8",
        )
        _download_wheels(project, bento, wheels, log, cancel)
        (context / "Containerfile").write_text(
            render_containerfile(
                base,
                labels=labels,
                envs=read_image_spec(bento.path).envs,
                wheels_digest=_digest(wheels),
            ),
            encoding="utf-8",
        )
        command = engine.command(
            "build",
            "--network",
            "none",
            "--file",
            str(context / "Containerfile"),
            "--tag",
            ref,
            str(context),
        )
        environ = {**engine.environ(), "DOCKER_BUILDKIT": "1"}  # RUN --mount, for docker
        ended = _stream(command, context, environ, log, BUILD_TIMEOUT, cancel)
        _check(ended, f"{engine.kind} build of {ref}", ref)


def _project_environment(project: Project) -> dict[str, Any]:
    """The project interpreter's ``python`` (X.Y) and installed ``dists`` (name: version)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "dists = {}\n"
        "for d in m.distributions():\n"
        "    name = d.metadata['Name']\n"
        "    if name and d.version: dists.setdefault(name, d.version)\n"
        "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'dists': dists}))\n"
    )
    try:
        done = subprocess.run(
            [project.python(), "-c", script], capture_output=True, text=True, timeout=120
        )
        found: dict[str, Any] = json.loads(done.stdout)
        if not isinstance(found, dict) or not isinstance(found.get("dists"), dict):
            raise ValueError(f"unexpected answer {done.stdout[:80]!r} {done.stderr[-200:]!r}")
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise ProjectError(
            f"cannot ask the project's python {project.python()} what it has installed ({exc}); "
            "set [project] python in relman.toml to the interpreter of the project's environment"
        ) from exc
    # A local version (``2.1+cpu``, a build from a folder) is on no index: it pins nothing.
    # Pins of packages the Bento does not need are harmless: constraints only narrow.
    found["dists"] = {
        name: version for name, version in found.get("dists", {}).items() if "+" not in version
    }
    return found


def wheel_cache() -> Path:
    """Wheels downloaded for images, kept between builds: ``$RELMAN_WHEEL_CACHE``, else
    ``$XDG_CACHE_HOME/relman/wheels`` (``~/.cache/relman/wheels``)."""
    if os.environ.get(WHEEL_CACHE_VARIABLE):
        return Path(os.environ[WHEEL_CACHE_VARIABLE])
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "relman" / "wheels"


def _download_wheels(
    project: Project, bento: BentoRef, wheels: Path, log: Log, cancel: CancelSignal | None
) -> None:
    """The wheels of ``wheels/requirements.txt`` (and constraints) for the image, into
    ``wheels/``: from the wheel cache alone when it has them all, else from the package
    index as pip is configured; the cache keeps them for the next build."""
    cache = wheel_cache()
    cache.mkdir(parents=True, exist_ok=True)
    links = ["--find-links", str(cache)]
    own = bento.path / "env" / "python" / "wheels"  # wheels the Bento carries itself
    if own.is_dir():
        links += ["--find-links", str(own)]
    command = [
        project.python(),
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--only-binary=:all:",
        "--dest",
        str(wheels),
        *links,
        "--requirement",
        str(wheels / "requirements.txt"),
        "--constraint",
        str(wheels / "constraints.txt"),
    ]
    environ = {**os.environ, "PIP_NO_INPUT": "1"}
    started = time.monotonic()
    offline = _stream([*command, "--no-index"], wheels, environ, _ignore, DOWNLOAD_TIMEOUT, cancel)
    if offline.ending == "cancelled":
        _check(offline, "the wheel download", "the image")
    if offline.ending != "exited" or offline.returncode != 0:
        log(f"the wheel cache ({cache}) lacks some wheels: downloading them with pip")
        online = _stream(command, wheels, environ, log, DOWNLOAD_TIMEOUT, cancel)
        _check(online, "pip download of the Bento's requirements", "the image")
    for wheel in wheels.glob("*.whl"):
        kept = cache / wheel.name
        if not kept.exists():
            shutil.copy2(wheel, kept)
    count = len(list(wheels.glob("*.whl")))
    size = sum(w.stat().st_size for w in wheels.glob("*.whl"))
    log(f"{count} wheels ({size / 1e6:.0f} MB) ready in {time.monotonic() - started:.1f} s")


def _digest(wheels: Path) -> str:
    """What the install step installs: the requirements and the wheels' names (which the
    constraints chose: a change to them that picks the same wheels keeps the cached layer)."""
    hasher = hashlib.sha256((wheels / "requirements.txt").read_bytes())
    for path in sorted(wheels.glob("*.whl")):
        hasher.update(path.name.encode())
    return hasher.hexdigest()[:16]


def _containerize(
    project: Project,
    engine: Engine,
    bento: BentoRef,
    ref: str,
    labels: dict[str, str],
    log: Log,
    cancel: CancelSignal | None,
) -> None:
    command = [
        project.python(),
        "-m",
        "bentoml",
        "containerize",
        bento.tag,
        "--backend",
        engine.kind,
        "--image-tag",
        ref,
        *[arg for key, value in labels.items() for arg in ("--opt", f"label={key}={value}")],
    ]
    environ = engine.environ(
        {
            **os.environ,
            "BENTOML_HOME": str(bentoml_home()),
            "BENTOML_DO_NOT_TRACK": "True",
            "PATH": os.pathsep.join([str(Path(engine.path).parent), os.environ.get("PATH", "")]),
        }
    )
    ended = _stream(command, project.root, environ, log, BUILD_TIMEOUT, cancel)
    _check(ended, f"bentoml containerize of {bento.tag}", ref)


def _stream(
    command: list[str],
    cwd: Path,
    environ: dict[str, str],
    log: Log,
    timeout: float,
    cancel: CancelSignal | None,
) -> Streamed:
    try:
        return run_streamed(command, cwd=cwd, env=environ, log=log, timeout=timeout, cancel=cancel)
    except OSError as exc:
        raise InfraError(f"cannot run {command[0]}: {exc.strerror}") from exc


def _check(ended: Streamed, what: str, ref: str) -> None:
    if ended.ending == "cancelled":
        raise Cancelled(f"{what} cancelled: {ref} was not built")
    if ended.ending == "timeout":
        raise InfraError(f"{what} timed out{_quoted(ended.tail)}")
    if ended.returncode != 0:
        raise InfraError(f"{what} failed (exit code {ended.returncode}){_quoted(ended.tail)}")


def _quoted(tail: list[str]) -> str:
    shown = [line if len(line) <= 200 else line[:197] + "..." for line in tail[-3:]]
    return "; last output: " + " | ".join(shown) if shown else ""

"""The build context of a service: the files its Bento is built from, as git records them.

BentoML copies into a Bento every file of the build context that the build config's
``include`` patterns match (default: everything) and that neither its ``exclude`` patterns, a
``.bentoignore`` file, nor its fixed exclusions (``.git/``, ``.venv/``, ``venv/``,
``__pycache__/``, ``.DS_Store``) leave out: gitignore-style patterns relative to the build
context. relman applies the same rule to the files git tracks at HEAD and hashes their blob
ids (``git ls-tree``: no file is read), together with the build config itself (the
bentofile, or the ``[tool.bentoml.build]`` table of pyproject.toml with the ``[project]``
dependencies BentoML adds to it) and the files it names (requirements, conda environment,
setup script, Dockerfile template).

The build context is the build config's folder, as ``bentoml build FOLDER`` takes it
(``serving/bentofile.yaml`` naming ``service:Svc`` in ``serving/service.py``), unless the
service's module is not there but at the project root (``serving.service:Svc``: built with
``bentoml build -f serving/bentofile.yaml .``); :func:`context_folder` says which.

relman.toml is never part of it, even when the patterns match it: it says where and how a
release runs (ports, monitoring, approvals), not what the release serves. A build config
relman cannot read counts as BentoML's default (every file); ``relman build`` says what is
wrong with it.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pathspec import PathSpec
from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

from core.lineage.gitinfo import Asked, GitCall
from core.lineage.release_id import canonical_json

__all__ = [
    "BuildContext",
    "TrackedFiles",
    "ask_tracked_files",
    "build_context",
    "context_folder",
    "tracked_files",
]

# core.config.model's CONFIG_NAME, without importing the config machinery into lineage.
CONFIG_NAME = "relman.toml"

# BentoML's own exclusions (BentoPathSpec.extra), whatever the build config says.
_ALWAYS_EXCLUDED = [".git/", ".venv/", "venv/", "__pycache__/", ".DS_Store"]
_IGNORE_FILE = ".bentoignore"
_Spec = PathSpec[GitIgnoreSpecPattern]
# Build options naming a file of the build context that goes into the Bento's environment.
_NAMED_FILES = (
    ("python", "requirements_txt"),
    ("conda", "environment_yml"),
    ("docker", "setup_script"),
    ("docker", "dockerfile_template"),
)


@dataclass(frozen=True)
class TrackedFiles:
    """The files git tracks at HEAD under a project root, read once for every service."""

    # The project root's path inside the repository ("" at its top, else ending in "/").
    prefix: str
    # {path relative to the root: "mode blob-id"}
    entries: dict[str, str]

    def relative(self, repo_path: str) -> str | None:
        """A path as git status gives it (from the repository's top) relative to the root;
        None when it lies outside the root."""
        if not repo_path.startswith(self.prefix):
            return None
        return repo_path[len(self.prefix) :]


def tracked_files(root: Path) -> TrackedFiles:
    """``git ls-tree -r HEAD`` under ``root``: blob ids and no file read."""
    return ask_tracked_files(root).result()


def ask_tracked_files(root: Path) -> Asked[TrackedFiles]:
    """:func:`tracked_files`' two questions, asked at once."""
    calls = [
        GitCall(root, "rev-parse", "--show-prefix"),
        GitCall(root, "ls-tree", "-r", "-z", "HEAD"),
    ]
    return Asked(calls, lambda answers: _tracked_files(*answers))


def _tracked_files(prefix_call: GitCall, tree: GitCall) -> TrackedFiles:
    prefix = prefix_call.output().strip()
    entries: dict[str, str] = {}
    for record in tree.output().split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, _kind, blob = meta.split(" ")
        entries[path] = f"{mode} {blob}"
    return TrackedFiles(prefix, entries)


@dataclass(frozen=True)
class BuildContext:
    """What one service's Bento is built from, and its hash."""

    digest: str
    # Tracked files (relative to the root) that go into the Bento.
    files: tuple[str, ...]
    # The build config and the files it names, relative to the root (when inside it).
    config_files: frozenset[str]
    tracked: TrackedFiles
    rules: _Rules
    # The build context's folder from the root: "" (the root itself) or "serving/".
    folder: str = ""

    def serves(self, repo_path: str) -> bool:
        """Whether a file (as git status names it) is part of what the release serves: in
        the build context, the build config or a file it names. relman.toml never is."""
        path = self.tracked.relative(repo_path)
        if path is None or path == CONFIG_NAME:
            return False
        if path in self.config_files:
            return True
        if not path.startswith(self.folder):
            return False
        inner = path[len(self.folder) :]
        return PurePosixPath(inner).name == _IGNORE_FILE or self.rules.includes(inner)


def context_folder(root: Path, build: str) -> str:
    """The folder, from ``root``, that BentoML builds the Bento of build config ``build``
    from: "" (``root`` itself) or ``"serving/"``. The build config's own folder, as
    ``bentoml build FOLDER`` takes it, unless the service it names is a module found at the
    root and not there (then ``-f FOLDER/bentofile.yaml .`` is how it builds)."""
    config_path = Path(build) if Path(build).is_absolute() else root / build
    folder = _inside(root, config_path.parent)
    if folder is None or folder == ".":
        return ""
    module = str(_read_options(config_path).get("service") or "").partition(":")[0].strip()
    module = module.removesuffix(".py").replace("/", ".")
    if module and not _has_module(root / folder, module) and _has_module(root, module):
        return ""
    return folder + "/"


def _has_module(folder: Path, module: str) -> bool:
    """Whether ``module`` (dotted) imports from ``folder`` (or its ``src/``, a src layout)."""
    relative = Path(*module.split("."))
    return any(
        (base / relative).with_suffix(".py").is_file()
        or (base / relative / "__init__.py").is_file()
        for base in (folder, folder / "src")
    )


def build_context(root: Path, build: str, tracked: TrackedFiles) -> BuildContext:
    """The build context of the service whose BentoML build config is ``build`` (relative
    to ``root``, or absolute), as relman.toml's ``[services.NAME] build`` names it."""
    config_path = Path(build) if Path(build).is_absolute() else root / build
    options = _read_options(config_path)
    folder = context_folder(root, build)
    rules = _Rules(
        _spec(_patterns(options.get("include"), ["*"])),
        _spec(_patterns(options.get("exclude"), [])),
        tuple(
            (str(PurePosixPath(path[len(folder) :]).parent), _spec(_read_lines(root / path)))
            for path in tracked.entries
            if PurePosixPath(path).name == _IGNORE_FILE and path.startswith(folder)
        ),
    )
    config_rel = _inside(root, config_path)
    named = {_inside(root, root / folder / value) for value in _named_files(options)}
    config_files = frozenset(path for path in {config_rel, *named} if path is not None)

    files = tuple(
        sorted(
            path
            for path in tracked.entries
            if path != CONFIG_NAME
            and path.startswith(folder)
            and rules.includes(path[len(folder) :])
        )
    )
    # pyproject.toml counts by its build table (below), not by the blob of the whole file.
    by_blob = config_files - {config_rel} if config_path.name == "pyproject.toml" else config_files
    listed = sorted({*files, *(p for p in by_blob if p in tracked.entries)})
    payload = {
        "config": _config_identity(config_path, config_rel, options, tracked),
        "files": [[path, tracked.entries[path]] for path in listed],
    }
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return BuildContext(digest, files, config_files, tracked, rules, folder)


def _spec(lines: list[str]) -> _Spec:
    # GitIgnoreSpecPattern: what BentoML's "gitwildmatch" is in pathspec 1.x, sans warning.
    return PathSpec.from_lines(GitIgnoreSpecPattern, lines)


_ALWAYS = _spec(_ALWAYS_EXCLUDED)


@dataclass(frozen=True)
class _Rules:
    """BentoML's BentoPathSpec: matched by include, by no exclude, by no .bentoignore of a
    folder above (its patterns relative to that folder), and not one of its fixed exclusions."""

    include: _Spec
    exclude: _Spec
    ignores: tuple[tuple[str, _Spec], ...]

    def includes(self, path: str) -> bool:
        if not self.include.match_file(path) or self.exclude.match_file(path):
            return False
        if _ALWAYS.match_file(path):
            return False
        for folder, ignore in self.ignores:
            if folder == ".":
                if ignore.match_file(path):
                    return False
            elif path.startswith(folder + "/") and ignore.match_file(path[len(folder) + 1 :]):
                return False
        return True


def _patterns(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    if isinstance(value, str):
        return [value]
    return [str(line) for line in value] if isinstance(value, list) else default


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _read_options(config_path: Path) -> dict[str, Any]:
    """The build options of a bentofile or of pyproject.toml's [tool.bentoml.build] (with
    the ``[project]`` dependencies BentoML adds to its packages, as ``project_dependencies``);
    empty (BentoML's defaults) when the file is missing or unreadable."""
    try:
        text = config_path.read_text(encoding="utf-8")
        if config_path.name == "pyproject.toml":
            whole = tomllib.loads(text)
            doc: Any = whole.get("tool", {}).get("bentoml", {}).get("build", {})
            dependencies = whole.get("project", {}).get("dependencies")
            if isinstance(doc, dict) and dependencies:
                doc = {**doc, "project_dependencies": dependencies}
        else:
            doc = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _named_files(options: dict[str, Any]) -> list[str]:
    named = []
    for section, key in _NAMED_FILES:
        block = options.get(section)
        value = block.get(key) if isinstance(block, dict) else None
        if isinstance(value, str) and value:
            named.append(value)
    return named


def _inside(root: Path, path: Path) -> str | None:
    """``path`` relative to ``root`` in POSIX form, or None when outside it."""
    try:
        return Path(os.path.normpath(path)).relative_to(root).as_posix()
    except ValueError:
        return None


def _config_identity(
    config_path: Path, rel: str | None, options: dict[str, Any], tracked: TrackedFiles
) -> str:
    """The build config as part of the hash: pyproject.toml by its build table and project
    dependencies only (the rest of the file does not shape the Bento), a bentofile by its
    blob id when git tracks it."""
    if config_path.name == "pyproject.toml":
        return "table " + canonical_json(options)
    if rel is not None and rel in tracked.entries:
        return "blob " + tracked.entries[rel]
    try:
        return "sha256 " + hashlib.sha256(config_path.read_bytes()).hexdigest()
    except OSError:
        return "missing"

"""DVC facts about a working tree, read through DVC's own Python API (``dvc.repo.Repo``).

Opening a ``Repo`` and collecting its stages is the expensive part, so a caller opens one
:class:`DvcSession` with :func:`open_dvc` and asks every question through it. DVC is imported
inside functions only: ``import core.lineage.dvcinfo`` must stay light (and DVC pulls in rich).

Hashes are the ones recorded in git (``dvc.lock`` and ``.dvc`` files), never recomputed; the
working tree is only hashed where DVC's status needs it to say an output changed by hand.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from core.errors import ProjectError
from core.lineage.dvc_remote import RemoteChecks
from core.lineage.metrics_file import flatten_metrics
from core.lineage.thread_memo import ThreadMemo

if TYPE_CHECKING:
    from core.documents import ArtifactDocument

__all__ = [
    "ArtifactDecl",
    "ArtifactInfo",
    "CacheFacts",
    "CacheState",
    "DvcSession",
    "artifact_state",
    "cache_facts",
    "cache_state",
    "check_project",
    "declared_artifacts",
    "flat_view",
    "metrics",
    "open_dvc",
    "params",
    "problems",
    "stage_address",
]

# local: in .dvc/cache; remote: only in the output's DVC remote; missing: in neither;
# unknown: not local, and the remote could not be asked (unreachable, no plugin, no answer).
CacheState = Literal["local", "remote", "missing", "unknown"]
# DVC 3 writes "md5"; files from DVC 2 carry "md5-dos2unix". Both are 32 hex digits.
_MD5_RE = re.compile(r"[0-9a-f]{32}(\.dir)?")


@dataclass(frozen=True)
class ArtifactDecl:
    """An entry of the ``artifacts:`` section of a dvc.yaml."""

    name: str
    path: str
    type: str | None
    desc: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": self.path, "type": self.type, "desc": self.desc}


@dataclass(frozen=True)
class ArtifactInfo:
    """A DVC-tracked output as git records it, and where its content can be found."""

    path: str
    md5: str | None
    size: int | None
    nfiles: int | None
    cache: CacheState
    # The artifact name from dvc.yaml, when the output is declared there.
    name: str | None = None
    type: str | None = None
    # Where the hash is recorded: "dvc.yaml:train" (via dvc.lock) or "data/iris.csv.dvc".
    source: str = ""
    hash_valid: bool = True
    # The DVC remote asked for it (None when in the local cache or no remote is set), and
    # why that remote could not be asked when the cache state is "unknown".
    remote: str | None = None
    remote_error: str | None = None

    @property
    def in_cache(self) -> bool:
        return self.cache == "local"

    def to_dict(self) -> ArtifactDocument:
        """A ``model`` or ``data`` entry of the ``status`` document (docs/json.md)."""
        doc: dict[str, Any] = {
            "name": self.name,
            "path": self.path,
            "type": self.type,
            "md5": self.md5,
            "size": self.size,
            "nfiles": self.nfiles,
            "in_cache": self.in_cache,
            "cache": self.cache,
            "remote": self.remote,
            "remote_error": self.remote_error,
            "source": self.source,
        }
        # A cast until core.documents' ArtifactDocument lists remote, remote_error, "unknown".
        return cast("ArtifactDocument", doc)


@dataclass(frozen=True)
class CacheFacts:
    """Where an output's content is: its cache state, the remote asked, why it did not answer."""

    state: CacheState
    remote: str | None = None
    remote_error: str | None = None


@dataclass
class DvcSession:
    """One open DVC repository and what was learnt from it, shared by every question."""

    root: Path
    repo: Any  # dvc.repo.Repo; Any so that DVC is not imported to type-check callers
    # Files DVC could not parse ("dvc.yaml: ..."), reported as problems instead of raising.
    load_errors: list[str] = field(default_factory=list)
    # Metrics files DVC cannot read as key: value pairs (a TSV, a CSV), one line each.
    metric_notes: list[str] = field(default_factory=list)
    _outputs: dict[str, tuple[Any, Any]] | None = None
    _cache_states: dict[str, CacheFacts] = field(default_factory=dict)
    # Each stage's problems, by id(stage): services share the stages upstream of them.
    _stage_problems: dict[int, list[str]] = field(default_factory=dict)
    _remotes: RemoteChecks | None = None

    @property
    def remotes(self) -> RemoteChecks:
        """The DVC remotes asked in this session, each judged once (lineage/dvc_remote.py)."""
        if self._remotes is None:
            self._remotes = RemoteChecks(self.repo)
        return self._remotes

    def rel(self, fs_path: str) -> str:
        """A path relative to the project root, POSIX style, whatever the current directory."""
        return Path(os.path.relpath(fs_path, self.root)).as_posix()

    def outputs(self) -> dict[str, tuple[Any, Any]]:
        """``{path: (stage, output)}`` of every DVC-tracked output, collected once."""
        if self._outputs is None:
            self._outputs = {
                self.rel(out.fs_path): (stage, out)
                for stage in self.repo.index.stages
                for out in stage.outs
            }
        return self._outputs


def check_project(root: Path) -> None:
    """Raise ProjectError unless ``root`` holds an initialised DVC repo with a dvc.yaml."""
    if not (root / ".dvc").is_dir():
        raise ProjectError(f"not a DVC repository: {root} has no .dvc folder (run 'dvc init')")
    if not (root / "dvc.yaml").is_file():
        raise ProjectError(
            f"no dvc.yaml in {root}: relman reads models and data from a DVC pipeline "
            "(add one with 'dvc stage add')"
        )


# The sessions of a `shared_sessions` block, per thread: {root: session}.
_SHARED = ThreadMemo()


def shared_sessions() -> AbstractContextManager[None]:
    """Within this block, every :func:`open_dvc` of this thread for one root is the same
    session, closed when the block ends: one command that both reads a repository without
    relman.toml (core/lineage/infer.py) and builds its candidates builds DVC's index of 200
    stages once, not twice. Nested blocks are one block."""

    def close(sessions: dict[Path, DvcSession]) -> None:
        for session in sessions.values():
            session.repo.close()

    return _SHARED.block(on_end=close)


def load_dvc() -> None:
    """Load DVC's modules now, what :func:`open_dvc` imports first (e.g. while git answers
    in processes of its own). A DVC that cannot be imported is left to open_dvc, to fail
    there as it would have."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    with contextlib.suppress(Exception):  # open_dvc imports it again, and reports it
        import dvc.repo  # noqa: F401


@contextmanager
def open_dvc(root: Path) -> Iterator[DvcSession]:
    """Open the DVC repository at ``root`` once; close it (and its sqlite state) afterwards
    (inside :func:`shared_sessions`: when that block ends)."""
    root = root.resolve()
    shared: dict[Path, DvcSession] | None = _SHARED.current()
    if shared is not None and root in shared:
        yield shared[root]
        return
    check_project(root)
    # DVC's analytics are sent by its CLI only; the variable also covers anything spawned.
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        # Repo(root) finds nothing upward of root and never writes the user's config; the
        # config override keeps it from checking for DVC updates on our behalf.
        repo = Repo(str(root), config={"core": {"check_update": False}})
    except DvcException as exc:
        raise ProjectError(f"cannot open the DVC repository at {root}: {exc}") from exc
    session = DvcSession(root=root, repo=repo)

    def on_error(path: str, exc: Exception) -> None:
        # DVC hands the dvc.yaml it was collecting, relative to the current directory; the
        # file it could not read may be another (its dvc.lock), which the error names.
        broken = getattr(exc, "path", None) or path
        folder = os.path.dirname(os.path.abspath(path))
        where = session.rel(os.path.join(folder, os.path.basename(str(broken))))
        cause = exc.__cause__ or exc
        mark = getattr(cause, "problem_mark", None)
        if mark is not None:  # a YAML error: the line, and the problem without its excerpt
            where += f":{mark.line + 1}"
            reason = str(getattr(cause, "problem", "") or "").strip() or "not valid YAML"
        else:
            reason = " ".join(str(cause).split()) or type(cause).__name__
        session.load_errors.append(f"{where}: DVC cannot read it ({reason})")

    repo.stage_collection_error_handler = on_error
    _read_params_once()
    if shared is not None:
        shared[root] = session  # closed by shared_sessions
        yield session
        return
    try:
        yield session
    finally:
        repo.close()


_PARAMS: dict[tuple[str, int, int, int], Any] = {}


def _read_params_once() -> None:
    """Make DVC parse each params file once while it is unchanged, not once per stage that
    reads it and again for its status (412 YAML parses for 200 stages sharing params.yaml,
    most of a `relman status`). DVC's ParamsDependency reads through the module's
    ``load_path``; the memo is keyed by the file's inode, size and mtime, and hands out
    copies, so an edited file is read again and no caller sees another's changes."""
    import copy

    import dvc.dependency.param as param

    if getattr(param.load_path, "relman_memo", False):
        return
    load = param.load_path

    def load_path(fs_path: str, fs: Any, **kwargs: Any) -> Any:
        if kwargs or type(fs).__name__ != "LocalFileSystem":  # another revision's files
            return load(fs_path, fs, **kwargs)
        try:
            info = os.stat(fs_path)
        except OSError:
            return load(fs_path, fs, **kwargs)
        key = (fs_path, info.st_ino, info.st_size, info.st_mtime_ns)
        if key not in _PARAMS:
            if len(_PARAMS) > 256:
                _PARAMS.clear()
            _PARAMS[key] = load(fs_path, fs)
        return copy.deepcopy(_PARAMS[key])

    load_path.relman_memo = True  # type: ignore[attr-defined]
    param.load_path = load_path


def declared_artifacts(session: DvcSession) -> dict[str, ArtifactDecl]:
    """The ``artifacts:`` of every dvc.yaml, by GTO name (``dir:name`` for nested files)."""
    from dvc.exceptions import DvcException

    try:
        # What Repo.artifacts.read() returns, without its per-name GTO check: that imports
        # GTO (~0.1 s, a third of `dvc status`) to validate names relman does not write.
        by_file: dict[str, dict[str, Any]] = session.repo.index._artifacts
    except AttributeError:  # a DVC without the attribute: take the public, slower way
        by_file = {
            os.path.join(session.root, f): {n: a.to_dict() for n, a in arts.items()}
            for f, arts in session.repo.artifacts.read().items()
        }
    except DvcException as exc:
        session.load_errors.append(f"dvc.yaml: artifacts cannot be read ({exc})")
        return {}
    declared: dict[str, ArtifactDecl] = {}
    for dvcfile, artifacts in by_file.items():
        folder = Path(session.rel(dvcfile)).parent
        for name, art in artifacts.items():
            nested = str(folder) != "."
            full = f"{folder.as_posix()}:{name}" if nested else name
            path = os.path.normpath(folder / art["path"]) if nested else art["path"]
            declared[full] = ArtifactDecl(
                full, Path(path).as_posix(), art.get("type"), art.get("desc")
            )
    return declared


def stage_address(session: DvcSession, stage: Any) -> str:
    """``train`` for a stage of the root dvc.yaml, ``sub/dvc.yaml:train``, or ``x.dvc``."""
    dvcfile = session.rel(stage.path)
    name = getattr(stage, "name", None)
    if not name:
        return dvcfile
    return name if dvcfile == "dvc.yaml" else f"{dvcfile}:{name}"


def hash_is_valid(out: Any) -> bool:
    value = out.hash_info.value if out.hash_info else None
    return value is None or bool(_MD5_RE.fullmatch(str(value)))


def _present(odb: Any, hash_info: Any, tree_odb: Any = None) -> bool:
    """Whether ``odb`` holds the object, and for a directory every file listed in it."""
    from dvc_data.hashfile.tree import Tree

    if not hash_info.isdir:
        return bool(list(odb.oids_exist([hash_info.value])))
    try:
        # The .dir listing can come from another store (the local cache) than the one asked.
        tree = Tree.load(tree_odb or odb, hash_info)
    except Exception:  # missing or corrupt .dir object: the directory cannot be restored
        return False
    wanted = {hash_info.value} | {hi.value for _, _, hi in tree if hi and hi.value}
    return set(odb.oids_exist(list(wanted))) == wanted


def cache_state(session: DvcSession, out: Any) -> CacheState:
    """local (in .dvc/cache), remote (only in its DVC remote), missing (in neither) or
    unknown (not local, and the remote could not be asked)."""
    return cache_facts(session, out).state


def cache_facts(session: DvcSession, out: Any) -> CacheFacts:
    """The cache state of ``out`` and the remote asked. The local cache is looked at first;
    only what it lacks is asked of the remote, with a bounded wait (core/lineage/dvc_remote.py)."""
    path = session.rel(out.fs_path)
    if path in session._cache_states:
        return session._cache_states[path]
    facts = CacheFacts("missing")
    if out.use_cache and out.hash_info and out.hash_info.value and hash_is_valid(out):
        if _present(out.cache, out.hash_info):
            facts = CacheFacts("local")
        elif (name := remote_name(session, out)) is not None:
            hash_info = out.hash_info
            local_listing = out.cache if out.cache.exists(hash_info.value) else None
            answer = session.remotes.lookup(
                name, hash_info.name, lambda odb: _present(odb, hash_info, local_listing)
            )
            facts = CacheFacts(answer.state, answer.remote, answer.error)
    session._cache_states[path] = facts
    return facts


def remote_name(session: DvcSession, out: Any) -> str | None:
    """The remote DVC pulls ``out`` from: its own ``remote:`` in dvc.yaml, else the default."""
    name = getattr(out, "remote", None) or session.repo.config["core"].get("remote")
    return str(name) if name else None


def artifact_state(
    session: DvcSession, path: str, decl: ArtifactDecl | None = None
) -> ArtifactInfo | None:
    """The recorded hash, size and cache state of the tracked output at ``path``, or None."""
    found = session.outputs().get(Path(os.path.normpath(path)).as_posix())
    if found is None:
        return None
    stage, out = found
    meta = out.meta
    valid = hash_is_valid(out)
    md5 = out.hash_info.value if out.hash_info else None
    facts = cache_facts(session, out)
    return ArtifactInfo(
        path=session.rel(out.fs_path),
        md5=md5,
        size=meta.size if meta else None,
        nfiles=meta.nfiles if meta and out.hash_info and out.hash_info.isdir else None,
        cache=facts.state,
        name=decl.name if decl else None,
        type=decl.type if decl else None,
        source=stage_address(session, stage),
        hash_valid=valid,
        remote=facts.remote,
        remote_error=facts.remote_error,
    )


def params(session: DvcSession) -> dict[str, dict[str, Any]]:
    """Parameters the pipeline depends on, from the working tree: ``{file: {key: value}}``.

    Read through each stage's params dependency (the keys dvc.yaml lists, or the whole file
    when it lists none), which is what DVC's status compares with dvc.lock. Not via
    ``repo.params.show()``: it swaps the repo's filesystem and so throws away the collected
    stages twice, a fifth of the whole ``relman status``.
    """
    from dvc.dependency.param import ParamsDependency
    from dvc.exceptions import DvcException

    by_file: dict[str, dict[str, Any]] = {}
    for stage in session.repo.index.stages:
        for dep in stage.deps:
            if not isinstance(dep, ParamsDependency):
                continue
            try:
                values = dep.read_params(flatten=False)
            except DvcException as exc:  # a params file that is not valid YAML/JSON/TOML
                session.load_errors.append(f"{session.rel(dep.fs_path)}: {exc}")
                continue
            _merge(by_file.setdefault(session.rel(dep.fs_path), {}), values)
    return by_file


def _merge(into: dict[str, Any], values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def metrics(session: DvcSession) -> dict[str, dict[str, Any]]:
    """Metrics of the working tree, ``{file: {key: value}}`` (nested as in the file).

    The files are those ``dvc metrics show`` reads (stage outputs marked as metrics, and the
    top-level ``metrics:`` of each dvc.yaml), read from the already collected index: DVC's
    own ``metrics.show()`` collects the stages again, a fifth of the whole ``relman status``.
    A file that is missing or unreadable is left out, as DVC's show does; one that is there
    and that DVC's loader cannot read as key: value pairs (DVC 3 reads ``.json``, ``.toml``
    and everything else as YAML: a TSV is an error, a CSV one line of text) is named in
    ``session.metric_notes``.
    """
    from dvc.utils.serialize import load_path

    repo = session.repo
    files = [out.fs_path for out in repo.index.metrics]
    for dvcfile, listed in repo.index._metrics.items():
        folder = repo.fs.parent(dvcfile)
        files.extend(repo.fs.normpath(repo.fs.join(folder, str(name))) for name in listed)
    by_file: dict[str, dict[str, Any]] = {}
    for fs_path in dict.fromkeys(files):
        shown = session.rel(fs_path)
        try:
            values = load_path(fs_path, repo.fs)
        except FileNotFoundError:
            continue
        except Exception:
            if repo.fs.isfile(fs_path):
                found = "cannot parse it ('dvc metrics show' shows '-')"
                session.metric_notes.append(_unread_metrics(shown, found))
            continue
        if isinstance(values, dict):
            by_file[shown] = _scalars(values)
        elif values is not None:
            found = "reads it as YAML: " + (
                "one line of text ('dvc metrics show' shows that text)"
                if isinstance(values, str)
                else ("a list" if isinstance(values, list) else "one value")
                + ", no key: value pairs"
            )
            session.metric_notes.append(_unread_metrics(shown, found))
    return by_file


def _unread_metrics(shown: str, found: str) -> str:
    return (
        f"metrics {shown}: not shown: DVC 3 {found}; it reads metrics files as JSON, TOML or "
        "YAML (by extension, any other as YAML): write them so to see them here"
    )


def _scalars(values: dict[str, Any]) -> dict[str, Any]:
    """Numbers and text, nested as in the file; lists and nulls left out, as DVC's show does."""
    kept: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _scalars(value)
            if value:
                kept[key] = value
        elif isinstance(value, int | float | str):
            kept[key] = value
    return kept


def flat_view(by_file: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"accuracy": 0.95, "train.lr": 0.1}``: dotted keys; ``file:key`` where files clash."""
    flat: dict[str, dict[str, Any]] = {}  # key -> {file: value}
    for file, values in by_file.items():
        for key, value in flatten_metrics(values).items():
            flat.setdefault(key, {})[file] = value
    view: dict[str, Any] = {}
    for key, per_file in sorted(flat.items()):
        if len(per_file) == 1:
            view[key] = next(iter(per_file.values()))
        else:
            view.update({f"{file}:{key}": value for file, value in per_file.items()})
    return view


def problems(
    session: DvcSession,
    uncommitted: list[str] | tuple[str, ...] = (),
    stages: list[Any] | None = None,
) -> list[str]:
    """Every reason the working tree's DVC state cannot be released, one line each.

    The per-entry checks are those of ``Repo.status()`` (each dependency's and output's
    ``status()``, the stage's command), called entry by entry because DVC's own status keys
    are relative to the current directory and we need the output objects for cache lookups.
    ``uncommitted`` are the paths git reports as changed, to catch an uncommitted dvc.lock;
    ``stages`` limits the stage checks (default: every stage of the repository).
    """
    lines = list(session.load_errors)
    for path in uncommitted:
        if Path(path).name == "dvc.lock" or path.endswith(".dvc"):
            lines.append(f"{path}: not committed (run 'git add {path}' and commit)")
    for stage in session.repo.index.stages if stages is None else stages:
        known = session._stage_problems.get(id(stage))
        if known is None:
            known = session._stage_problems[id(stage)] = _stage_problems(session, stage)
        lines.extend(known)
    return lines


def _stage_problems(session: DvcSession, stage: Any) -> list[str]:
    where = stage_address(session, stage)
    dvcfile = session.rel(stage.path)
    is_pipeline = bool(getattr(stage, "name", None))
    entries = [*stage.deps, *stage.outs]
    if is_pipeline and entries and not any(e.hash_info and e.hash_info.value for e in entries):
        return [f"{where}: not in dvc.lock, out of sync with dvc.yaml (run 'dvc repro {where}')"]
    lines: list[str] = []
    if getattr(stage, "cmd_changed", False):
        lines.append(f"{where}: command changed since dvc.lock (run 'dvc repro {where}')")
    elif not is_pipeline and stage.changed_stage():
        lines.append(f"{where}: file edited by hand, its checksum does not match")
    if not stage.frozen:
        lines.extend(_dependency_problems(session, stage, where))
    for out in stage.outs:
        lines.extend(_output_problems(session, out, where, dvcfile))
    return lines


def _dependency_problems(session: DvcSession, stage: Any, where: str) -> list[str]:
    lines = []
    for dep in stage.deps:
        path = session.rel(dep.fs_path)
        if dep.hash_info is None or dep.hash_info.value is None:
            lines.append(f"{where}: dependency {path} not in dvc.lock (run 'dvc repro {where}')")
            continue
        for state in dep.status().values():
            if isinstance(state, dict):  # params: {key: "modified" | "new" | "deleted"}
                keys = ", ".join(f"{key} {change}" for key, change in state.items())
                lines.append(f"{where}: dependency {path} changed ({keys})")
            elif state == "modified":
                lines.append(f"{where}: dependency {path} changed")
            else:
                lines.append(f"{where}: dependency {path} {state}")
    return lines


def _output_problems(session: DvcSession, out: Any, where: str, dvcfile: str) -> list[str]:
    path = session.rel(out.fs_path)
    if not hash_is_valid(out):
        return [
            f"{dvcfile}: malformed md5 '{out.hash_info.value}' for {path} "
            f"(run 'dvc commit {dvcfile}' or 'dvc repro' to record it again)"
        ]
    if out.hash_info is None or out.hash_info.value is None:
        return [f"{where}: output {path} not in dvc.lock (run 'dvc repro {where}')"]
    lines = []
    state = next(iter(out.workspace_status().values()), None)
    if state == "modified":
        lines.append(
            f"{where}: output {path} modified "
            "(workspace differs from the recorded hash: 'dvc checkout' or 'dvc repro')"
        )
    elif state is not None:
        lines.append(f"{where}: output {path} {state} (run 'dvc checkout {path}')")
    if out.use_cache:
        lines.extend(_cache_problems(path, cache_facts(session, out)))
    return lines


def _cache_problems(path: str, facts: CacheFacts) -> list[str]:
    """Each line starts ``PATH: not in the local cache``: the data-and-model gate says it once."""
    if facts.state == "remote":
        return [f"{path}: not in the local cache (in the remote: run 'dvc pull')"]
    if facts.state == "unknown":
        return [
            f"{path}: not in the local cache, and remote '{facts.remote}' could not be reached "
            f"({facts.remote_error}): run 'dvc pull' once it can"
        ]
    if facts.state == "missing":
        elsewhere = "and no DVC remote set"
        if facts.remote:
            elsewhere = f"nor in the remote '{facts.remote}'"
        return [f"{path}: not in the local cache, {elsewhere} (rebuild it with 'dvc repro')"]
    return []

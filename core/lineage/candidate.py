"""The candidate: what the working tree would release, per service.

A candidate joins the git facts of the tree (commit, branch, dirtiness) with the DVC facts of
the models and data a service lists in relman.toml (recorded md5, size, cache state), the
params and metrics, and every problem that would stop a release, each one line with its
reason. ``relman status`` shows it; gates, builds and the ledger start from it.

Its release id is that of what it serves (:mod:`core.lineage.release_id`). An uncommitted
change makes the candidate dirty (id ``...-dirty``, never recorded) only when it touches what
the release serves: a file of the service's build context, its build config, a DVC file
(dvc.yaml, dvc.lock, ``*.dvc``) or a params file. relman.toml and files the build config
leaves out (a README, a notebook) never do; the candidate notes them and stays releasable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.lineage import dvcinfo
from core.lineage.build_context import TrackedFiles, ask_tracked_files, build_context
from core.lineage.dvcinfo import ArtifactDecl, ArtifactInfo, DvcSession
from core.lineage.gitinfo import GitInfo, ask_git_info
from core.lineage.release_id import is_dirty_id, release_id

if TYPE_CHECKING:  # lineage reads the project's folder only; the config is not needed
    from core.config.model import Project
    from core.documents import CandidateDocument

__all__ = [
    "Candidate",
    "ServiceArtifacts",
    "candidate",
    "candidates",
    "project_candidates",
    "upstream_stages",
]

# (model names or paths, data names or paths), as a service lists them in relman.toml.
ServiceArtifacts = tuple[list[str], list[str]]


@dataclass(frozen=True)
class Candidate:
    """What the working tree would release for one service."""

    release: str
    git: GitInfo
    model: list[ArtifactInfo]
    data: list[ArtifactInfo]
    # {file: {key: value}} as in the files; dvcinfo.flat_view gives {"accuracy": 0.95}.
    params: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    # Facts worth a glance that stop nothing: detached HEAD, shallow clone.
    notes: list[str] = field(default_factory=list)
    # The uncommitted files (as git status names them) that touch what the release serves;
    # git.dirty_files may hold more (relman.toml, a README), which change nothing released.
    dirty_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def dirty(self) -> bool:
        """The tree differs from its commit in what the release serves: no release."""
        return is_dirty_id(self.release)

    def verify_line(self) -> str | None:
        """What stops this candidate from being released, in one line (uncommitted changes
        first, then the lineage problems, with how many more there are); None when nothing
        does. The ``verify`` step of `relman release` and of pipelines says it."""
        problems = list(self.problems)
        if self.git.dirty:
            files = ", ".join(self.git.dirty_files[:3]) or "the working tree"
            problems.insert(0, f"uncommitted changes ({files}); commit them first")
        if not problems:
            return None
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return problems[0] + more

    def to_dict(self) -> CandidateDocument:
        """The ``candidate`` of the ``status`` document (docs/json.md)."""
        return {
            "release": self.release,
            "ok": self.ok,
            "git": self.git.to_dict(),
            "model": [a.to_dict() for a in self.model],
            "data": [a.to_dict() for a in self.data],
            "params": self.params,
            "metrics": self.metrics,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def candidate(
    root: Path, model: list[str], data: list[str], build: str = "bentofile.yaml"
) -> Candidate:
    """The candidate of one service whose model and data are artifact names or paths, and
    whose BentoML build config is ``build``."""
    return candidates(root, {"": (model, data)}, {"": build})[""]


def project_candidates(project: Project, services: list[str] | None = None) -> dict[str, Candidate]:
    """The candidates of the project's services (all, or those named), as relman.toml lists
    their model and data."""
    declared = project.config.services
    wanted = services if services is not None else list(declared)
    return candidates(
        project.root,
        {name: (list(declared[name].model), list(declared[name].data)) for name in wanted},
        {name: declared[name].build for name in wanted},
    )


def candidates(
    root: Path, services: dict[str, ServiceArtifacts], builds: dict[str, str] | None = None
) -> dict[str, Candidate]:
    """The candidate of every service, opening git and DVC once for all of them.
    ``builds``: each service's BentoML build config (default ``bentofile.yaml``).

    Raises ProjectError when ``root`` is not a git repository or holds no DVC pipeline;
    everything else wrong is a problem line of the candidate it concerns.
    """
    root = Path(root).resolve()
    # git's five questions run side by side, in git processes, while DVC's modules load
    # here; their answers are then taken in order (a git error first: "not a git
    # repository" is the clearest).
    asked_info, asked_tracked = ask_git_info(root), ask_tracked_files(root)
    try:
        dvcinfo.load_dvc()
        info = asked_info.result()
        tracked = asked_tracked.result()
    finally:
        asked_info.close()
        asked_tracked.close()
    builds = builds or {}
    with dvcinfo.open_dvc(root) as session:
        # metrics first: DVC's metrics.show() swaps the repo's filesystem, which drops the
        # collected stages; everything after it shares one collection.
        metrics = dvcinfo.metrics(session)
        params = dvcinfo.params(session)
        declared = dvcinfo.declared_artifacts(session)
        return {
            name: _build(
                session,
                _Tree(root, info, tracked, builds.get(name, "bentofile.yaml")),
                declared,
                params,
                metrics,
                model,
                data,
            )
            for name, (model, data) in services.items()
        }


@dataclass(frozen=True)
class _Tree:
    """The git side of one service's candidate: the tree, and where its build config is."""

    root: Path
    info: GitInfo
    tracked: TrackedFiles
    build: str


def _build(
    session: DvcSession,
    tree: _Tree,
    declared: dict[str, ArtifactDecl],
    params: dict[str, dict[str, Any]],
    metrics: dict[str, dict[str, Any]],
    model_refs: list[str],
    data_refs: list[str],
) -> Candidate:
    info = tree.info
    lines: list[str] = []
    model = _resolve(session, declared, model_refs, "model", lines)
    data = _resolve(session, declared, data_refs, "data", lines)
    paths = [a.path for a in model + data]
    stages = upstream_stages(session, paths) if paths else []
    lines.extend(dvcinfo.problems(session, info.dirty_files, stages))
    context = build_context(tree.root, tree.build, tree.tracked)
    served = [
        f
        for f in info.dirty_files
        if context.serves(f) or _is_dvc_file(f) or tree.tracked.relative(f) in params
    ]
    other_changes = [f for f in served if not _is_dvc_record(f)]
    if other_changes:
        shown = ", ".join(other_changes[:5]) + (", ..." if len(other_changes) > 5 else "")
        lines.append(
            f"working tree: {len(other_changes)} uncommitted change(s) ({shown}): "
            "commit them, a release is built from a commit"
        )
    recorded = {a.path: a.md5 for a in model + data}
    return Candidate(
        release=release_id(context.digest, recorded, params, dirty=bool(served)),
        git=info,
        model=model,
        data=data,
        params=params,
        metrics=metrics,
        problems=_unique(lines),
        notes=_notes(info, served) + _stage_notes(session, stages) + session.metric_notes,
        dirty_files=served,
    )


def _resolve(
    session: DvcSession,
    declared: dict[str, ArtifactDecl],
    refs: list[str],
    kind: str,
    lines: list[str],
) -> list[ArtifactInfo]:
    """ArtifactInfo of each name or path; an unknown one becomes a problem line."""
    by_path = {decl.path: decl for decl in declared.values()}
    found: list[ArtifactInfo] = []
    for ref in refs:
        decl = declared.get(ref) or by_path.get(Path(ref).as_posix().rstrip("/"))
        path = decl.path if decl else ref
        state = dvcinfo.artifact_state(session, path, decl)
        if state is None:
            if decl is not None:
                lines.append(
                    f"artifact '{decl.name}' of dvc.yaml names {decl.path}, "
                    "which no stage or .dvc file tracks (fix its path in dvc.yaml)"
                )
            else:
                lines.append(
                    f"service lists {kind} '{ref}', which is neither an artifact in dvc.yaml "
                    "nor a DVC-tracked path (fix relman.toml)"
                )
            continue
        found.append(state)
    return found


def upstream_stages(session: DvcSession, paths: list[str]) -> list[Any]:
    """The stages producing ``paths`` and every stage they depend on, in index order.

    A stage needs another when one of its dependencies is, or lies inside or around, one of
    the other's outputs: DVC's own graph rule, without importing networkx (0.1 s).
    """
    stages = list(session.repo.index.stages)
    produces = {id(st): [session.rel(o.fs_path) for o in st.outs] for st in stages}
    wanted: dict[int, Any] = {}
    queue = [session.outputs()[p][0] for p in paths if p in session.outputs()]
    while queue:
        stage = queue.pop()
        if id(stage) in wanted:
            continue
        wanted[id(stage)] = stage
        for dep in stage.deps:
            dep_path = session.rel(dep.fs_path)
            queue.extend(
                other
                for other in stages
                if other is not stage
                and any(_overlaps(dep_path, out) for out in produces[id(other)])
            )
    return [stage for stage in stages if id(stage) in wanted]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _is_dvc_record(path: str) -> bool:
    # dvcinfo.problems already names these ("dvc.lock: not committed").
    return Path(path).name == "dvc.lock" or path.endswith(".dvc")


def _is_dvc_file(path: str) -> bool:
    # The pipeline and its records say which model and data the release serves.
    return _is_dvc_record(path) or Path(path).name == "dvc.yaml"


def _notes(info: GitInfo, served: list[str]) -> list[str]:
    notes = []
    if info.detached:
        notes.append(f"detached HEAD at {info.short}: the candidate has no branch")
    if info.shallow:
        notes.append("shallow clone: history before the oldest fetched commit is not visible")
    if served:
        notes.append("dirty working tree: the release id ends in -dirty and is never recorded")
    elsewhere = [f for f in info.dirty_files if f not in served]
    if elsewhere:
        shown = ", ".join(elsewhere[:5]) + (", ..." if len(elsewhere) > 5 else "")
        notes.append(
            f"uncommitted changes outside what the release serves ({shown}): they do not "
            "change the release id"
        )
    return notes


def _stage_notes(session: DvcSession, stages: list[Any]) -> list[str]:
    """What a stage upstream of the service does that `dvc status` says, without stopping
    a release: an always_changed stage is "always changed" there (its recorded outputs are
    what the release serves; `dvc repro` reruns it and what depends on it), a frozen one is
    not checked against its dependencies."""
    notes = []
    for stage in stages:
        where = dvcinfo.stage_address(session, stage)
        if getattr(stage, "always_changed", False) and not stage.frozen:
            notes.append(
                f"stage {where}: always_changed: 'dvc status' always lists it and 'dvc repro' "
                "reruns it and the stages after it; the release is what dvc.lock recorded"
            )
        if stage.frozen and getattr(stage, "cmd", None):
            notes.append(
                f"stage {where}: frozen: its dependencies are not checked, as 'dvc status' "
                f"does not check them ('dvc unfreeze {where}' to check them again)"
            )
    return notes


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))

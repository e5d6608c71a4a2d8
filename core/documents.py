"""The JSON documents of ``relman --json``, as the types the code builds them with.

The functions that build ``status``, ``history``, ``metrics``, ``alerts`` and the run
documents (``gate``, ``promote``, ``rollback``, ``build``, ``test``) are annotated with these
TypedDicts, so mypy checks the code against them; docs/schemas/*.json are generated from them
(``python -m core.documents --write docs/schemas``) and tests/contract checks that the
committed schemas are what this module generates, and that real output and the TUI's canned
fixtures fit them. docs/json.md says what each field means and which a script may rely on.

A key every document of its kind carries is a plain (required) key; a key that only some
carry is ``NotRequired``; ``X | None`` is a key that may be null. Fields may be added (the
schemas allow unknown keys); the fixed ones of docs/json.md are never renamed.

No ``from __future__ import annotations`` here: Python 3.11 reads ``NotRequired`` from the
evaluated annotations only, and the schema generator relies on ``__required_keys__``.
"""

import sys
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, Union

if TYPE_CHECKING:
    from pathlib import Path

# ---------------------------------------------------------------------------------- runs

StepStatus = Literal["passed", "failed", "skipped"]


class CaseDocument(TypedDict):
    """One test's outcome in a test suite's step: its pytest nodeid, how it ended
    (``passed``, ``failed``, ``error``, ``skipped``, ``xfailed``, ``xpassed``), in which phase
    (``collect``, ``setup``, ``call``, ``teardown``), and pytest's message; a failed or
    errored one also carries its ``traceback``."""

    nodeid: str
    outcome: str
    when: str
    seconds: float
    message: str
    traceback: NotRequired[str]


class StepExtras(TypedDict, total=False):
    """The fields some steps add to the four fixed ones."""

    # gate checks: order, artifacts, suites, metric, baseline or approvals
    kind: str
    # test suites: pytest's count of each outcome, and each test's outcome
    counts: dict[str, int]
    cases: list[CaseDocument]
    # a step that a cancel ended (partial results)
    cancelled: bool
    # the build step (and the image step of `relman build --image`)
    service: str
    release: str
    bento: str
    reused: bool
    image: str


class Step(StepExtras):
    """One step of a run: what was done, how it ended, how long it took, and the one line a
    person reads about it (the same line in the TUI, JUnit and the Markdown summary)."""

    name: str
    status: StepStatus
    seconds: float
    detail: str


class RunDocument(TypedDict):
    """What every run prints with ``--json`` (gate, test, build, promote, rollback, release):
    ``ok`` and the steps in the order they ran. A run that stopped says why in ``error``
    and how in ``exit_code`` (docs/exit-codes.md)."""

    ok: bool
    steps: list[Step]
    error: NotRequired[str | None]
    exit_code: NotRequired[int]
    seconds: NotRequired[float]
    cancelled: NotRequired[bool]


class GateDocument(RunDocument):
    """``relman gate SERVICE --env ENV``: each check that would decide the candidate's entry."""

    service: str
    env: str
    release: str


class DeployDocument(RunDocument):
    """``relman promote`` and ``relman rollback``."""

    kind: str
    service: str
    env: str
    release: str | None
    version: str | None
    url: str | None


class BentoEntry(TypedDict):
    """A Bento that ``relman build`` built or reused."""

    service: str
    release: str
    tag: str
    reused: bool
    path: str


class ImageEntry(TypedDict):
    """An OCI image that ``relman build --image`` built or reused: its reference
    (``localhost/relman/SERVICE:RELEASE``), the engine's image id and size in bytes, the
    builder (``offline`` or ``containerize``) and the engine (``podman`` or ``docker``)."""

    service: str
    release: str
    ref: str
    id: str
    size: int
    builder: str
    engine: str
    reused: bool


class BuildDocument(RunDocument):
    """``relman build [SERVICE]``; with ``--image``, ``images`` too."""

    bentos: list[BentoEntry]
    images: NotRequired[list[ImageEntry]]


class SuiteRunDocument(RunDocument):
    """``relman test [SUITE...]``: one step per suite; ``suites`` adds each test's outcome."""

    release: str | None
    releases: dict[str, str]
    recorded: bool
    suites: list[dict[str, Any]]
    runs: dict[str, int]
    reason: NotRequired[str]
    junit: NotRequired[str]


# -------------------------------------------------------------------------------- status

CacheState = Literal["local", "remote", "missing", "unknown"]


class GitDocument(TypedDict):
    """The commit the working tree sits on, and whether the tree differs from it."""

    commit: str
    short: str
    branch: str | None
    message: str
    author: str
    committed_at: str
    dirty: bool
    dirty_files: list[str]
    detached: bool
    shallow: bool


class ArtifactDocument(TypedDict):
    """A DVC-tracked model or data output, as git records it, and where its content is."""

    name: str | None
    path: str
    type: str | None
    md5: str | None
    size: int | None
    nfiles: int | None
    in_cache: bool
    cache: CacheState
    source: str
    # The DVC remote asked (null when local, or none is set); why it could not be asked.
    remote: NotRequired[str | None]
    remote_error: NotRequired[str | None]


class CandidateDocument(TypedDict):
    """What the working tree would release for one service."""

    release: str
    ok: bool
    git: GitDocument
    model: list[ArtifactDocument]
    data: list[ArtifactDocument]
    params: dict[str, dict[str, Any]]
    metrics: dict[str, dict[str, Any]]
    problems: list[str]
    notes: list[str]


class FiringAlert(TypedDict):
    """An alert firing in an environment: its rule, its line (the latest minute's value and
    the worst of the episode), and the release it fires for."""

    name: str
    detail: str
    release: str | None


class EnvironmentDocument(TypedDict):
    """What is live in one environment, as the ledger records it and the processes confirm."""

    release: str | None
    version: str | None
    state: str
    url: str | None  # None: a stage relman reads and does not serve
    since: str | None
    note: NotRequired[str]
    # interrupted: the command that finishes or undoes it
    next: NotRequired[str]
    serving: NotRequired[str | None]
    # the alerts firing there (only when some do), the most recently updated first
    alerts: NotRequired[list[FiringAlert]]
    # the rollout under way there (docs/rollouts.md), only while one is open
    rollout: NotRequired["EnvironmentRollout | None"]
    # a kubernetes environment: what the cluster runs (docs/targets.md)
    cluster: NotRequired["ClusterDocument"]


class ClusterDocument(TypedDict):
    """What a kubernetes environment's cluster runs, read from it by ``status``: the live
    slot's Deployment, its image, ready and wanted replicas, its ``relman.dev/release``;
    ``problem`` when the cluster could not be read."""

    deployment: str | None
    image: str | None
    ready: int
    replicas: int
    release: str | None
    problem: NotRequired[str]


class EnvironmentRollout(TypedDict):
    """The open canary or shadow rollout of an environment, as ``status`` and the overview
    show it: its ``phase``, how (``strategy``), the share of requests the new release gets
    (``weight``, mirrored in a shadow rollout), which release that is, and whether the relman
    driving it stopped (``interrupted``)."""

    phase: "RolloutPhase"
    strategy: "RolloutStrategy"
    weight: int
    canary: str
    canary_version: NotRequired[str | None]
    id: NotRequired[int]
    stable: NotRequired[str | None]
    interrupted: NotRequired[bool]
    # the command that shows it
    command: NotRequired[str]


class OpenRunDocument(TypedDict):
    """A run (test, build, promote, ...) that was not finished when ``status`` read the
    ledger: ``running`` while the relman that holds it (``pid``) works, ``interrupted`` once
    that relman ended without finishing it (``reason`` says so; closed in the ledger by this
    command, or by the next writing one after a read-only session)."""

    id: int
    kind: str
    release: str | None
    version: str | None
    env: str | None
    actor: str
    started_at: str
    status: str
    reason: str
    pid: int | None
    summary: str


class ServiceStatus(TypedDict):
    """One service: its candidate, its environments in promotion order, its registry tags,
    and its runs not finished (only when there are)."""

    name: str
    candidate: CandidateDocument
    environments: dict[str, EnvironmentDocument]
    registry: dict[str, dict[str, str]]
    runs: NotRequired[list[OpenRunDocument]]


class StatusDocument(TypedDict):
    """``relman status``; ``ok`` is false while any candidate has a problem."""

    ok: bool
    project: str
    root: str
    services: list[ServiceStatus]
    warnings: list[str]
    # No relman.toml: services read from what the repository declares (core/lineage/infer.py).
    inferred: NotRequired[bool]
    reading: NotRequired[str]


# ------------------------------------------------------------------------------- history


class HistoryEntry(TypedDict):
    """One thing that happened; ``summary`` is the line a person reads."""

    kind: str
    at: str
    service: str | None
    env: str | None
    release: str | None
    version: str | None
    actor: str
    status: str
    summary: str


class HistoryDocument(TypedDict):
    """``relman history``: one page, newest first; ``next_cursor`` asks for the next."""

    ok: bool
    entries: list[HistoryEntry]
    next_cursor: str | None
    warnings: list[str]


# ------------------------------------------------------------------------------- metrics


class MetricsPoint(TypedDict):
    """One minute of one environment (``t`` is the minute's start, ISO 8601, UTC)."""

    t: str
    rps: float
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    # Where p50/p95/p99 came from: the proxy's per-request latencies (within 1 %), or
    # BentoML's histogram buckets (the minute had no proxied request).
    latency_source: NotRequired[Literal["proxy", "histogram"]]


class MetricsSource(TypedDict):
    """Where the collector reads the counters (``[monitoring] source``), and what the
    running collector last said is wrong with it for this environment (null: nothing)."""

    name: Literal["scrape", "prometheus"]
    problem: str | None


class MetricsDocument(TypedDict):
    """``relman metrics SERVICE --env ENV``: one point a minute that had a rollup."""

    ok: bool
    service: str
    env: str
    range: str
    points: list[MetricsPoint]
    source: NotRequired[MetricsSource]


# ------------------------------------------------------------------------------ rollouts

RolloutPhase = Literal["progressing", "paused", "promoted", "aborted"]
RolloutStrategy = Literal["all-at-once", "canary", "shadow"]
RolloutStepStatus = Literal["pending", "running", "paused", "passed", "failed", "skipped"]
Verdict = Literal["pass", "fail", "inconclusive"]


class RolloutStep(TypedDict):
    """One step of a rollout's plan, in order: a weight with its pause, a manual pause or an
    analysis. ``status`` is ``pending`` until it starts, ``running`` (or ``paused``) while it
    holds the rollout, then how it ended; ``detail`` is the line a person reads."""

    name: str
    status: RolloutStepStatus
    seconds: float
    detail: str


class AnalysisMeasurement(TypedDict):
    """One check of the new release against the stable one over the same minutes: each
    side's figure as a person reads it, the verdict, and the line that explains it."""

    check: str
    stable: str
    canary: str
    verdict: Verdict
    detail: str


class RolloutDriver(TypedDict):
    """The relman process that moves the rollout on, and whether it still runs."""

    pid: int | None
    host: str | None
    alive: bool


class RolloutDocument(TypedDict):
    """``relman rollout status|pause|resume|abort|promote SERVICE --env ENV``: the newest
    rollout of the service in the environment (``phase`` ``none`` when there never was one,
    its other fields then empty or null). ``weight`` is the share of requests routed to the
    new release (``canary``), or mirrored to it in a shadow rollout; ``step`` the index of
    the current step in ``steps``; ``analysis`` the checks of the latest measurement;
    ``detail`` the rollout's latest line (an abort's: the failing check's); ``driver`` the
    relman that moves it on, null once it ended."""

    ok: bool
    service: str
    env: str
    phase: Literal["none", "progressing", "paused", "promoted", "aborted"]
    strategy: RolloutStrategy | None
    stable: str | None
    canary: str | None
    weight: int
    step: int | None
    steps: list[RolloutStep]
    analysis: list[AnalysisMeasurement]
    detail: str
    since: str | None
    driver: RolloutDriver | None
    id: NotRequired[int]
    stable_version: NotRequired[str | None]
    canary_version: NotRequired[str | None]
    # how many measurements the analysis steps took so far
    measurements: NotRequired[int]
    finished: NotRequired[str | None]
    error: NotRequired[str | None]
    exit_code: NotRequired[int]


# -------------------------------------------------------------------------------- alerts

AlertState = Literal["pending", "firing", "resolved"]


class SilenceEntry(TypedDict):
    """An Alertmanager silence covering an alert: its id, who made it, until when, why, and
    its matchers as amtool writes them (`service="iris", env=~"dev|staging"`)."""

    id: str
    by: str
    until: str
    comment: str
    matchers: str


class AlertEntry(TypedDict):
    """An alert: the rule, where, its state since when, and its one-line explanation."""

    name: str
    kind: str
    service: str
    env: str
    state: AlertState
    since: str
    detail: str
    release: str | None
    rollback: str | None
    value: NotRequired[float | None]
    threshold: NotRequired[float | None]
    baseline: NotRequired[float | None]
    # The rule of the same cause whose incident this alert joined (it paged, this did not).
    grouped_with: NotRequired[str]
    # The Alertmanager silence that covers this open alert ([monitoring] alertmanager_url).
    silence: NotRequired[SilenceEntry]


class AlertmanagerReading(TypedDict):
    """What `relman alerts` read from Alertmanager: how many silences are active, or (null)
    the line that says why they are unknown."""

    url: str
    silences: int | None
    problem: str | None


class AlertsDocument(TypedDict):
    """``relman alerts``: firing first, then pending, then resolved."""

    ok: bool
    alerts: list[AlertEntry]
    firing: int
    collector: int | None
    # Firing alerts an Alertmanager silence covers (not counted in `firing`).
    silenced: NotRequired[int]
    # Present when [monitoring] alertmanager_url is set.
    alertmanager: NotRequired[AlertmanagerReading]


# -------------------------------------------------------------------- JSON Schema export

# The files of docs/schemas/ and the type each is generated from.
SCHEMAS: dict[str, type] = {
    "step.json": Step,
    "run.json": RunDocument,
    "gate.json": GateDocument,
    "test.json": SuiteRunDocument,
    "build.json": BuildDocument,
    "deploy.json": DeployDocument,
    "status.json": StatusDocument,
    "history.json": HistoryDocument,
    "metrics.json": MetricsDocument,
    "alerts.json": AlertsDocument,
    "rollout.json": RolloutDocument,
}

_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_SCALARS: dict[Any, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _is_typeddict(kind: Any) -> bool:
    return isinstance(kind, type) and typing.is_typeddict(kind)


def _describe(kind: type) -> str:
    return " ".join((kind.__doc__ or "").split()).replace("``", "`")


def _object(kind: type, defs: dict[str, Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(kind)
    required = kind.__required_keys__  # type: ignore[attr-defined]
    schema: dict[str, Any] = {"title": kind.__name__, "type": "object"}
    schema["description"] = _describe(kind)
    # The keys every document carries first, each group in the order the type declares it.
    names = sorted(hints, key=lambda name: name not in required)
    schema["properties"] = {name: _schema(hints[name], defs) for name in names}
    schema["required"] = [name for name in names if name in required]
    # Unknown keys stay allowed: fields may be added to any document.
    return schema


def _schema(kind: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one annotation; nested TypedDicts go to ``defs`` once each."""
    if kind is Any:
        return {}
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    if _is_typeddict(kind):
        if kind.__name__ not in defs:
            defs[kind.__name__] = {}  # reserved first: a type may refer to itself
            defs[kind.__name__] = _object(kind, defs)
        return {"$ref": f"#/$defs/{kind.__name__}"}
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is Literal:
        return {"type": _SCALARS[type(args[0])], "enum": list(args)}
    if origin is list:
        return {"type": "array", "items": _schema(args[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema(args[1], defs)}
    if origin in (Union, types.UnionType):
        members = [_schema(arg, defs) for arg in args]
        if all(set(member) == {"type"} for member in members):
            return {"type": [member["type"] for member in members]}
        return {"anyOf": members}
    raise TypeError(f"no JSON Schema for {kind!r}")


def schema_of(document: type) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a document type, nested types in ``$defs``."""
    defs: dict[str, Any] = {}
    body = _object(document, defs)
    schema: dict[str, Any] = {"$schema": _DIALECT, **body}
    if defs:
        schema["$defs"] = dict(sorted(defs.items()))
    return schema


def schema_files() -> dict[str, str]:
    """``{file name: text}`` of every schema, as docs/schemas/ holds them."""
    import json

    return {
        name: json.dumps(schema_of(document), indent=2) + "\n" for name, document in SCHEMAS.items()
    }


def write_schemas(folder: "Path", *, check: bool = False) -> list[str]:
    """Write the schema files into ``folder`` (or, with ``check``, only compare); the names
    of the files that were out of date."""
    stale = []
    for name, text in schema_files().items():
        path = folder / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(name)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    """``python -m core.documents (--write | --check) FOLDER``."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="python -m core.documents",
        description="Write (or check) the JSON Schemas of relman's --json documents.",
    )
    parser.add_argument("folder", type=Path, help="where the schemas go, e.g. docs/schemas")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="write the schema files")
    action.add_argument("--check", action="store_true", help="exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = write_schemas(args.folder, check=args.check)
    verb = "wrote" if args.write else "out of date"
    for name in stale:
        print(f"{verb}: {args.folder / name}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())

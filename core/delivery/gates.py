"""Quality gates that explain themselves: pure evaluation over plain data.

Every gate ends ``passed``, ``failed`` or ``skipped`` with one line a person understands
without opening anything (``accuracy 0.912 < 0.950 required; prod baseline 0.948 (-3.8%,
allowed -1.0%)``). The caller maps ledger and lineage records into the small input types
here; nothing in this module reads a file, a database or the clock.

Metric gates ([gates.NAME] in relman.toml) have two parts, each its own result:

- the threshold (kind ``metric``): ``min`` and/or ``max`` on the candidate's value;
- the comparison with the baseline, the release live in the target environment (kind
  ``baseline``), after MLflow's ``MetricThreshold``. The change is candidate - baseline,
  signed so that positive means better (flipped when ``higher_is_better = false``), and the
  relative change is change / |baseline|. The part passes when change >= min_absolute_change
  (if set) and relative change >= min_relative_change (if set). Negative allowances permit a
  regression: ``min_relative_change = -0.01`` lets the metric get 1% worse. With
  ``baseline = true`` and neither allowance set, it means "no regression" (change >= 0).
  Setting an allowance turns the comparison on, as if ``baseline = true`` were written.
  With nothing live in the environment the comparison is ``skipped`` ("no baseline: nothing
  live in prod yet") while the threshold still applies; a baseline release that lacks the
  metric (it predates it) also skips the comparison, since there is nothing to regress from.

Changes are shown in the metric's own direction, so a latency that rose 5% with a 1% rise
allowed reads ``(+5.0%, allowed +1.0%)``; an allowance that asks for an improvement reads
``required``. A gate that names a metric the release lacks, a text value, or a gate that
checks nothing is a :class:`ConfigError` (exit 2): it needs relman.toml fixed, not a retry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from core.config.model import GateConfig
from core.errors import ConfigError, ReleaseError
from core.ledger.steps import step
from core.lineage.metrics_file import MetricsByFile, find_metric, flatten_metrics, same_file

if TYPE_CHECKING:
    from core.documents import Step

__all__ = [
    "ArtifactPresence",
    "GateKind",
    "GateResult",
    "GateStatus",
    "SuiteOutcome",
    "blocking",
    "evaluate_approvals",
    "evaluate_artifacts",
    "evaluate_metric_gate",
    "evaluate_order",
    "evaluate_suites",
    "format_percent",
    "format_value",
]

GateKind = Literal[
    "metric", "baseline", "suites", "artifacts", "approvals", "order", "port", "cluster"
]
GateStatus = Literal["passed", "failed", "skipped"]
# As core.lineage.dvcinfo says it; "unknown": not local, and the remote could not be asked.
CacheState = Literal["local", "remote", "missing", "unknown"]


@dataclass(frozen=True)
class GateResult:
    """One decision: what was checked, how it ended, and the line that explains it."""

    name: str
    kind: GateKind
    status: GateStatus
    detail: str
    seconds: float = 0.0
    # A check the platform could not pass (a cluster's RBAC, say): the error a promotion
    # raises for it, with its own exit code, rather than "blocked".
    error: ReleaseError | None = field(default=None, compare=False, repr=False)

    @property
    def blocks(self) -> bool:
        return self.status == "failed"

    def to_step(self) -> Step:
        """The step of the JSON contract (docs/json.md), plus ``kind``."""
        return step(self.name, self.status, self.seconds, self.detail, kind=self.kind)


@dataclass(frozen=True)
class SuiteOutcome:
    """The latest recorded run of one suite, as the ledger holds it."""

    release: str
    status: Literal["passed", "failed", "error"]
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    finished_at: str | None = None  # ISO-8601, for callers that show when
    # Why a run ended without a verdict per test, e.g. "timed out after 300s".
    note: str = ""


@dataclass(frozen=True)
class ArtifactPresence:
    """One model or data artifact of the candidate and where its content is."""

    path: str
    md5: str | None
    cache: CacheState
    # The DVC remote asked for it, and why it could not be reached (cache "unknown").
    remote: str | None = None
    remote_error: str | None = None


def blocking(results: Sequence[GateResult]) -> list[GateResult]:
    """The results that stop a promotion, in order."""
    return [result for result in results if result.blocks]


# ------------------------------------------------------------------------------ metric gates


def evaluate_metric_gate(
    name: str,
    gate: GateConfig,
    metrics: MetricsByFile,
    *,
    baseline: MetricsByFile | None,
    env: str,
) -> list[GateResult]:
    """The threshold part and the baseline part of gate ``name``, those that apply.

    ``metrics`` and ``baseline`` are ``{file: {key: value}}`` of the candidate and of the
    release live in ``env`` (None when nothing is live there).
    """
    compares = _check_gate(name, gate)
    file, value = find_metric(metrics, gate.metric, file=gate.file, owner=f"gate {name}")
    if math.isnan(value):
        return [
            _result(
                name,
                "metric",
                False,
                f"{gate.metric} is NaN in {file}; rerun the stage that writes it",
            )
        ]
    base, why_no_base = _baseline_value(gate.metric, file, baseline, env)
    comparison = _compare(gate, value, base, env) if compares and base is not None else None
    results: list[GateResult] = []
    if gate.min is not None or gate.max is not None:
        ok, text = _threshold(gate, value)
        if not ok and comparison is not None:
            text += f"; {comparison[1]}"
        elif not ok and base is not None:
            text += f"; {env} baseline {format_value(base)}"
        results.append(_result(name, "metric", ok, text))
    if compares:
        label = f"{name} vs {env}"
        if comparison is None:
            results.append(GateResult(label, "baseline", "skipped", why_no_base))
        else:
            ok, clause, shown = comparison
            results.append(_result(label, "baseline", ok, f"{gate.metric} {shown} vs {clause}"))
    return results


def _check_gate(name: str, gate: GateConfig) -> bool:
    """Whether the gate compares with a baseline; raises for a gate that cannot work."""
    compares = (
        gate.baseline
        or gate.min_absolute_change is not None
        or gate.min_relative_change is not None
    )
    if gate.min is None and gate.max is None and not compares:
        raise ConfigError(
            f"gate {name}: checks nothing; set min, max or baseline = true in [gates.{name}]"
        )
    if gate.min is not None and gate.max is not None and gate.min > gate.max:
        raise ConfigError(
            f"gate {name}: min {gate.min:g} is above max {gate.max:g}, so no value can pass; "
            f"fix [gates.{name}]"
        )
    return compares


def _baseline_value(
    metric: str, file: str, baseline: MetricsByFile | None, env: str
) -> tuple[float | None, str]:
    """The live release's value of ``metric`` (same file first), or None and why not."""
    if baseline is None:
        return None, f"no baseline: nothing live in {env} yet"
    files = {name: flatten_metrics(values) for name, values in baseline.items()}
    same = [values for name, values in files.items() if same_file(name, file)]
    candidates = same or [values for values in files.values() if metric in values]
    found = [values[metric] for values in candidates if metric in values]
    if len(found) != 1:
        return None, f"no baseline: the release live in {env} has no metric {metric!r}"
    value = found[0]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None, f"no baseline: the release live in {env} records {metric} = {value!r}"
    return float(value), ""


def _threshold(gate: GateConfig, value: float) -> tuple[bool, str]:
    metric = gate.metric
    if gate.min is not None and value < gate.min:
        shown, bound = _distinct(value, gate.min)
        return False, f"{metric} {shown} < {bound} required"
    if gate.max is not None and value > gate.max:
        shown, bound = _distinct(value, gate.max)
        return False, f"{metric} {shown} > {bound} allowed"
    if gate.min is not None and gate.max is not None:
        shown, low = _distinct(value, gate.min)
        high = _distinct(value, gate.max)[1]
        return True, f"{metric} {shown} within [{low}, {high}]"
    if gate.min is not None:
        shown, bound = _distinct(value, gate.min)
        return True, f"{metric} {shown} >= {bound}"
    assert gate.max is not None  # _check_gate: a threshold part has min or max
    shown, bound = _distinct(value, gate.max)
    return True, f"{metric} {shown} <= {bound}"


def _compare(gate: GateConfig, value: float, base: float, env: str) -> tuple[bool, str, str]:
    """Pass or fail, ``prod baseline 0.948 (+0.8%, allowed -1.0%)`` and the value as shown."""
    delta = value - base
    if base == 0:
        # Relative change from zero is unbounded; its sign is what an allowance can judge.
        relative = 0.0 if delta == 0 else math.copysign(math.inf, delta)
    else:
        relative = delta / abs(base)
    # Positive = better, whatever the direction of the metric.
    sign = 1.0 if gate.higher_is_better else -1.0
    min_abs, min_rel = gate.min_absolute_change, gate.min_relative_change
    if min_abs is None and min_rel is None:
        min_rel = 0.0  # baseline = true alone: no regression
    # Float noise must not fail 0.82 vs 0.83 against an allowance of exactly -0.01.
    tolerance = 1e-9 * max(1.0, abs(value), abs(base))
    ok = True
    changes: list[str] = []
    allowances: list[tuple[str, str]] = []
    if min_abs is not None:
        ok = ok and sign * delta >= min_abs - tolerance
        changes.append(_signed(delta))
        allowances.append((_word(min_abs), _signed(sign * min_abs)))
    if min_rel is not None:
        ok = ok and sign * relative >= min_rel - 1e-9
        changes.append(format_percent(relative))
        allowances.append((_word(min_rel), format_percent(sign * min_rel)))
    minimums = [m for m in (min_abs, min_rel) if m is not None]
    rule = "no regression allowed" if all(m == 0 for m in minimums) else _allowance_text(allowances)
    shown, base_text = _distinct(value, base)
    # "(+0.8%, allowed -1.0%)"; with both allowances "(-0.008, -0.8%; allowed -0.010, -2.0%)"
    between = "; " if len(changes) > 1 else ", "
    return ok, f"{env} baseline {base_text} ({', '.join(changes)}{between}{rule})", shown


def _word(minimum: float) -> str:
    return "required" if minimum > 0 else "allowed"


def _allowance_text(allowances: list[tuple[str, str]]) -> str:
    """``allowed -0.010, -1.0%``, or ``allowed -0.010, required +2.0%`` when they differ."""
    if len({word for word, _ in allowances}) == 1:
        return f"{allowances[0][0]} " + ", ".join(text for _, text in allowances)
    return ", ".join(f"{word} {text}" for word, text in allowances)


# ------------------------------------------------------------------------------- formatting


def format_value(value: float) -> str:
    """3 decimals in [-1, 1] (``0.948``), else up to 4 significant digits (``42``, ``40.5``)."""
    if not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude <= 1:
        # 0.0004 must not read as 0.000
        return f"{value:.3f}" if magnitude == 0 or magnitude >= 0.001 else f"{value:.2g}"
    if magnitude >= 1000:
        return f"{value:.0f}"  # 12345, not 1.234e+04
    return f"{value:.4g}"


def format_percent(ratio: float) -> str:
    """``+0.8%``, ``-3.8%``: one decimal with a sign; tiny non-zero changes keep a digit."""
    if math.isinf(ratio):
        return "+inf%" if ratio > 0 else "-inf%"
    percent = ratio * 100 + 0.0  # + 0.0 turns -0.0 into 0.0
    if percent != 0 and round(percent, 1) == 0:
        return f"{percent:+.1g}%"  # -0.04%, not a -0.0% that hides why it failed
    return f"{percent:+.1f}%"


def _signed(value: float) -> str:
    text = format_value(value + 0.0)
    return text if text.startswith("-") else f"+{text}"


def _distinct(value: float, other: float) -> tuple[str, str]:
    """Both numbers formatted, with more digits when rounding would make them look equal."""
    first, second = format_value(value), format_value(other)
    if first != second or value == other:
        return first, second
    for digits in range(4, 18):
        first, second = f"{value:.{digits}g}", f"{other:.{digits}g}"
        if first != second:
            break
    return first, second


def _result(name: str, kind: GateKind, ok: bool, detail: str) -> GateResult:
    return GateResult(name, kind, "passed" if ok else "failed", detail)


# ------------------------------------------------------------------ suites, artifacts, people


def evaluate_suites(
    required: Sequence[str], results: Mapping[str, SuiteOutcome | None], release_id: str
) -> list[GateResult]:
    """One result per required suite: it must have passed for this very release."""
    out: list[GateResult] = []
    for suite in dict.fromkeys(required):
        outcome = results.get(suite)
        if outcome is None or outcome.release != release_id:
            # A pass for an older release says nothing about this one's data and model.
            last = f" (last run was for {outcome.release})" if outcome is not None else ""
            ok = False
            detail = f"has not run for release {release_id}{last}; run relman test {suite}"
        else:
            ok = outcome.status == "passed"
            detail = f"{'passed' if ok else 'failed'} for this release: {_counts(outcome)}"
        out.append(_result(f"suite {suite}", "suites", ok, f"suite {suite} {detail}"))
    return out


def _counts(outcome: SuiteOutcome) -> str:
    parts = [
        f"{outcome.failed} failed" if outcome.failed else "",
        _plural(outcome.errors, "error") if outcome.errors else "",
        f"{outcome.passed} passed" if outcome.passed else "",
        f"{outcome.skipped} skipped" if outcome.skipped else "",
    ]
    counts = ", ".join(part for part in parts if part)
    if outcome.note:
        return f"{outcome.note} ({counts})" if counts else outcome.note
    return counts or "no tests ran"


def evaluate_artifacts(
    artifacts: Sequence[ArtifactPresence], problems: Sequence[str]
) -> GateResult:
    """Data and model present: every artifact in the local cache, and no lineage problem."""
    name = "data and model"
    if not artifacts and not problems:
        return GateResult(name, "artifacts", "skipped", "no data or model artifacts to check")
    unhashed = [a.path for a in artifacts if a.md5 is None]
    missing = [a.path for a in artifacts if a.md5 is not None and a.cache == "missing"]
    lines: list[str] = []
    if unhashed:
        lines.append(f"{_paths(unhashed)} not recorded by DVC (run dvc repro or dvc add)")
    lines += _to_pull(artifacts)
    if missing:
        lines.append(f"{_paths(missing)} not in the local cache nor in the remote (run dvc repro)")
    # Lineage also reports cache state ("models/model.pkl: not in the local cache ..."):
    # said once above, from the artifacts themselves.
    restated = tuple(f"{a.path}: not in the local cache" for a in artifacts)
    lines += [p for p in dict.fromkeys(problems) if not p.startswith(restated)]
    if not lines:
        present = _paths([a.path for a in artifacts])
        return _result(name, "artifacts", True, f"data and model in the local cache: {present}")
    if len(lines) > 2:
        lines = [*lines[:2], f"and {_plural(len(lines) - 2, 'more problem')}"]
    return _result(name, "artifacts", False, "; ".join(lines))


def _to_pull(artifacts: Sequence[ArtifactPresence]) -> list[str]:
    """``needs dvc pull`` lines, one per remote: those it holds, and those it could not say."""
    lines: list[str] = []
    pulled = [a for a in artifacts if a.md5 is not None and a.cache in ("remote", "unknown")]
    for remote in dict.fromkeys(a.remote for a in pulled):
        held = [a.path for a in pulled if a.remote == remote and a.cache == "remote"]
        unsure = [a for a in pulled if a.remote == remote and a.cache == "unknown"]
        where = f"remote '{remote}'" if remote else "the remote"
        if held:
            lines.append(f"{_paths(held)} not in the local cache: needs dvc pull (in {where})")
        if unsure:
            reason = f" ({unsure[0].remote_error})" if unsure[0].remote_error else ""
            lines.append(
                f"{_paths([a.path for a in unsure])} not in the local cache: needs dvc pull, "
                f"and {where} could not be reached{reason}"
            )
    return lines


def evaluate_approvals(
    env: str, required: int, approvers: Sequence[str], promoter: str, release: str = ""
) -> GateResult:
    """Four eyes: ``required`` approvals from people other than the one who promotes. When
    some are missing, the line ends with the command a second person runs (for ``release``:
    a version, an id or an id prefix)."""
    name = "approvals"
    if required <= 0:
        return GateResult(name, "approvals", "skipped", f"{env} needs no approval")
    people = [p for p in dict.fromkeys(a.strip() for a in approvers) if p]
    counted = [p for p in people if p != promoter]
    if len(counted) >= required:
        detail = f"approved for {env} by {', '.join(counted)} ({required} needed)"
        return _result(name, "approvals", True, detail)
    notes = [", ".join(counted)] if counted else []
    if promoter in people:
        notes.append(f"{promoter}'s own does not count")
    note = f" ({'; '.join(notes)})" if notes else ""
    detail = (
        f"{env} needs {_plural(required, 'approval')} from someone other than {promoter}; "
        f"has {len(counted)}{note}"
    )
    if release:
        detail += f"; another person runs: relman approve {release} --env {env}"
    return _result(name, "approvals", False, detail)


def evaluate_order(
    env: str, previous_env: str | None, healthy_in_previous: bool, *, forced: bool = False
) -> GateResult:
    """A release enters ``env`` only once it has been healthy in the environment before it."""
    name = "order"
    if previous_env is None:
        return GateResult(name, "order", "skipped", f"{env} is the first environment")
    if healthy_in_previous:
        return _result(name, "order", True, f"healthy in {previous_env}")
    if forced:
        detail = f"not yet healthy in {previous_env}; order check overridden"
        return GateResult(name, "order", "skipped", detail)
    detail = f"not yet healthy in {previous_env} ({env} comes after {previous_env})"
    return _result(name, "order", False, detail)


def _paths(paths: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return shown if len(paths) <= limit else f"{shown} and {len(paths) - limit} more"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"

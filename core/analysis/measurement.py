"""One measurement of an analysis: the new release against the stable one over [since, until).

:func:`measure` reads what the window needs -- the proxy's access log (errors, latency,
shadow agreement), each instance's monitor log (predictions) and the metric store's
feedback (labels) -- and runs the configured checks of :mod:`core.analysis.checks`, in the
order of ``analysis.checks``. In shadow mode the new release's figures come from the
mirrored requests (role "shadow"), the stable's from role "stable" of the same minutes;
shadow-agreement runs only there, and prediction-mix in both modes (the shadow's
predictions of mirrored requests against the stable's: it still speaks when the answers are
not comparable one by one).

The rollout driver measures every ``interval`` with the same ``since`` (the start of the
analysis step) and a later ``until``: the error-rate test is valid at every such look
(:mod:`core.analysis.stats`), the other checks spend ``1/count`` of the alpha each, and
each look reads only what the logs gained since the one before (the tails this process
keeps; :func:`forget` drops them when the rollout ends).
"""

from __future__ import annotations

from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.analysis import checks
from core.analysis.access import Window, read_window
from core.analysis.predictions import window_rows
from core.analysis.results import CheckResult, verdict
from core.errors import REPORTED
from core.targets.monitor_log import Outcome

if TYPE_CHECKING:
    from core.config.model import AnalysisConfig, Project

__all__ = ["CheckResult", "forget", "measure", "verdict"]

Mode = Literal["canary", "shadow"]
_request_id, _prediction = itemgetter(1), itemgetter(2)


def measure(
    project: Project,
    service: str,
    env: str,
    analysis: AnalysisConfig,
    *,
    since: float,
    until: float,
    stable: str,
    canary: str,
    mode: Mode,
    access_log: Path,
    instance_folders: dict[str, Path],
) -> list[CheckResult]:
    """The checks of ``analysis`` over [since, until), in its order; shadow-agreement only
    in shadow mode. ``stable``/``canary`` are release ids, ``instance_folders`` each
    release's instance folder. Reads only; what cannot be read makes a check inconclusive."""
    sources = _Sources(project, service, env, since, until, instance_folders)
    window: Window | None = None
    results: list[CheckResult] = []
    for check in analysis.checks:
        if check == "shadow-agreement" and mode != "shadow":
            continue
        if check in ("error-rate", "latency", "shadow-agreement") and window is None:
            window = read_window(access_log, since, until, stable=stable, canary=canary, mode=mode)
        if check == "error-rate":
            assert window is not None
            results.append(checks.error_rate(window.stable, window.canary, analysis, since=since))
        elif check == "latency":
            assert window is not None
            results.append(checks.latency(window.stable, window.canary, analysis))
        elif check == "shadow-agreement":
            assert window is not None
            results.append(checks.shadow_agreement(window.canary, analysis))
        elif check == "prediction-mix":
            results.append(_prediction_mix(sources, stable, canary, analysis))
        elif check == "accuracy":
            results.append(_accuracy(sources, stable, canary, analysis))
    return results


class _Sources:
    """The monitor rows of each release in the window, read once per measurement."""

    def __init__(
        self,
        project: Project,
        service: str,
        env: str,
        since: float,
        until: float,
        instance_folders: dict[str, Path],
    ) -> None:
        self.project, self.service, self.env = project, service, env
        self.since, self.until = since, until
        self.folders = instance_folders
        self._rows: dict[str, list[Outcome] | None] = {}

    def rows(self, release: str) -> list[Outcome] | None:
        """The release's rows of the window; None when it has no instance folder."""
        if release not in self._rows:
            folder = self.folders.get(release)
            self._rows[release] = (
                None if folder is None else window_rows(folder, self.since, self.until)[0]
            )
        return self._rows[release]


def _missing(check: str, releases: list[str], what: str) -> CheckResult | None:
    if not releases:
        return None
    detail = f"no instance folder for release {', '.join(releases)}: no {what} to compare"
    return CheckResult(check, "-", "-", "inconclusive", f"{detail}: inconclusive")


def _prediction_mix(
    sources: _Sources, stable: str, canary: str, analysis: AnalysisConfig
) -> CheckResult:
    ours, theirs = sources.rows(stable), sources.rows(canary)
    if ours is None or theirs is None:
        absent = [r for r, rows in ((stable, ours), (canary, theirs)) if rows is None]
        missing = _missing("prediction-mix", absent, "predictions")
        assert missing is not None
        return missing
    return checks.prediction_mix(
        list(map(_prediction, ours)), list(map(_prediction, theirs)), analysis
    )


def _accuracy(sources: _Sources, stable: str, canary: str, analysis: AnalysisConfig) -> CheckResult:
    ours, theirs = sources.rows(stable), sources.rows(canary)
    if ours is None or theirs is None:
        absent = [r for r, rows in ((stable, ours), (canary, theirs)) if rows is None]
        missing = _missing("accuracy", absent, "predictions")
        assert missing is not None
        return missing
    ids = [row[1] for row in (*ours, *theirs) if row[1]]
    try:
        labels = _labels(sources, ids)
    except REPORTED as exc:  # the store is busy, damaged, newer: this check waits
        line = f"feedback not read: {exc}"
        return CheckResult("accuracy", "-", "-", "inconclusive", f"{line}: inconclusive")
    return checks.accuracy(_pairs(ours, labels), _pairs(theirs, labels), analysis)


def _labels(sources: _Sources, ids: list[str]) -> dict[str, str]:
    """Feedback labels of ``ids``; none while no metric store exists (nothing is created)."""
    path = sources.project.metrics_path
    if not ids or not path.exists():
        return {}
    from store.metrics.store import MetricStore

    with MetricStore.open(path, readonly=True) as store:
        return store.feedback_labels(sources.service, sources.env, ids)


def _pairs(rows: list[Outcome], labels: dict[str, str]) -> list[tuple[str | None, str]]:
    """(prediction, true label) of the rows whose label is known: the feedback of its
    request id, else the row's own target column (as the collector joins them)."""
    found = map(labels.get, map(_request_id, rows))  # a row without an id: None
    return [
        (prediction, known)
        for (_, _, prediction, target), label in zip(rows, found, strict=True)
        if (known := label if label is not None else target) is not None
    ]


def forget() -> None:
    """Drop the tails of logs this process keeps between measurements (when a rollout ends;
    a benchmark timing a first measurement)."""
    from core.analysis import access, predictions

    access.forget()
    predictions.forget()

"""The analysis of a rollout: a new release's errors, latency and predictions against the stable
release's over the same minutes. Imports core.drift, core.targets, core.config, core.errors, store.
"""

from core.analysis.measurement import CheckResult, forget, measure, verdict

__all__ = ["CheckResult", "forget", "measure", "verdict"]

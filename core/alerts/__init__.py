"""Alert rules: detectors, the alert state machine, monitoring policies that cascade, webhooks and
policy backtests.

Imports core.config and the metric store.
"""

"""The collector and what it measures: scrapes, monitor logs, model quality and live drift, the
per-minute rollups, and the queries `relman metrics` and `alerts` answer.

Imports core.alerts, core.drift, core.targets, core.ledger, core.lineage, core.config, core.host
and store.
"""

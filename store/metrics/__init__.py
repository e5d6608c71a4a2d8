"""The metric store (.relman/metrics.db): raw scrapes and records, per-minute rollups, alerts, the
collector's claim and offsets.

Imports store.ledger (the SQLite connection and migrations) and store.errors; nothing of core.
"""

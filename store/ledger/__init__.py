"""The release ledger (.relman/ledger.db): releases, runs, promotions, approvals, the hash-chained
audit log, history; the SQLite connection and migrations the metric store reuses.

Imports sqlite-utils, the standard library and store.errors; nothing of core.
"""

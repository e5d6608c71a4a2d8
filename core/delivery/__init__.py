"""Getting releases live: gates and `relman gate`, promote, rollback, crash recovery, the `release`
pipeline, registry tags, `status`, the CI summary.

Imports every capability below it (monitoring, targets, build, testing, ledger, lineage, config)
and store; only core.api imports it.
"""

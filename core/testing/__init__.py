"""Test suites: pytest children run live in the project's interpreter, their results, JUnit, and
`relman test`.

Imports core.ledger, core.lineage, core.config, core.host, core.cancel and store.
"""

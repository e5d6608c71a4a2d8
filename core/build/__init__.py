"""Bentos: `relman build` in a child of the project's interpreter, finding and reading Bentos in
the BentoML store.

Imports core.ledger, core.lineage, core.config, core.host, core.cancel.
"""

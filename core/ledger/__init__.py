"""The engine's side of the release ledger: opening it for a project, recording releases and runs,
who acts, a run's steps, history and diff.

Imports core.lineage, core.config and store (the layer below the engine).
"""

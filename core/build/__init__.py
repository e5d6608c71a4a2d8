"""Bentos: `relman build` in a child of the project's interpreter, finding and reading Bentos in
the BentoML store; a release's OCI image built from its Bento (`relman build --image`).

Imports core.ledger, core.lineage, core.config, core.host, core.cancel.
"""

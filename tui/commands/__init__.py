"""Command-line verbs, one module per area; each module has ``add_parsers(verbs)`` and one
handler per verb that calls core/api.py and renders the answer."""

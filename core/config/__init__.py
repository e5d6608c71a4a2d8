"""relman.toml: the typed model, its strict checker, and the line each key was written on.

Imports only core.errors (the bottom of the engine).
"""

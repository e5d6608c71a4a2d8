"""relman's release engine. Imports neither textual nor rich; the public entry points are in
:mod:`core.api`."""

__version__ = "0.1.0"

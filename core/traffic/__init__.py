"""Demo load on a served environment (`relman traffic`) and the faults it injects.

Imports core.targets, core.host, core.config.
"""

"""Data drift statistics (PSI, KS, class mix) and their reference, a release's training data read
from the DVC cache.

Imports core.targets (the monitor log rows) and core.errors; nothing of the stores.
"""

"""Pipelines as data: runs as recorded state machines, their steps, retraining, and the
watcher that starts them. Imports delivery and everything below it; only core/api.py imports it."""

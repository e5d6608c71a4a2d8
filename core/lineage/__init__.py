"""What a release is made of: git and DVC facts of the working tree, the candidate, its content-
hash id, metrics files, GTO tags read.

Imports core.config and core.errors; nothing that records or deploys.
"""

"""This machine: detached processes that outlive relman (liveness, tags, stopping a group) and free
TCP ports.

Imports only core.errors.
"""

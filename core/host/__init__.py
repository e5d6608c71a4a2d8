"""This machine: detached processes that outlive relman (liveness, tags, stopping a group), free
TCP ports, and the container engine (podman or docker) that builds and runs release images.

Imports only core.errors.
"""

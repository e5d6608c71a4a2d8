"""The one exception family of relman.

Every error the engine raises on purpose is a :class:`ReleaseError`: a one-line message a
person can act on (what, where, what to do) and the exit code of DESIGN.md. Front ends print
the line and exit with the code; only ``--debug`` shows a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3


class ReleaseError(Exception):
    """Base of every error relman reports to a user."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        # One line, always: a multi-line message would break the CLI and JSON contract.
        line = " ".join(message.split())
        super().__init__(line)
        self.message = line
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message


class UsageError(ReleaseError):
    """The command line asks for something that cannot be (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(ReleaseError):
    """relman.toml (or a file it names) is missing or invalid (exit 2)."""

    exit_code = EXIT_USAGE


class ProjectError(ReleaseError):
    """The repository is not in a state relman can work with (exit 2)."""

    exit_code = EXIT_USAGE


class BlockedError(ReleaseError):
    """A test, gate, approval, lock or firing alert stopped the operation (exit 1)."""

    exit_code = EXIT_BLOCKED


class ReadOnlyError(BlockedError):
    """A mutating operation was asked for in read-only mode (exit 1)."""


class InfraError(ReleaseError):
    """A tool or service failed; the engine restored the previous state (exit 3)."""

    exit_code = EXIT_INFRA


class StoreError(ReleaseError):
    """A relman database is locked, corrupt or of a newer schema (exit 3 by default)."""

    exit_code = EXIT_INFRA

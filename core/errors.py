"""The one exception family of relman.

Every error the engine raises on purpose is a :class:`ReleaseError`: a one-line message a
person can act on (what, where, what to do) and its exit code (docs/exit-codes.md). Front
ends print the line and exit with the code; only ``--debug`` shows a traceback.

The store has its own family (:mod:`store.errors`: a line, no exit code). :data:`STORE_ERRORS`
is the one place a store error gets its exit code, as the ReleaseError it becomes;
:func:`as_release_errors` applies it at the door (every entry point of :mod:`core.api`), so
the front ends catch ReleaseError alone. Engine code that records a failure on its way out
catches :data:`REPORTED` and reads it through :func:`release_error`.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, MutableMapping
from typing import Any, ParamSpec, TypeVar

import store.errors as store_errors

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
    """A relman database is locked, unreadable, damaged, of another schema or on a full disk
    (exit 3): a :class:`store.errors.StoreFailure` as the front ends see it."""

    exit_code = EXIT_INFRA


# The ReleaseError (and so the exit code) of each kind of store error, looked up along the
# error's classes, most specific first. store.errors.StoreError is the fallback for a kind
# added to the store and not yet named here.
STORE_ERRORS: dict[type[store_errors.StoreError], type[ReleaseError]] = {
    store_errors.StoreError: StoreError,
    # locked, unreadable, damaged, newer or (read-only) older schema, disk full: exit 3
    store_errors.StoreFailure: StoreError,
    # a write asked of a read-only open: exit 1, refused as the engine's own guard is
    store_errors.ReadOnlyRefused: ReadOnlyError,
    # another relman holds the environment: exit 1
    store_errors.PromotionOpen: BlockedError,
    # no such release, run or alert; an ambiguous prefix; a bad argument: exit 2
    store_errors.InvalidRequest: UsageError,
    # a version already taken, a run or promotion already ended: exit 2
    store_errors.LedgerConflict: UsageError,
}

# What a user is told about in one line: the engine's errors and the store's.
REPORTED: tuple[type[Exception], ...] = (ReleaseError, store_errors.StoreError)


def release_error(error: BaseException) -> ReleaseError:
    """``error`` as the ReleaseError a user sees: itself, or for a store error the class
    :data:`STORE_ERRORS` maps it to, carrying its line (and the store error as its cause).
    Anything else is a TypeError: only the two families of :data:`REPORTED` are reported."""
    if isinstance(error, ReleaseError):
        return error
    if not isinstance(error, store_errors.StoreError):
        raise TypeError(f"not a relman error: {error!r}")
    kind = next(STORE_ERRORS[cls] for cls in type(error).__mro__ if cls in STORE_ERRORS)
    translated = kind(error.message)
    translated.__cause__ = error
    return translated


P = ParamSpec("P")
R = TypeVar("R")


def as_release_errors(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, raising each store error as its ReleaseError (:func:`release_error`)."""

    @functools.wraps(function)
    def door(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except store_errors.StoreError as error:
            raise release_error(error) from error

    return door


def guard_entry_points(namespace: MutableMapping[str, Any]) -> None:
    """Wrap every public function of a module's ``namespace`` in :func:`as_release_errors`:
    what core.api does to its own, last, so no store error leaves the engine untranslated."""
    for name, value in list(namespace.items()):
        public = not name.startswith("_")
        if public and isinstance(value, types.FunctionType) and value.__module__ != __name__:
            namespace[name] = as_release_errors(value)

"""The store's errors carry no exit code; core.errors gives each kind the ReleaseError, and so
the exit code, it had when the store raised ReleaseErrors itself, and core.api's entry points
raise them as such."""

from __future__ import annotations

import types

import pytest

import store.errors as store_errors
from core import api
from core.errors import (
    EXIT_BLOCKED,
    EXIT_INFRA,
    EXIT_USAGE,
    BlockedError,
    ReadOnlyError,
    ReleaseError,
    StoreError,
    UsageError,
    release_error,
)
from store.ledger.records import PromotionRecord

OPEN = PromotionRecord(
    id=7,
    service="fraud",
    env="prod",
    release_id="aaaaaaaaaaaa",
    previous_release_id=None,
    kind="promote",
    actor="alice",
    started_at="2025-03-01T03:00:00.000000+00:00",
    finished_at=None,
    status="intent",
    reason="",
    pid=4121,
)

# Each kind of store error, the ReleaseError it becomes and its exit code: the class and code
# each situation had before the store got its own family.
CASES: list[tuple[store_errors.StoreError, type[ReleaseError], int]] = [
    (store_errors.StoreBusy(".relman/ledger.db: busy"), StoreError, EXIT_INFRA),
    (store_errors.MetricStoreBusy(".relman/metrics.db: busy"), StoreError, EXIT_INFRA),
    (store_errors.StoreInaccessible("ledger.db: cannot be read"), StoreError, EXIT_INFRA),
    (store_errors.StoreCorrupt("ledger.db: not a readable database"), StoreError, EXIT_INFRA),
    (store_errors.SchemaTooNew("ledger.db: written by a newer relman"), StoreError, EXIT_INFRA),
    (store_errors.SchemaTooOld("ledger.db: schema 1 is older"), StoreError, EXIT_INFRA),
    (store_errors.StoreFull("metrics.db: disk full"), StoreError, EXIT_INFRA),
    (store_errors.MetricStoreFull("metrics.db: disk full"), StoreError, EXIT_INFRA),
    (store_errors.StoreFailure("ledger.db: SQLite failed (x)"), StoreError, EXIT_INFRA),
    (store_errors.ReadOnlyRefused("ledger.db: opened read-only"), ReadOnlyError, EXIT_BLOCKED),
    (store_errors.PromotionOpen(OPEN), BlockedError, EXIT_BLOCKED),
    (store_errors.InvalidRequest("history limit must be at least 1"), UsageError, EXIT_USAGE),
    (store_errors.RecordNotFound("no run #9 in ledger.db"), UsageError, EXIT_USAGE),
    (store_errors.ReleaseNotFound("no release 'abz' in ledger.db"), UsageError, EXIT_USAGE),
    (store_errors.AmbiguousRelease("release prefix 'ab' is ambiguous"), UsageError, EXIT_USAGE),
    (store_errors.LedgerConflict("run #3 already finished"), UsageError, EXIT_USAGE),
]


@pytest.mark.parametrize(
    ("error", "kind", "code"), CASES, ids=[type(case[0]).__name__ for case in CASES]
)
def test_each_store_error_keeps_its_exit_code(
    error: store_errors.StoreError, kind: type[ReleaseError], code: int
) -> None:
    reported = release_error(error)
    assert type(reported) is kind
    assert reported.exit_code == code
    assert reported.message == error.message  # the store's line, word for word
    assert reported.__cause__ is error  # --debug shows where the store raised it


def test_every_kind_of_store_error_has_its_case() -> None:
    """A kind added to store/errors.py must be given its exit code here (and in
    core.errors.STORE_ERRORS), not fall silently to the fallback."""
    kinds = {
        value
        for value in vars(store_errors).values()
        if isinstance(value, type) and issubclass(value, store_errors.StoreError)
    }
    assert kinds - {store_errors.StoreError} == {type(case[0]) for case in CASES}


def test_an_unknown_kind_falls_back_to_exit_3() -> None:
    class Unnamed(store_errors.StoreError):
        pass

    assert release_error(Unnamed("ledger.db: something new")).exit_code == EXIT_INFRA


def test_a_promotion_open_says_who_holds_the_environment() -> None:
    reported = release_error(store_errors.PromotionOpen(OPEN))
    assert str(reported) == (
        "prod is being promoted by alice (pid 4121) since 2025-03-01T03:00:00.000000+00:00; "
        "wait for it to finish"
    )


def test_store_messages_are_one_line() -> None:
    error = store_errors.StoreCorrupt("ledger.db: not a readable\n relman   database")
    assert str(error) == error.message == "ledger.db: not a readable relman database"


def test_release_errors_pass_unchanged_and_others_are_refused() -> None:
    blocked = BlockedError("a gate failed")
    assert release_error(blocked) is blocked
    with pytest.raises(TypeError, match="not a relman error"):
        release_error(ValueError("a bug"))


def test_every_entry_point_of_core_api_raises_store_errors_as_release_errors() -> None:
    """core.api wraps its public functions last; one defined after that line would let a
    store error reach the front ends, which catch ReleaseError alone."""
    entry_points = {
        name: value
        for name, value in vars(api).items()
        if isinstance(value, types.FunctionType) and not name.startswith("_")
    }
    assert "history" in entry_points
    unguarded = [
        name
        for name, value in entry_points.items()
        if value.__module__ != "core.errors" and not hasattr(value, "__wrapped__")
    ]
    assert unguarded == []


def test_a_store_error_leaves_core_api_as_its_release_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    busy = store_errors.StoreBusy(".relman/ledger.db: busy, another relman process held it")

    def locked(*args: object, **kwargs: object) -> dict[str, object]:
        raise busy

    monkeypatch.setattr("core.ledger.history.history", locked)
    with pytest.raises(StoreError) as caught:
        api.history(object())  # type: ignore[arg-type]
    assert caught.value.exit_code == EXIT_INFRA
    assert caught.value.message == busy.message
    assert caught.value.__cause__ is busy

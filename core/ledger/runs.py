"""Runs in the ledger around work that may fail: never left ``running``.

The ledger learns of a run before its work starts (``start_run``); whatever stops the work
early must still close it, so that history and ``relman status`` tell the truth: Ctrl-C
leaves it ``interrupted``, any other exception ``error`` with the exception's line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from store import Ledger

__all__ = ["finishing_runs"]


@contextmanager
def finishing_runs(
    ledger: Ledger, run_ids: Iterable[int], *, interrupted: str, failed: str
) -> Iterator[None]:
    """Close ``run_ids`` when the block raises: ``interrupted`` (the reason) on Ctrl-C,
    ``error`` with ``"{failed}: {the exception's line}"`` on anything else; then re-raise.
    A block that ends normally leaves the runs to the caller to finish with their outcome."""
    ids = list(run_ids)
    try:
        yield
    except KeyboardInterrupt:
        for run_id in ids:
            ledger.finish_run(run_id, "interrupted", reason=interrupted)
        raise
    except BaseException as exc:
        line = " ".join(str(exc).split()) or type(exc).__name__
        for run_id in ids:
            ledger.finish_run(run_id, "error", reason=f"{failed}: {line}")
        raise

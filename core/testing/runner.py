"""Run the test suites of relman.toml with pytest, in the project's interpreter, live.

Every suite named is checked before the first one starts; they run side by side, one per
CPU, each as one pytest child process (:func:`core.testing.pytest_child.run_suite`), and report what
:mod:`core.testing.results` holds.

A run can be cancelled: ``cancel`` (a :class:`threading.Event`, or anything with ``is_set``)
set by another thread ends each running suite's process group as a timeout would, within
half a second, and the suite comes back ``cancelled``; a suite not started yet never starts.
What the user cancelled raises :class:`Cancelled` once it is recorded.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from pathlib import Path

from core.cancel import CancelSignal
from core.config.model import SuiteConfig
from core.errors import ConfigError, UsageError
from core.testing.pytest_child import check_paths, run_suite
from core.testing.results import OnEvent, SuiteResult, TestEvent


class _Either:
    """Set when any of its signals is."""

    def __init__(self, *signals: CancelSignal) -> None:
        self._signals = signals

    def is_set(self) -> bool:
        return any(signal.is_set() for signal in self._signals)


# ------------------------------------------------------------------------------ public API


def run_suites(
    root: Path,
    suites: dict[str, SuiteConfig],
    names: list[str] | None,
    *,
    python: str,
    on_event: OnEvent | None = None,
    extra_env: dict[str, str] | None = None,
    cancel: CancelSignal | None = None,
) -> list[SuiteResult]:
    """Run the named suites (all when ``names`` is empty); every path is checked before the
    first one starts. Suites run side by side, one per CPU, each in its own process as
    before: a pytest start-up (plugins, imports) is most of a small suite's time. Results come
    back in the order of ``names``; ``on_event`` is called from one thread at a time.
    Once ``cancel`` is set, running suites are ended and come back ``cancelled``, like
    those that had not started (see :func:`was_cancelled`)."""
    selected = select_suites(root, suites, names)
    jobs = min(len(selected), max(1, os.cpu_count() or 1))
    if jobs <= 1:
        return [
            run_suite(
                root,
                name,
                suites[name],
                python=python,
                on_event=on_event,
                extra_env=extra_env,
                cancel=cancel,
            )
            for name in selected
        ]
    lock = threading.Lock()

    def guarded(event: TestEvent) -> None:
        if on_event is not None:
            with lock:
                on_event(event)

    stop = threading.Event()
    signal: CancelSignal = stop if cancel is None else _Either(stop, cancel)
    with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="relman-suite") as pool:
        futures = [
            pool.submit(
                run_suite,
                root,
                name,
                suites[name],
                python=python,
                on_event=guarded,
                extra_env=extra_env,
                cancel=signal,
            )
            for name in selected
        ]
        try:
            return [future.result() for future in futures]
        except BaseException:
            stop.set()  # Ctrl-C or a failure: every other suite's process is ended too
            raise


def was_cancelled(results: list[SuiteResult]) -> bool:
    """Whether a cancel cut the run short (some suite did not run to its end)."""
    return any(result.cancelled for result in results)


class UnknownSuite(ConfigError, UsageError):
    """A suite named on the command line that relman.toml does not declare (exit 2)."""


def select_suites(root: Path, suites: dict[str, SuiteConfig], names: list[str] | None) -> list[str]:
    """The suites to run, in order (all when ``names`` is empty), every name and path checked
    before anything starts."""
    selected = list(dict.fromkeys(names)) if names else list(suites)
    for name in selected:
        if name not in suites:
            declared = ", ".join(suites) or "none"
            raise UnknownSuite(
                f"unknown suite {name!r}; relman.toml declares [suites.*]: {declared}"
            )
    for name in selected:
        check_paths(root, name, suites[name])
    return selected

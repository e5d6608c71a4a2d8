"""What the promotion engine needs from a place that runs Bentos.

A target runs *instances* (one release's Bento, started for validation) and routes an
environment's traffic to one of them. Promotion is: start an instance beside the live one,
wait until it is ready, smoke-test it, switch the environment to it, check the environment's
health, stop the previous instance. Rollback is the same with an older release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Instance:
    """One running (or recently running) Bento of a release, on its own address."""

    release: str
    address: str  # host:port it answers on
    pid: int | None  # process (group) id on the local target; None elsewhere
    log: str | None = None  # where its output goes, for the error line of a failure

    @property
    def url(self) -> str:
        return f"http://{self.address}"


@dataclass(frozen=True)
class SmokeResult:
    latency_ms: float
    detail: str


class Target(Protocol):
    service: str
    env: str

    @property
    def url(self) -> str:
        """Where the environment answers (the address clients use)."""
        ...

    def prepare(self) -> None:
        """Before a promotion starts anything: InfraError when the environment cannot be
        served (its address taken by another program, say)."""
        ...

    def start(self, bento: str, release: str, *, log: Callable[[str], None]) -> Instance:
        """Start ``bento`` for ``release`` beside whatever the environment serves now."""
        ...

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        """Seconds until ``/readyz`` answered 200; InfraError (with the log's last lines)
        when it died or did not turn ready in time."""
        ...

    def smoke(self, instance: Instance, body: bytes, endpoint: str) -> SmokeResult:
        """Send the sample request; InfraError when the answer is an error or misshapen."""
        ...

    def switch(self, instance: Instance) -> None:
        """Route the environment's traffic to ``instance`` (atomically, for new requests)."""
        ...

    def serving(self) -> Instance | None:
        """The instance the environment routes to now, if it runs."""
        ...

    def instances(self) -> list[Instance]:
        """Every instance of this environment that runs, serving or not."""
        ...

    def health(self) -> str | None:
        """None when the environment answers ready at its own address, else why not."""
        ...

    def stop(self, instance: Instance) -> None:
        """Stop ``instance`` gracefully (requests in flight finish)."""
        ...

    def sweep(self, keep: Instance | None) -> list[str]:
        """Stop every instance (and anything it left running) but ``keep``."""
        ...

    def down(self) -> bool:
        """Stop everything of this environment; True when something ran."""
        ...

    def log_tail(self, instance: Instance, lines: int = 12) -> list[str]:
        """The last lines of the instance's output."""
        ...

"""What the promotion engine needs from a place that runs Bentos.

A target runs *instances* (one release's Bento, started for validation) and routes an
environment's traffic to one of them. Promotion is: start an instance beside the live one,
wait until it is ready, smoke-test it, switch the environment to it, check the environment's
health, stop the previous instance. Rollback is the same with an older release. A rollout
splits the traffic between the stable instance and a candidate (a share of the requests, or
copies of them) before it switches (docs/targets.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from core.targets.proxy_control import Routing


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
class Provenance:
    """What a started instance carries about where it comes from, for a platform that keeps
    it beside the instance (a cluster's annotations; the local target's instance.json)."""

    version: str | None = None
    git_commit: str | None = None
    run: int | None = None  # the ledger's run that starts it
    promotion: int | None = None  # the promotion (intent) it is started for


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

    def start(
        self,
        bento: str,
        release: str,
        *,
        log: Callable[[str], None],
        provenance: Provenance | None = None,
    ) -> Instance:
        """Start ``bento`` for ``release`` beside whatever the environment serves now."""
        ...

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        """Seconds until ``/readyz`` answered 200; InfraError (with the log's last lines)
        when it died or did not turn ready in time."""
        ...

    def smoke(self, instance: Instance, body: bytes, endpoint: str) -> SmokeResult:
        """Send the sample request; InfraError when the answer is an error or misshapen."""
        ...

    @property
    def access_log(self) -> Path:
        """The environment's access log: one JSON line per request (role, release, ...)."""
        ...

    def switch(self, instance: Instance) -> None:
        """Route all of the environment's traffic to ``instance`` (atomically, for new
        requests); this ends a split."""
        ...

    def split(
        self,
        stable: Instance,
        candidate: Instance,
        weight: int,
        *,
        mode: Literal["canary", "shadow"] = "canary",
        sticky: str | None = None,
    ) -> None:
        """Send ``weight`` % of new requests to ``candidate`` and the rest to ``stable``
        (canary), or all to ``stable`` and a copy of ``weight`` % to ``candidate``, whose
        answers are compared and dropped (shadow). ``sticky``: a header whose value keeps a
        client on one side."""
        ...

    def routing(self) -> Routing | None:
        """The routing in effect (None when the environment serves nothing)."""
        ...

    def candidate(self) -> Instance | None:
        """The running instance the routing sends canary or shadow traffic to, if any."""
        ...

    def serving(self) -> Instance | None:
        """The stable instance: the one the environment routes to now, if it runs."""
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

    def sweep(self, keep: Instance | Sequence[Instance] | None) -> list[str]:
        """Stop every instance (and anything it left running) but those of ``keep``."""
        ...

    def down(self) -> bool:
        """Stop everything of this environment; True when something ran."""
        ...

    def log_tail(self, instance: Instance, lines: int = 12) -> list[str]:
        """The last lines of the instance's output."""
        ...

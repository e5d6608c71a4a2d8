"""How the proxy (:mod:`core.targets.proxy`) picks where each request goes: the applied
:class:`~core.targets.proxy_control.Routing` as sides (stable, canary or shadow) and the
draw that puts a request on one of them. Each change of routing makes new sides (a new
generation), so a connection kept to an upstream is never reused across a change.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from core.targets.proxy_control import Routing, parse_address

Role = Literal["stable", "canary", "shadow"]


@dataclass(frozen=True, eq=False)
class Side:
    """One upstream of one applied routing; compared by identity (``is``)."""

    role: Role
    text: str  # host:port
    host: str
    port: int
    release: str | None
    generation: int


@dataclass(frozen=True, eq=False)
class Route:
    """One applied routing: ``text`` is what ``upstream`` held (echoed in
    ``upstream.applied``)."""

    text: str
    stable: Side
    candidate: Side | None  # role "canary" (answers clients) or "shadow" (gets copies)
    weight: int
    sticky: bytes | None  # a header name, lowercased as h11 gives them
    generation: int

    def bucket(self, headers: Iterable[tuple[bytes, bytes]], client: bytes) -> int:
        """A request's draw in 0..99: random, or with ``sticky`` a stable hash of that
        header's value (of ``client``, its IP, without the header)."""
        if self.sticky is None:
            return random.randrange(100)
        value = next((v for name, v in headers if name == self.sticky), client)
        return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "big") % 100

    def side_for(self, bucket: int) -> Side:
        """Where the request of draw ``bucket`` is answered."""
        candidate = self.candidate
        if candidate is not None and candidate.role == "canary" and bucket < self.weight:
            return candidate
        return self.stable

    def mirrored(self, bucket: int) -> Side | None:
        """The shadow a copy of the request of draw ``bucket`` goes to, if any."""
        candidate = self.candidate
        if candidate is not None and candidate.role == "shadow" and bucket < self.weight:
            return candidate
        return None


def route_of(routing: Routing | None, text: str, generation: int) -> Route | None:
    """The Route of an applied ``routing`` (None: no release is live)."""
    if routing is None or routing.stable is None:
        return None

    def side(role: Role, address: str, release: str | None) -> Side:
        host, port = parse_address(address)
        return Side(role, address.strip(), host, port, release, generation)

    candidate = None
    if routing.canary is not None:
        role: Role = "shadow" if routing.mode == "shadow" else "canary"
        candidate = side(role, routing.canary, routing.canary_release)
    sticky = routing.sticky.strip().lower().encode("latin-1") if routing.sticky else None
    return Route(
        text,
        side("stable", routing.stable, routing.stable_release),
        candidate,
        routing.weight,
        sticky,
        generation,
    )

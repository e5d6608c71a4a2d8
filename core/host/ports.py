"""Free TCP ports on the local machine."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable
from pathlib import Path

from core.errors import InfraError


def port_is_free(port: int, host: str = "127.0.0.1", *, reuse: bool = True) -> bool:
    """True when nothing listens on (host, port) and we may bind it.

    ``reuse``: bind with SO_REUSEADDR, as the proxy does. Connections the last server on the
    port closed stay in TIME_WAIT for a minute; without it the port would look taken after
    ``relman down``. A port with a listener is refused either way. Without ``reuse`` the port
    is free for any program, SO_REUSEADDR or not (what a port handed out should be)."""
    try:  # the address the proxy binds: the first of getaddrinfo (IPv6 hosts too)
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, IndexError):
        return False
    with socket.socket(family, kind, proto) as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


def free_ports(
    count: int, *, start: int = 3100, host: str = "127.0.0.1", avoid: Iterable[int] = ()
) -> list[int]:
    """``count`` distinct ports free for any program (no listener, no TIME_WAIT), the lowest
    from ``start`` upward."""
    taken = set(avoid)
    found: list[int] = []
    port = start
    while len(found) < count:
        if port > 65535:
            raise InfraError(
                f"no {count} free ports on {host} from {start} upward; stop some services "
                "and try again"
            )
        if port not in taken and port_is_free(port, host, reuse=False):
            found.append(port)
        port += 1
    return found


def ephemeral_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (for tests and side-port validation)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Instances' side ports come from below the kernel's ephemeral range: a port taken there by
# bind(0) is never handed to another program's bind(0) or outgoing connection in the second
# before ``bentoml serve`` binds it (BentoML's own process manager binds several that way).
SIDE_LOW = 20000
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def side_port(host: str = "127.0.0.1") -> int:
    """A port free for any program, drawn at random between ``SIDE_LOW`` and the kernel's
    ephemeral range, for a process that binds it a moment later; an ephemeral port where
    that band does not exist (a range configured to start below it)."""
    top = _ephemeral_low() - 1
    if top - SIDE_LOW < 1000:
        return ephemeral_port(host)
    for _ in range(64):
        port = random.randint(SIDE_LOW, top)
        if port_is_free(port, host, reuse=False):
            return port
    return ephemeral_port(host)

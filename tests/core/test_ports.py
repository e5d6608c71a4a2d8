"""core/host/ports.py: a port is free when nothing listens on it, TIME_WAIT or not."""

from __future__ import annotations

import socket

import pytest

from core.host import ports
from core.host.ports import free_ports, port_is_free, side_port


def _listener() -> tuple[socket.socket, int]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def test_a_listening_port_is_taken() -> None:
    server, port = _listener()
    with server:
        assert not port_is_free(port)
    assert port_is_free(port)


def test_a_port_whose_server_closed_its_connections_is_free_again() -> None:
    """The server side closes first, as the proxy does on `relman down`: its end of the
    connection stays in TIME_WAIT on the port, which a plain bind would call in use."""
    server, port = _listener()
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: TIME_WAIT on (127.0.0.1, port)
    client.recv(1)  # sees the close
    client.close()
    server.close()
    assert port_is_free(port)
    assert not port_is_free(port, reuse=False)  # a plain bind still fails: TIME_WAIT
    assert port not in free_ports(1, start=port)  # ports handed out are free for anyone


def test_free_ports_are_distinct_and_free() -> None:
    found = free_ports(3, start=20000)
    assert len(set(found)) == 3
    assert all(port_is_free(port) for port in found)


def test_an_ipv6_host_is_checked_on_ipv6() -> None:
    try:
        server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        server.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.getsockname()[1]
    server.close()
    assert port_is_free(port, "::1")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        listener.bind(("::1", port))
        listener.listen()
        assert not port_is_free(port, "::1")


def test_side_ports_come_from_below_the_ephemeral_range_and_are_free() -> None:
    """bind(0) elsewhere (BentoML's process manager binds several ports so) never takes the
    port an instance is about to bind."""
    low = ports._ephemeral_low()
    if low - ports.SIDE_LOW < 1000:
        pytest.skip(f"this machine's ephemeral range starts at {low}")
    drawn = {side_port() for _ in range(20)}
    assert all(ports.SIDE_LOW <= port < low for port in drawn)
    assert all(port_is_free(port, reuse=False) for port in drawn)
    assert len(drawn) > 1  # drawn at random, not the lowest free one each time


def test_a_side_port_skips_a_taken_one(monkeypatch: pytest.MonkeyPatch) -> None:
    server, port = _listener()
    with server:
        draws = iter([port, port + 1 if port_is_free(port + 1, reuse=False) else port + 2])
        monkeypatch.setattr(ports, "_ephemeral_low", lambda: 65000)
        monkeypatch.setattr(ports.random, "randint", lambda low, high: next(draws))
        assert side_port() != port


def test_without_room_below_the_ephemeral_range_a_side_port_is_an_ephemeral_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_low = ports._ephemeral_low()
    monkeypatch.setattr(ports, "_ephemeral_low", lambda: ports.SIDE_LOW + 10)
    assert side_port() >= real_low

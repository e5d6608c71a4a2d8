"""The test helper that gives each pytest-xdist worker its own ports."""

from __future__ import annotations

import pytest

from tests import ports


def test_workers_draw_from_disjoint_bands_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ports, "_cursor", {})
    seen: dict[str, list[int]] = {}
    for worker in ("gw0", "gw1", "gw4"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        seen[worker] = ports.worker_ports(3)
    assert all(max(found) < 32768 for found in seen.values())
    bands = {worker: {port // ports.BAND for port in found} for worker, found in seen.items()}
    assert len(set().union(*bands.values())) == 3


def test_a_worker_never_hands_out_a_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_cursor", {})
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    first, second = ports.worker_ports(3), ports.worker_ports(3)
    assert not set(first) & set(second)

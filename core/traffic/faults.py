"""The faults `relman traffic --inject` puts into a served environment.

- ``drift``: the requests themselves change: the feature with the widest spread in the data
  (``petal_length`` for the iris demo) is scaled by ``DRIFT_SCALE``, plus a little noise
  (core.traffic.load's request source applies it).
- ``latency-spike``, ``latency-leak``, ``error-burst``: a ``faults.json`` in the folder of the
  instance the environment routes to (or, with ``--target canary``, of the candidate a
  rollout sends a share of the requests to), which the demo's service applies to its API requests
  (see the demo's service.py): a constant extra latency, an extra latency growing with the
  minutes since the start, or 500s at random. The file is a lease (``until`` is renewed every
  ``RENEW_EVERY`` seconds), so it expires by itself should relman be killed; it is removed at
  the end, also after Ctrl-C. One relman traffic at a time holds an instance's file.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from core.errors import BlockedError
from core.host.processes import pid_alive
from core.targets.proxy_control import write_atomic

KINDS = ("latency-leak", "latency-spike", "error-burst", "drift")
# What each serving-side fault writes into faults.json (besides since, until, pid).
FAULTS: dict[str, dict[str, float]] = {
    "latency-spike": {"latency_ms": 250.0},
    "latency-leak": {"latency_leak_ms_per_min": 60.0},
    "error-burst": {"error_rate": 0.3},
}
FAULT_FILE = "faults.json"
DRIFT_SCALE = 1.6
# Noise added to the drifted feature, in standard deviations of that feature in the data.
DRIFT_NOISE = 0.1
# The fault file's ``until`` is now + LEASE_SECONDS, renewed every RENEW_EVERY seconds.
LEASE_SECONDS = 30.0
RENEW_EVERY = 10.0
# The demo service looks at its fault file once a second: wait that long before the load.
FAULT_SETTLE = 1.1


def describe_fault(kind: str | None) -> str:
    if kind is None:
        return "no fault"
    if kind == "drift":
        return f"drift (the widest-spread feature x{DRIFT_SCALE:g} + noise)"
    spec = FAULTS[kind]
    if "latency_ms" in spec:
        return f"{kind} (+{spec['latency_ms']:g} ms a request)"
    if "latency_leak_ms_per_min" in spec:
        return f"{kind} (+{spec['latency_leak_ms_per_min']:g} ms more each minute)"
    return f"{kind} ({spec['error_rate']:.0%} of requests answer 500)"


def fault_spec(kind: str, now: float) -> dict[str, Any]:
    """The faults.json of a serving-side fault starting at ``now`` (Unix seconds)."""
    return {
        **FAULTS[kind],
        "kind": kind,
        "since": now,
        "until": now + LEASE_SECONDS,
        "pid": os.getpid(),
    }


def write_fault(path: Path, spec: dict[str, Any]) -> None:
    """Write ``spec`` at ``path`` unless another live relman traffic's fault is there."""
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        held = None
    if (
        isinstance(held, dict)
        and held.get("pid") not in (None, spec["pid"])
        and float(held.get("until", 0)) > time.time()
        and pid_alive(int(held["pid"]))
    ):
        raise BlockedError(
            f"another relman traffic (pid {held['pid']}) injects {held.get('kind', 'a fault')} "
            f"into {path.parent}; wait for it to end, or stop it"
        )
    write_atomic(path, json.dumps(spec))


def remove_fault(path: Path, pid: int) -> bool:
    """Remove the fault file when it is still the one of ``pid``; True when removed."""
    try:
        held = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    if isinstance(held, dict) and held.get("pid") not in (None, pid):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True

"""Start-up of the test Kubernetes control plane, and relman's blue/green promotion on it.

Starts etcd, kube-apiserver, kube-controller-manager and kube-scheduler (tests/k8s_stack.py,
the binaries .ci/k8s-control-plane builds) with the test kubelet, and prints the seconds
until everything is ready (each process's health endpoint, then the controller manager's
default service account), next to issue 17's measure of the API server alone (about 6 s).

Then ``--promotions`` (5) promotions of a service through the Kubernetes target, each by a
fresh target (a new client, as each `relman promote` makes), timing the steps relman runs
(core/delivery/deploy.py's order): prepare (kubeconfig, namespace, RBAC by
SelfSubjectAccessReviews), start (server-side apply of the idle slot's Deployment and
preview Service), wait_ready (the rollout), smoke (the sample request through the preview
Service by the API server's proxy), switch (the Service's selector, until its endpoints
are the new pods), health (/readyz through the Service), retire (the old slot to 0). Each
pod runs tests/k8s_app.py, a standard-library server that is ready at once, so the figures
are relman's and the cluster's, not a Bento's start-up (seconds of its own); wait_ready
includes the test kubelet's reaction (it lists pods every 0.1 s and probes every 0.5 s).
Wall-clock seconds on a shared machine: medians, with min and max.

    python benchmarks/bench_k8s.py [--promotions 5] [--json]

Needs what the cluster tests need (root, the binaries, etcd, openssl); everything is in a
temporary folder and every process is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config.model import Project
from core.targets.kubernetes import KubernetesTarget
from tests.k8s_stack import (
    WHY_NOT,
    app_runtime,
    cluster_project,
    documented_role,
    running_cluster,
)

API_SERVER_BASELINE = 6.0  # issue 17: kube-apiserver ready in about 6 s on this machine
STEPS = ("prepare", "start", "wait_ready", "smoke", "switch", "health", "retire")
BODY = b'{"rows": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}'


def promote(config: Project, release: str) -> dict[str, float]:
    """One promotion of ``release``, step by step as deploy() runs them: seconds each."""
    seconds: dict[str, float] = {}
    target = KubernetesTarget(config, "app", "staging")

    def timed(name: str, action: Any) -> Any:
        started = time.perf_counter()
        result = action()
        seconds[name] = time.perf_counter() - started
        return result

    timed("prepare", target.prepare)
    previous = target.serving()
    instance = timed("start", lambda: target.start(f"app:{release}", release, log=lambda _: None))
    timed("wait_ready", lambda: target.wait_ready(instance, 120))
    timed("smoke", lambda: target.smoke(instance, BODY, "predict"))
    timed("switch", lambda: target.switch(instance))
    problem = timed("health", target.health)
    assert problem is None, problem
    if previous is not None:
        timed("retire", lambda: target.stop(previous))
    else:
        seconds["retire"] = 0.0
    seconds["total"] = sum(seconds.values())
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promotions", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if WHY_NOT is not None:
        print(f"bench_k8s: {WHY_NOT}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-k8s-") as temp:
        folder = Path(temp)
        with running_cluster(folder / "cluster", app_runtime()) as cluster:
            started_in = cluster.started_in
            namespace = "bench"
            cluster.create_namespace(namespace)
            token = cluster.service_account_token(namespace, "relman", documented_role())
            kubeconfig = cluster.kubeconfig(folder / "kubeconfig", {"relman": token})
            config = cluster_project(folder / "project", namespace, kubeconfig)
            runs = [promote(config, f"ready-{index}") for index in range(args.promotions)]
    figures: dict[str, Any] = {
        "control_plane_ready_s": round(started_in, 2),
        "api_server_baseline_s": API_SERVER_BASELINE,
        "promotions": len(runs),
        "steps_median_s": {
            name: round(statistics.median(run[name] for run in runs), 3)
            for name in (*STEPS, "total")
        },
        "total_min_s": round(min(run["total"] for run in runs), 3),
        "total_max_s": round(max(run["total"] for run in runs), 3),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    print(
        f"control plane ready in {started_in:.1f} s (etcd, API server, controller manager, "
        f"scheduler, test kubelet); baseline: the API server alone in about "
        f"{API_SERVER_BASELINE:g} s (issue 17)"
    )
    steps = figures["steps_median_s"]
    print(
        f"promotion (median of {len(runs)}): {steps['total']:.2f} s "
        f"(min {figures['total_min_s']:.2f}, max {figures['total_max_s']:.2f}); baseline: none "
        "before this target"
    )
    for name in STEPS:
        print(f"  {name:<11} {steps[name]:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

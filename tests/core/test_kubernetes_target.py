"""The Kubernetes target against a real API server, controller manager and scheduler
(tests/k8s_stack.py), its pods run by the test kubelet as small HTTP servers: blue/green
through real Services, the lines of what goes wrong, and the state read back from the
cluster. The whole promotion with real Bentos is tests/e2e/test_kubernetes.py."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError, InfraError
from core.targets import Instance, Provenance, target_for
from core.targets.kubernetes import KubernetesTarget
from tests.k8s_stack import (
    Cluster,
    cluster_project,
    documented_role,
    needs_cluster,
    without,
    write_kubeconfig,
)
from tests.ports import worker_ports
from tests.waiting import wait_for

pytestmark = [needs_cluster, pytest.mark.xdist_group("k8s")]
BODY = b'{"rows": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}'


def namespace_with_relman(
    cluster: Cluster, tmp_path: Path, rules: list[dict[str, Any]] | None = None
) -> tuple[str, Path]:
    """A fresh namespace, and a kubeconfig (context ``relman``) of a service account bound
    to ``rules`` there (default: the documented Role)."""
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(namespace)
    token = cluster.service_account_token(namespace, "relman", rules or documented_role())
    return namespace, cluster.kubeconfig(tmp_path / "kubeconfig", {"relman": token})


def deployment(cluster: Cluster, namespace: str, name: str) -> Any:
    from lightkube.resources.apps_v1 import Deployment

    return cluster.client(namespace).get(Deployment, name, namespace=namespace)


def test_blue_green_through_real_services(k8s_cluster: Cluster, tmp_path: Path) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path)
    target = target_for(cluster_project(tmp_path / "p", namespace, kubeconfig), "app", "staging")
    assert isinstance(target, KubernetesTarget)
    target.prepare()
    said: list[str] = []
    first = target.start(
        "app:ready-1", "ready-1", log=said.append, provenance=Provenance("v1.0.0", "abc123", 7, 3)
    )
    assert first == Instance("ready-1", "deployment/app-staging-blue", None, None)
    assert "registry.relman.test/relman/app:ready-1" in said[0]
    target.wait_ready(first, 120)
    assert target.serving() is None  # no Service yet: nothing serves the environment
    smoke = target.smoke(first, BODY, "predict")
    assert "service/app-staging-blue" in smoke.detail
    target.switch(first)
    assert target.health() is None
    assert target.serving() == first

    made = deployment(k8s_cluster, namespace, "app-staging-blue")
    labels, notes = made.metadata.labels, made.metadata.annotations
    assert labels["relman.dev/release"] == "ready-1" and labels["relman.dev/slot"] == "blue"
    assert labels["app.kubernetes.io/version"] == "v1.0.0"
    assert labels["app.kubernetes.io/managed-by"] == "relman"
    assert notes["relman.dev/git-commit"] == "abc123" and notes["relman.dev/run"] == "7"
    assert notes["relman.dev/promotion"] == "3" and notes["relman.dev/version"] == "v1.0.0"
    pod_notes = made.spec.template.metadata.annotations
    assert pod_notes["relman.dev/release"] == "ready-1" and "relman.dev/run" not in pod_notes

    # The next release goes to the idle slot, is validated there, then takes the Service.
    second = target.start("app:ready-2", "ready-2", log=said.append)
    assert second.address == "deployment/app-staging-green"
    target.wait_ready(second, 120)
    assert target.serving() == first  # validated beside the live release
    assert [i.release for i in target.instances()] == ["ready-1", "ready-2"]
    target.smoke(second, BODY, "predict")
    target.switch(second)
    target.stop(first)
    assert target.serving() == second and target.health() is None
    assert target.instances() == [second]
    assert deployment(k8s_cluster, namespace, "app-staging-blue").spec.replicas == 0
    seen = target.observe()
    assert (seen.release, seen.image) == ("ready-2", "registry.relman.test/relman/app:ready-2")
    assert (seen.ready, seen.replicas, seen.deployment) == (1, 1, "app-staging-green")
    # The old slot's pods end (the kubelet stops their program).
    wait_for(lambda: not target._pods("app-staging-blue"), "the blue pods to end")

    # Back: the idle slot (blue, kept at 0 replicas) runs the first release again.
    back = target.start("app:ready-1", "ready-1", log=said.append)
    assert back.address == "deployment/app-staging-blue"
    target.wait_ready(back, 120)
    target.switch(back)
    target.stop(second)
    assert target.serving() == back

    assert target.down() is True
    assert target.serving() is None and target.instances() == []
    assert target.down() is False


def test_a_slot_not_selected_is_an_orphan_to_sweep(k8s_cluster: Cluster, tmp_path: Path) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path)
    target = KubernetesTarget(
        cluster_project(tmp_path / "p", namespace, kubeconfig), "app", "staging"
    )
    live = target.start("app:ready-1", "ready-1", log=lambda _: None)
    target.wait_ready(live, 120)
    target.switch(live)
    left = target.start("app:ready-2", "ready-2", log=lambda _: None)  # a crash after this
    # A new client (a relman started afterwards) reads it all from the cluster.
    again = KubernetesTarget(
        cluster_project(tmp_path / "p", namespace, kubeconfig), "app", "staging"
    )
    assert again.serving() == live
    assert left in again.instances()
    assert again.sweep(again.serving()) == [
        "scaled deployment/app-staging-green (ready-2) to 0 replicas"
    ]
    assert again.instances() == [live]


def test_an_image_the_cluster_cannot_pull_fails_at_once(
    k8s_cluster: Cluster, tmp_path: Path
) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path)
    config = cluster_project(
        tmp_path / "p", namespace, kubeconfig, image_registry="nowhere.relman.test"
    )
    target = KubernetesTarget(config, "app", "staging")
    instance = target.start("app:ready-3", "ready-3", log=lambda _: None)
    with pytest.raises(InfraError) as caught:
        target.wait_ready(instance, 600)
    line = str(caught.value)
    assert "cannot pull image nowhere.relman.test/relman/app:ready-3 (ImagePullBackOff" in line
    assert "image_registry or image_pull_secret in [environments.staging.kubernetes]" in line
    assert caught.value.exit_code == 3


def test_a_release_never_ready_fails_at_its_deadline(k8s_cluster: Cluster, tmp_path: Path) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path)
    target = KubernetesTarget(
        cluster_project(tmp_path / "p", namespace, kubeconfig), "app", "staging"
    )
    instance = target.start("app:unready-1", "unready-1", log=lambda _: None)
    wait_for(
        lambda: any(namespace in started for started in k8s_cluster.kubelet.started),
        "the kubelet to start the pod's program",
    )
    with pytest.raises(InfraError) as caught:
        target.wait_ready(instance, 1)
    line = str(caught.value)
    assert line.startswith(f"deployment/app-staging-blue in {namespace} not ready after 1 s (0/1")
    assert "not ready (readiness probe failing)" in line
    assert "raise ready_timeout in [environments.staging]" in line


def test_a_release_that_crashes_says_so(k8s_cluster: Cluster, tmp_path: Path) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path)
    target = KubernetesTarget(
        cluster_project(tmp_path / "p", namespace, kubeconfig), "app", "staging"
    )
    instance = target.start("app:crash-1", "crash-1", log=lambda _: None)
    with pytest.raises(InfraError) as caught:
        target.wait_ready(instance, 600)
    assert "crashes on start (exit code 1, 1 restarts, CrashLoopBackOff)" in str(caught.value)
    assert target.log_tail(instance)[0].endswith("waiting (CrashLoopBackOff)")


def test_what_stops_a_promotion_before_it_changes_anything(
    k8s_cluster: Cluster, tmp_path: Path
) -> None:
    namespace, kubeconfig = namespace_with_relman(k8s_cluster, tmp_path / "a")

    def prepare_line(**settings: Any) -> ReleaseErrorInfo:
        chosen = {"namespace": namespace, "kubeconfig": kubeconfig, **settings}
        config = cluster_project(
            tmp_path / "p", chosen.pop("namespace"), chosen.pop("kubeconfig"), **chosen
        )
        with pytest.raises((ConfigError, InfraError)) as caught:
            KubernetesTarget(config, "app", "staging").prepare()
        return ReleaseErrorInfo(str(caught.value), caught.value.exit_code)

    missing_context = prepare_line(context="prod-eu")
    assert missing_context.line == (
        f"context 'prod-eu' (context) is not in the kubeconfig {kubeconfig} (contexts: relman); "
        "fix context in [environments.staging.kubernetes], or add it to the kubeconfig"
    )
    assert missing_context.code == 2

    no_file = prepare_line(kubeconfig=tmp_path / "nowhere")
    assert no_file.line.startswith(
        f"no kubeconfig for staging: {tmp_path / 'nowhere'} does not exist"
    )

    admin = prepare_line(namespace="absent", kubeconfig=k8s_cluster.admin_kubeconfig)
    assert admin.line.startswith("namespace absent does not exist in the cluster of context admin")
    assert "fix namespace in [environments.staging.kubernetes]" in admin.line and admin.code == 2

    # A namespaced Role cannot read namespaces: what it may not do is all it can say.
    scoped = prepare_line(namespace="absent")
    assert "(or the namespace does not exist)" in scoped.line

    restricted_ns, restricted = namespace_with_relman(
        k8s_cluster, tmp_path / "b", without(documented_role(), "deployments", "patch")
    )
    forbidden = prepare_line(namespace=restricted_ns, kubeconfig=restricted)
    assert forbidden.line == (
        f"RBAC forbids user relman to patch deployments.apps in namespace {restricted_ns} "
        f"(context relman, {k8s_cluster.server}); grant it with a Role and RoleBinding "
        "(docs/targets.md, RBAC), nothing was changed"
    )
    assert forbidden.code == 2

    (closed,) = worker_ports(1)
    down = write_kubeconfig(
        tmp_path / "down.kubeconfig", f"https://127.0.0.1:{closed}", k8s_cluster.ca, {"x": "t"}
    )
    unreachable = prepare_line(kubeconfig=down)
    assert unreachable.line.startswith(
        f"cannot reach the Kubernetes API at https://127.0.0.1:{closed}"
    )
    assert unreachable.code == 3


class ReleaseErrorInfo:
    def __init__(self, line: str, code: int) -> None:
        self.line, self.code = line, code

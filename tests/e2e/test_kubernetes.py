"""The demo promoted to a Kubernetes environment with relman's own CLI, against a real API
server, controller manager and scheduler (tests/k8s_stack.py), whose test kubelet runs each
pod's image as the release's Bento (`bentoml serve` on the pod's own address): the sample
request answers through the real Service. Releases replace each other blue/green, a
rollback restores the previous one, and what goes wrong (a release never ready, RBAC, an
image that cannot be pulled, a namespace or context that does not exist, a relman killed
mid-way) is one line, the right exit code, and the previous release still serving."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Demo
from tests.e2e.served import copy_demo, git, relman, relman_json, second_release
from tests.k8s_stack import Cluster, documented_role, needs_cluster, without
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow, needs_cluster, pytest.mark.xdist_group("k8s")]
SAMPLE = (
    Path(__file__).resolve().parents[2] / "core/scaffold/demo_template/sample_request.json"
).read_bytes()
REGISTRY = "registry.relman.test"


@dataclass
class Staged:
    """The demo with staging on the cluster: its root, namespace and cluster."""

    root: Path
    namespace: str
    cluster: Cluster

    def settings(self, **changed: str | int) -> None:
        """Rewrite [environments.staging.kubernetes] and [environments.staging] keys."""
        config = self.root / "relman.toml"
        text = config.read_text()
        for key, value in changed.items():
            shown = f'"{value}"' if isinstance(value, str) else str(value)
            text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {shown}", text, count=1)
            assert count == 1, key
        config.write_text(text)

    def deployment(self, slot: str) -> Any:
        from lightkube.resources.apps_v1 import Deployment

        client = self.cluster.client(self.namespace)
        return client.get(Deployment, f"iris-staging-{slot}", namespace=self.namespace)

    def selected_slot(self) -> str:
        from lightkube.resources.core_v1 import Service

        client = self.cluster.client(self.namespace)
        service = client.get(Service, "iris-staging", namespace=self.namespace)
        return str(service.spec.selector["relman.dev/slot"])

    def predict(self) -> list[str]:
        """The sample request through the environment's Service, as a client in the
        cluster sends it (by the API server's service proxy)."""
        status, answer = self.cluster.through_service(
            self.namespace, "iris-staging", "/predict", SAMPLE
        )
        assert status == 200, answer[:300]
        result: list[str] = json.loads(answer)
        return result

    def staging(self) -> dict[str, Any]:
        document = relman_json(self.root, "status")
        assert document["_exit"] == 0, document["_stderr"]
        env: dict[str, Any] = document["services"][0]["environments"]["staging"]
        return env


@pytest.fixture(scope="module")
def staged(
    demo: Demo, k8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Staged]:
    """The demo whose first environment, staging, is a namespace of the test cluster that
    relman reaches as a service account bound to the Role docs/targets.md gives; the
    kubeconfig also has a context ``restricted`` (that Role without ``patch`` on
    deployments) and ``admin``."""
    base = tmp_path_factory.mktemp("k8s-demo")
    root = copy_demo(demo, base / "iris-demo")
    namespace = f"ml-{uuid.uuid4().hex[:8]}"
    k8s_cluster.create_namespace(namespace)
    relman_token = k8s_cluster.service_account_token(namespace, "relman", documented_role())
    restricted = k8s_cluster.service_account_token(
        namespace, "restricted", without(documented_role(), "deployments", "patch")
    )
    kubeconfig = k8s_cluster.kubeconfig(
        base / "kubeconfig",
        {"relman": relman_token, "restricted": restricted, "admin": k8s_cluster.admin_token},
        current="relman",
    )
    config = root / "relman.toml"
    text = config.read_text()
    # No suites or gates in staging (they are tested elsewhere), and staging first; the
    # pipelines (which deploy to dev first) left out.
    envs = text[text.index("# Promotion order") : text.index("[suites.unit]")]
    dev = re.search(r"\[environments\.dev\]\nport = \d+\n", envs)
    assert dev is not None
    text = text.replace(
        envs,
        f"""[environments.staging]
target = "kubernetes"
ready_timeout = 120

[environments.staging.kubernetes]
namespace = "{namespace}"
kubeconfig = "{kubeconfig}"
context = "relman"
image_registry = "{REGISTRY}"

{dev.group(0)}
{envs[envs.index("[environments.prod]") :]}""",
    )
    text = text[: text.index("# Pipelines")]
    config.write_text(text)
    git(root, "commit", "-qam", "staging on a cluster")
    yield Staged(root, namespace, k8s_cluster)
    relman(root, "--batch", "down", "--env", "staging", timeout=120)


def promote(staged: Staged, *args: str, **env: str) -> dict[str, Any]:
    return relman_json(staged.root, "promote", "iris", "--to", "staging", *args, **env)


def live_release(staged: Staged) -> tuple[str, str]:
    """The release live in staging (promoted first if none is), and the slot serving it."""
    live = staged.staging()
    if live["state"] != "live":
        assert promote(staged)["_exit"] == 0
        live = staged.staging()
    return str(live["release"]), staged.selected_slot()


def one_line(done: dict[str, Any]) -> str:
    """The error of a failed run, which stderr also ends with, as one line."""
    assert done["_stderr"].splitlines()[-1] == f"relman: {done['error']}", done["_stderr"]
    return str(done["error"])


def test_releases_replace_each_other_on_the_cluster_and_roll_back(staged: Staged) -> None:
    first = promote(staged)
    assert first["_exit"] == 0, first["_stderr"]
    names = [s["name"] for s in first["steps"]]
    assert names[names.index("lock") :] == ["lock", "validate", "switch", "tags"]
    validate = next(s for s in first["steps"] if s["name"] == "validate")
    assert "on deployment/iris-staging-blue" in validate["detail"]
    assert (
        "/predict answered 200" in validate["detail"]
        and "service/iris-staging-blue" in validate["detail"]
    )
    release = first["release"]

    blue = staged.deployment("blue")
    assert blue.metadata.labels["relman.dev/release"] == release
    assert blue.metadata.labels["app.kubernetes.io/name"] == "iris"
    notes = blue.metadata.annotations
    assert notes["relman.dev/release"] == release
    assert notes["relman.dev/git-commit"] == git(staged.root, "rev-parse", "HEAD")
    assert notes["relman.dev/model-md5"] and notes["relman.dev/data-md5"]
    assert notes["relman.dev/bento"].endswith(f":{release}")
    assert notes["relman.dev/promotion"].isdigit() and notes["relman.dev/run"].isdigit()
    assert blue.spec.template.spec.containers[0].image == f"{REGISTRY}/relman/iris:{release}"
    assert staged.selected_slot() == "blue"
    assert staged.predict() == ["setosa", "virginica"]

    live = staged.staging()
    assert (live["state"], live["release"], live["serving"]) == ("live", release, release)
    assert live["cluster"] == {
        "deployment": "iris-staging-blue",
        "image": f"{REGISTRY}/relman/iris:{release}",
        "ready": 1,
        "replicas": 1,
        "release": release,
    }
    assert "note" not in live
    shown = relman(staged.root, "status", COLUMNS="250").stdout
    assert (
        f"cluster: deployment/iris-staging-blue runs {REGISTRY}/relman/iris:{release} (1/1 ready)"
        in " ".join(shown.split())
    )
    assert "staging" in relman(staged.root, "history", "--env", "staging").stdout

    # A second release: the idle slot, validated, then the Service's selector.
    second_release(staged.root)
    replaced = promote(staged)
    assert replaced["_exit"] == 0, replaced["_stderr"]
    newer = replaced["release"]
    assert newer != release and staged.selected_slot() == "green"
    green = staged.deployment("green")
    assert green.spec.template.spec.containers[0].image == f"{REGISTRY}/relman/iris:{newer}"
    assert staged.deployment("blue").spec.replicas == 0  # kept, at 0, for a rollback
    assert staged.staging()["cluster"]["image"] == f"{REGISTRY}/relman/iris:{newer}"

    back = relman_json(staged.root, "rollback", "iris", "--env", "staging", "--reason", "worse")
    assert back["_exit"] == 0, back["_stderr"]
    assert back["release"] == release and staged.selected_slot() == "blue"
    assert staged.deployment("green").spec.replicas == 0
    assert staged.staging()["cluster"]["release"] == release
    assert staged.predict() == ["setosa", "virginica"]

    # A release that never answers ready: exit 3 at its deadline, the Service unmoved.
    service = staged.root / "service.py"
    ready = service.read_text()
    service.write_text(
        ready.replace(
            "    @bentoml.api\n",
            "    def __is_ready__(self) -> bool:\n        return False\n\n    @bentoml.api\n",
            1,
        )
    )
    git(staged.root, "commit", "-qam", "never ready")
    staged.settings(ready_timeout=20)
    never = promote(staged)
    assert never["_exit"] == 3, never["_stderr"]
    line = one_line(never)
    assert re.match(
        r"deployment/iris-staging-green in ml-\w+ not ready after 20 s \(0/1 replicas", line
    )
    assert (
        "not ready (readiness probe failing)" in line and f"{release} still serves staging" in line
    )
    assert staged.selected_slot() == "blue" and staged.deployment("green").spec.replicas == 0
    assert staged.staging()["release"] == release
    assert staged.predict() == ["setosa", "virginica"]
    staged.settings(ready_timeout=120)
    service.write_text(ready)
    git(staged.root, "commit", "-qam", "ready again")


def test_what_goes_wrong_is_one_line_and_leaves_the_release_serving(staged: Staged) -> None:
    serving, slot = live_release(staged)
    second_release(staged.root, c="0.7")

    def refused(code: int, **settings: str) -> str:
        staged.settings(**settings)
        try:
            done = promote(staged)
        finally:
            staged.settings(context="relman", namespace=staged.namespace, image_registry=REGISTRY)
        assert done["_exit"] == code, done["_stderr"]
        assert staged.staging()["release"] == serving and staged.selected_slot() == slot
        return one_line(done)

    assert refused(2, context="restricted") == (
        f"RBAC forbids user restricted to patch deployments.apps in namespace {staged.namespace} "
        f"(context restricted, {staged.cluster.server}); grant it with a Role and RoleBinding "
        "(docs/targets.md, RBAC), nothing was changed"
    )
    assert refused(2, context="prod-eu").startswith(
        "context 'prod-eu' (context) is not in the kubeconfig"
    )
    assert refused(2, context="admin", namespace="absent") == (
        "namespace absent does not exist in the cluster of context admin "
        f"({staged.cluster.server}); create it, or fix namespace in "
        "[environments.staging.kubernetes]"
    )
    pulled = refused(3, image_registry="nowhere.relman.test")
    assert "cannot pull image nowhere.relman.test/relman/iris:" in pulled
    assert "(ImagePullBackOff" in pulled and f"{serving} still serves staging" in pulled

    # `relman gate` says the same before anyone asks for approvals.
    staged.settings(context="restricted")
    gate = relman_json(staged.root, "gate", "iris", "--env", "staging")
    staged.settings(context="relman")
    cluster = next(step for step in gate["steps"] if step["name"] == "cluster")
    assert cluster["status"] == "failed" and "RBAC forbids" in cluster["detail"]


def test_a_relman_killed_mid_way_is_reconciled_from_the_cluster(staged: Staged) -> None:
    serving, slot = live_release(staged)
    idle = "green" if slot == "blue" else "blue"
    second_release(staged.root, c="0.9")
    killed = relman(
        staged.root,
        "--batch",
        "promote",
        "iris",
        "--to",
        "staging",
        RELMAN_FAILPOINT="validate:done",
    )
    assert killed.returncode == -9
    # Killed after validating: the new release runs in the idle slot, the Service unmoved.
    assert staged.deployment(idle).spec.replicas == 1 and staged.selected_slot() == slot
    assert staged.staging()["state"] == "interrupted"

    again = promote(staged)
    assert again["_exit"] == 0, again["_stderr"]
    recovered = next(s for s in again["steps"] if s["name"] == "recover")
    assert "undid interrupted promote" in recovered["detail"]
    assert f"{serving} still serves staging" in recovered["detail"]
    assert staged.selected_slot() == idle
    now = staged.staging()
    assert now["release"] == again["release"] != serving and "note" not in now

    # Changed by hand in the cluster: status says so.
    from lightkube.resources.apps_v1 import Deployment
    from lightkube.types import PatchType

    client = staged.cluster.client(staged.namespace)
    client.patch(
        Deployment,
        f"iris-staging-{idle}",
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "iris", "image": f"{REGISTRY}/relman/iris:hand-made"}
                        ]
                    }
                }
            }
        },
        namespace=staged.namespace,
        patch_type=PatchType.STRATEGIC,
    )
    noted = staged.staging()
    assert noted["cluster"]["image"] == f"{REGISTRY}/relman/iris:hand-made"
    assert f"the cluster runs {REGISTRY}/relman/iris:hand-made, not" in noted["note"]

    down = relman(staged.root, "--batch", "down", "--env", "staging")
    assert down.returncode == 0, down.stderr
    gone = staged.staging()
    assert gone["state"] == "down" and gone["cluster"]["deployment"] is None
    wait_for(
        lambda: (
            not staged.cluster.kubelet.pods
            or all(staged.namespace not in k for k in staged.cluster.kubelet.pods)
        ),
        "the pods of staging to end",
    )

"""Finding a cluster environment's kubeconfig and image without a cluster: kubectl's
precedence and merge of KUBECONFIG, the lines of what is missing, and the image of a
release (core/targets/kube_access.py, core/targets/k8s_image.py)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import yaml

from core.config.model import KubernetesConfig
from core.errors import BlockedError, ConfigError
from core.targets.k8s_image import image_name, release_image
from core.targets.kube_access import connect


def kubeconfig(path: Path, contexts: dict[str, str], current: str | None = None) -> Path:
    """A kubeconfig whose contexts ``{name: server}`` each have a cluster and a token."""
    document = {
        "clusters": [{"name": n, "cluster": {"server": s}} for n, s in contexts.items()],
        "users": [{"name": n, "user": {"token": f"token-{n}"}} for n in contexts],
        "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in contexts],
    }
    if current:
        document["current-context"] = current
    path.write_text(yaml.safe_dump(document))
    return path


def test_kubeconfig_files_in_kubeconfig_are_merged_as_kubectl_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(tmp_path / "a", {"dev": "https://dev:6443"}, current="dev")
    second = kubeconfig(
        tmp_path / "b", {"dev": "https://other:6443", "prod": "https://prod:6443"}, "prod"
    )
    monkeypatch.setenv(
        "KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "no"), str(second)])
    )
    current = connect(tmp_path, "staging", KubernetesConfig(namespace="ml"), timeout=1)
    assert (current.context, current.server) == ("dev", "https://dev:6443")  # the first wins
    assert current.source == f"{first}:{second}" and current.user == "dev"
    prod = connect(tmp_path, "staging", KubernetesConfig(namespace="ml", context="prod"), timeout=1)
    assert prod.server == "https://prod:6443"
    for access in (current, prod):
        access.close()


def test_what_is_missing_in_a_kubeconfig_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigError) as none:
        connect(tmp_path, "staging", KubernetesConfig(namespace="ml"), timeout=1)
    assert str(none.value) == (
        "no kubeconfig for staging: ~/.kube/config does not exist; point kubeconfig in "
        "[environments.staging.kubernetes] (or KUBECONFIG) at the cluster's kubeconfig"
    )
    path = kubeconfig(tmp_path / "deploy.kubeconfig", {"ci": "https://ci:6443"})
    relative = KubernetesConfig(namespace="ml", kubeconfig="deploy.kubeconfig")
    with pytest.raises(ConfigError) as no_current:
        connect(tmp_path, "staging", relative, timeout=1)
    assert str(no_current.value) == (
        f"the kubeconfig {path} has no current context; set context in "
        "[environments.staging.kubernetes] (contexts: ci)"
    )
    named = KubernetesConfig(namespace="ml", kubeconfig="deploy.kubeconfig", context="ci")
    connect(tmp_path, "staging", named, timeout=1).close()


def test_the_image_of_a_release(monkeypatch: pytest.MonkeyPatch) -> None:
    pushed = KubernetesConfig(namespace="ml", image_registry="ghcr.io/acme/")
    assert (
        image_name("iris_v2", "4ee6ae6a9bad", pushed) == "ghcr.io/acme/relman/iris_v2:4ee6ae6a9bad"
    )
    assert release_image("iris", "4ee6ae6a9bad", "prod", pushed) == (
        "ghcr.io/acme/relman/iris:4ee6ae6a9bad"
    )
    local = KubernetesConfig(namespace="ml")
    assert image_name("iris", "4ee6ae6a9bad", local) == "localhost/relman/iris:4ee6ae6a9bad"
    if shutil.which("podman") is None and shutil.which("docker") is None:
        pytest.skip("no podman or docker to ask for a local image")
    absent = f"x{uuid.uuid4().hex[:11]}"  # no image store holds this release's image
    with pytest.raises(BlockedError) as caught:
        release_image("iris", absent, "prod", local)
    assert str(caught.value) == (
        f"no image of iris {absent} for prod: localhost/relman/iris:{absent} is not in this "
        "machine's image store; build it with `relman build iris --image`, or set "
        "image_registry in [environments.prod.kubernetes] to the registry it was pushed to"
    )


def test_logs_of_a_cluster_environment_say_where_they_are(tmp_path: Path) -> None:
    from core.config.model import Project, parse_config
    from core.targets.logs import access_log_of, serve_log_of

    text = (
        '[project]\nname = "shop"\n\n[services.shop]\nbento = "service:Shop"\nmodel = ["m"]\n\n'
        '[environments.staging]\ntarget = "kubernetes"\n\n'
        '[environments.staging.kubernetes]\nnamespace = "ml"\n'
    )
    project = Project(tmp_path, tmp_path / "relman.toml", parse_config(text, tmp_path))
    where = "staging runs on Kubernetes: its logs are the pods' (kubectl logs -n ml -l "
    assert serve_log_of(project, "shop", "staging") == (
        None,
        where + "app.kubernetes.io/instance=shop-staging)",
    )
    assert access_log_of(project, "shop", "staging")[0] is None

"""Reaching a Kubernetes API server as relman.toml and the kubeconfig say (lightkube).

The kubeconfig is found as kubectl finds it: ``kubeconfig`` of the environment (relative to
the project's root), else ``$KUBECONFIG`` (several files joined by ``:`` are merged, the
first to define a name wins), else ``~/.kube/config``; inside a pod with none of those, the
pod's service account. ``context`` picks one of its contexts (default: the current one).
Every failure to get there, and every answer of the API server relman does not expect, is
one line naming the object and what to do (:func:`api_errors`); lightkube is imported here
and in :mod:`core.targets.kubernetes` only, when a cluster environment is used.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core.config.model import KubernetesConfig
from core.errors import ConfigError, InfraError, ReleaseError

if TYPE_CHECKING:
    import httpx2
    from lightkube import Client
    from lightkube.config.kubeconfig import SingleConfig

DEFAULT_KUBECONFIG = "~/.kube/config"
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# What relman needs in the environment's namespace (docs/targets.md, RBAC): checked with
# SelfSubjectAccessReviews before a promotion changes anything.
NEEDED: tuple[tuple[str, str, str], ...] = (
    ("apps", "deployments", "get"),
    ("apps", "deployments", "list"),
    ("apps", "deployments", "create"),
    ("apps", "deployments", "patch"),
    ("", "services", "get"),
    ("", "services", "create"),
    ("", "services", "patch"),
    ("", "endpoints", "get"),
    ("", "pods", "list"),
    # The sample request (POST) and the health check (GET) through the service proxy.
    ("", "services/proxy", "get"),
    ("", "services/proxy", "create"),
)


@dataclass
class KubeAccess:
    """A client of one cluster, and what to call it in a message."""

    client: Client
    http: httpx2.Client  # the same credentials, for the service proxy and raw requests
    server: str
    context: str
    source: str  # the kubeconfig file(s), or "the pod's service account"
    namespace: str
    env: str
    user: str | None = None  # the kubeconfig's name for the credentials

    @property
    def where(self) -> str:
        return f"namespace {self.namespace} (context {self.context}, {self.server})"

    def close(self) -> None:
        self.client.close()
        self.http.close()


def connect(root: Path, env: str, config: KubernetesConfig, *, timeout: float) -> KubeAccess:
    """A client for ``env``'s cluster; ConfigError (exit 2) when the kubeconfig or its
    context cannot be found."""
    import httpx2
    from lightkube import Client
    from lightkube.config.client_adapter import Client as adapter_client
    from lightkube.config.client_adapter import ConnectionParams

    single, source = _single_config(root, env, config)
    limit = httpx2.Timeout(timeout)
    try:
        client = Client(config=single, namespace=config.namespace, timeout=limit, lazy=True)
        http = adapter_client(single, ConnectionParams(timeout=limit))
    except ReleaseError:
        raise
    except Exception as exc:  # a certificate or token file the kubeconfig names is missing
        raise ConfigError(
            f"the kubeconfig {source} cannot be used for {env} (context "
            f"{single.context_name}): {_line(exc)}; fix it, or [environments.{env}.kubernetes]"
        ) from exc
    return KubeAccess(
        client,
        http,
        single.cluster.server,
        single.context_name,
        source,
        config.namespace,
        env,
        single.context.user,
    )


def _single_config(root: Path, env: str, config: KubernetesConfig) -> tuple[SingleConfig, str]:
    from lightkube import ConfigError as LightkubeConfigError
    from lightkube import KubeConfig

    where = f"[environments.{env}.kubernetes]"
    files = _kubeconfig_files(root, config)
    if not files and config.context is None and (SERVICE_ACCOUNT / "token").is_file():
        source = "the pod's service account"
        try:
            in_pod = KubeConfig.from_service_account(SERVICE_ACCOUNT).get()
        except (LightkubeConfigError, KeyError) as exc:
            raise ConfigError(f"{source} cannot be used for {env}: {_line(exc)}") from exc
        assert in_pod is not None  # its one context is the current one
        return in_pod, source
    if not files:
        named = config.kubeconfig or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
        raise ConfigError(
            f"no kubeconfig for {env}: {named} does not exist; point kubeconfig in {where} "
            "(or KUBECONFIG) at the cluster's kubeconfig"
        )
    shown = ":".join(str(path) for path in files)
    merged = _merged(files)
    contexts = sorted(merged.get("contexts", {}))
    wanted = config.context or merged.get("current-context")
    if not wanted:
        raise ConfigError(
            f"the kubeconfig {shown} has no current context; set context in {where} "
            f"(contexts: {', '.join(contexts) or 'none'})"
        )
    if wanted not in merged["contexts"]:
        said = "context" if config.context else "current-context"
        raise ConfigError(
            f"context {wanted!r} ({said}) is not in the kubeconfig {shown} (contexts: "
            f"{', '.join(contexts) or 'none'}); fix context in {where}, or add it to the "
            "kubeconfig"
        )
    context = merged["contexts"][wanted]
    cluster = context.get("cluster")
    user = context.get("user")
    if cluster not in merged["clusters"]:
        raise ConfigError(
            f"context {wanted!r} of the kubeconfig {shown} names cluster {cluster!r}, which it "
            "does not define; fix the kubeconfig"
        )
    if user and user not in merged["users"]:
        raise ConfigError(
            f"context {wanted!r} of the kubeconfig {shown} names user {user!r}, which it "
            "does not define; fix the kubeconfig"
        )
    document = {
        "current-context": wanted,
        "clusters": [{"name": n, "cluster": c} for n, c in merged["clusters"].items()],
        "contexts": [{"name": n, "context": c} for n, c in merged["contexts"].items()],
        "users": [{"name": n, "user": u} for n, u in merged["users"].items()],
    }
    try:
        single = KubeConfig.from_dict(document, fname=files[0]).get(wanted)
    except (LightkubeConfigError, KeyError, TypeError) as exc:
        raise ConfigError(f"the kubeconfig {shown} cannot be read: {_line(exc)}") from exc
    assert single is not None  # a context was named
    return single, shown


def _kubeconfig_files(root: Path, config: KubernetesConfig) -> list[Path]:
    """The kubeconfig files that exist, in kubectl's order of precedence."""
    if config.kubeconfig:
        path = Path(os.path.expanduser(config.kubeconfig))
        path = path if path.is_absolute() else root / path
        return [path] if path.is_file() else []
    listed = os.environ.get("KUBECONFIG")
    if listed:
        paths = [Path(os.path.expanduser(part)) for part in listed.split(os.pathsep) if part]
    else:
        paths = [Path(os.path.expanduser(DEFAULT_KUBECONFIG))]
    return [path for path in paths if path.is_file()]


def _merged(files: list[Path]) -> dict[str, Any]:
    """The kubeconfig files merged as kubectl merges them: the first to set a name wins."""
    merged: dict[str, Any] = {"clusters": {}, "contexts": {}, "users": {}}
    for path in files:
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"the kubeconfig {path} cannot be read: {_line(exc)}") from exc
        if not isinstance(document, dict):
            raise ConfigError(f"the kubeconfig {path} is not a kubeconfig (not a mapping)")
        if document.get("current-context") and "current-context" not in merged:
            merged["current-context"] = document["current-context"]
        for key, inner in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
            for entry in document.get(key) or []:
                if isinstance(entry, dict) and entry.get("name") is not None:
                    merged[key].setdefault(str(entry["name"]), entry.get(inner) or {})
    return merged


@contextlib.contextmanager
def api_errors(access: KubeAccess, doing: str) -> Iterator[None]:
    """Turn what the API server (or the way to it) answers ``doing`` into one line:
    unreachable or failing (InfraError, exit 3), credentials refused, RBAC forbidding it
    or the namespace missing (ConfigError, exit 2: the cluster's setup needs fixing)."""
    import httpx2
    from lightkube import ApiError

    try:
        yield
    except ApiError as exc:
        raise api_error(access, doing, exc) from exc
    except httpx2.TimeoutException as exc:
        raise InfraError(
            f"the Kubernetes API at {access.server} did not answer in time ({doing}, "
            f"context {access.context}); check the cluster is up and reachable"
        ) from exc
    except httpx2.HTTPError as exc:
        raise InfraError(
            f"cannot reach the Kubernetes API at {access.server} ({doing}, context "
            f"{access.context}): {_line(exc)}; check the cluster is up and the kubeconfig's server"
        ) from exc


def api_error(access: KubeAccess, doing: str, exc: Any) -> ReleaseError:
    """The line of an ApiError raised while ``doing``."""
    status = exc.status
    code = getattr(status, "code", None) or exc.response.status_code
    message = " ".join(str(getattr(status, "message", "") or exc).split())
    if code == 401:
        return ConfigError(
            f"the Kubernetes API at {access.server} refused the credentials of context "
            f"{access.context} (401 Unauthorized) while {doing}; renew them in {access.source}"
        )
    if code == 403:
        return ConfigError(
            f"RBAC forbids {doing} in {access.where}: {message}; grant it to that user "
            "(docs/targets.md, RBAC)"
        )
    if code == 404 and namespace_gone(status, access.namespace):
        return ConfigError(namespace_missing(access))
    return InfraError(f"the Kubernetes API failed {doing} in {access.where}: {code} {message}")


def namespace_missing(access: KubeAccess) -> str:
    return (
        f"namespace {access.namespace} does not exist in the cluster of context "
        f"{access.context} ({access.server}); create it, or fix namespace in "
        f"[environments.{access.env}.kubernetes]"
    )


def namespace_gone(status: Any, namespace: str) -> bool:
    """Whether an API server's 404 Status says ``namespace`` itself is not found."""
    details = getattr(status, "details", None)
    kind = getattr(details, "kind", None)
    name = getattr(details, "name", None)
    return kind == "namespaces" and name == namespace


def check_access(access: KubeAccess) -> None:
    """Before anything changes: the namespace exists and RBAC lets this user do what a
    promotion does there (ConfigError naming the first verb missing)."""
    from lightkube import ApiError
    from lightkube.resources.core_v1 import Namespace

    known = True
    with api_errors(access, f"reading namespace {access.namespace}"):
        try:
            access.client.get(Namespace, access.namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                raise ConfigError(namespace_missing(access)) from exc
            if exc.status.code != 403:
                raise
            known = False  # a namespaced Role cannot read namespaces: RBAC tells below
    answers = [(item, allowed(access, *item)) for item in NEEDED]
    missing = [item for item, yes in answers if not yes]
    if not missing:
        return
    group, resource, verb = missing[0]
    # Something allowed there comes from a RoleBinding in it: the namespace exists.
    maybe = "" if known or len(missing) < len(answers) else " (or the namespace does not exist)"
    kind = f"{resource}.{group}" if group else resource
    raise ConfigError(
        f"RBAC forbids {_user(access)} to {verb} {kind} in {access.where}{maybe}; grant it "
        "with a Role and RoleBinding (docs/targets.md, RBAC), nothing was changed"
    )


def allowed(access: KubeAccess, group: str, resource: str, verb: str) -> bool:
    """A SelfSubjectAccessReview: may the kubeconfig's user ``verb`` ``resource``?"""
    from lightkube.models.authorization_v1 import (
        ResourceAttributes,
        SelfSubjectAccessReviewSpec,
    )
    from lightkube.resources.authorization_v1 import SelfSubjectAccessReview

    name, _, sub = resource.partition("/")
    review = SelfSubjectAccessReview(
        spec=SelfSubjectAccessReviewSpec(
            resourceAttributes=ResourceAttributes(
                group=group,
                resource=name,
                subresource=sub or None,
                verb=verb,
                namespace=access.namespace,
            )
        )
    )
    with api_errors(access, "asking the API server what this user may do"):
        answer = access.client.create(review)
    return bool(answer.status and answer.status.allowed)


def _user(access: KubeAccess) -> str:
    return f"user {access.user}" if access.user else f"the user of context {access.context}"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

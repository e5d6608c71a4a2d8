"""The Kubernetes target: a release's image as a Deployment, behind a Service, blue/green.

Each environment of a service has two Deployments, ``SERVICE-ENV-blue`` and
``SERVICE-ENV-green`` (the slots), one Service ``SERVICE-ENV`` whose selector names the live
slot, and a preview Service per slot (``SERVICE-ENV-blue``, ``-green``) that reaches that
slot's pods alone. A promotion applies the idle slot's Deployment with the new image
(server-side apply, field manager ``relman``), waits for its rollout, sends the sample
request through the slot's preview Service, then switches the Service's selector to it and
scales the other slot to zero, keeping it for a fast rollback (docs/targets.md, Kubernetes).

Labels (``app.kubernetes.io/name``, ``app.kubernetes.io/instance``, ``relman.dev/env``,
``relman.dev/slot``, ``relman.dev/release``) select; annotations (``relman.dev/release``,
``relman.dev/version``, the lineage, the run and the promotion) say what runs and where it
comes from. ``serving`` and ``instances`` read the cluster, never the ledger: recovery after
a crash compares the two. lightkube is imported when a cluster environment is used, not by
relman's start.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.config.model import KubernetesConfig, Project
from core.errors import InfraError, UsageError
from core.targets.base import Instance, Provenance, SmokeResult
from core.targets.kube_access import (
    KubeAccess,
    api_errors,
    check_access,
    connect,
    namespace_gone,
)

if TYPE_CHECKING:
    from core.documents import ClusterDocument
    from core.targets.proxy_control import Routing

FIELD_MANAGER = "relman"
PORT = 3000  # BentoML's images listen there (EXPOSE 3000)
PORT_NAME = "http"
SLOTS = ("blue", "green")
# Labels that select (stable for a slot); annotations that describe.
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
MANAGED_LABEL = "app.kubernetes.io/managed-by"
VERSION_LABEL = "app.kubernetes.io/version"
ENV_LABEL = "relman.dev/env"
SLOT_LABEL = "relman.dev/slot"
RELEASE_LABEL = "relman.dev/release"
PREFIX = "relman.dev/"
API_TIMEOUT = 10.0
STATUS_TIMEOUT = 3.0  # `relman status` and the TUI do not wait long for a cluster
SWITCH_TIMEOUT = 60.0  # the endpoints controller moving the Service to the new pods
POLL = 0.25
# What a pod's container waits on that will not pass by itself.
PULL_FAILURES = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_FAILURES = {"CreateContainerConfigError", "CreateContainerError"}
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class ClusterState:
    """What the cluster runs for an environment, for `relman status`."""

    release: str | None  # the live slot's relman.dev/release
    image: str | None
    ready: int
    replicas: int
    deployment: str | None
    problem: str | None = None  # the cluster could not be read

    def to_dict(self) -> ClusterDocument:
        found: ClusterDocument = {
            "deployment": self.deployment,
            "image": self.image,
            "ready": self.ready,
            "replicas": self.replicas,
            "release": self.release,
        }
        if self.problem:
            found["problem"] = self.problem
        return found


class KubernetesTarget:
    def __init__(
        self, project: Project, service: str, env: str, *, timeout: float = API_TIMEOUT
    ) -> None:
        self.project = project
        self.service = service
        self.env = env
        config = project.config.environments[env].kubernetes
        assert config is not None  # target = "kubernetes": the config checked it has one
        self.config: KubernetesConfig = config
        self.namespace = config.namespace
        self.base = object_name(service, env)
        self.folder = project.state_dir / "envs" / service / env
        self._access: KubeAccess | None = None
        self._timeout = timeout  # of each API call (status reads with STATUS_TIMEOUT)

    # ------------------------------------------------------------------ access

    @property
    def access(self) -> KubeAccess:
        if self._access is None:
            self._access = connect(self.project.root, self.env, self.config, timeout=self._timeout)
        return self._access

    @property
    def url(self) -> str:
        """Where users reach the environment: ``url`` of relman.toml, else the Service's
        address inside the cluster."""
        return self.config.url or f"http://{self.base}.{self.namespace}.svc:{PORT}"

    @property
    def access_log(self) -> Path:
        """No proxy of relman's is in front of a cluster: nothing is ever written here."""
        return self.folder / "access.log"

    def prepare(self) -> None:
        """The kubeconfig and its context, the namespace, and RBAC allowing every verb a
        promotion uses: ConfigError (exit 2) before anything changes."""
        check_access(self.access)

    # ------------------------------------------------------------------ instances

    def start(
        self,
        bento: str,
        release: str,
        *,
        log: Callable[[str], None],
        provenance: Provenance | None = None,
    ) -> Instance:
        """Apply the idle slot's Deployment (and its preview Service) with ``release``'s
        image; its pods start. A slot already holding that release is scaled up again."""
        from core.targets.k8s_image import release_image

        image = release_image(self.service, release, self.env, self.config)
        slot = self._idle_slot()
        name = f"{self.base}-{slot}"
        replicas = self.config.replicas
        log(f"applying deployment/{name} ({image}, {replicas} replica(s)) in {self.namespace}")
        manifest = self._deployment(slot, release, image, bento, provenance or Provenance())
        self._apply(manifest, f"applying deployment/{name}")
        self._apply(self._preview_service(slot), f"applying service/{name}")
        return Instance(release, f"deployment/{name}", None, None)

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        """Until the slot's rollout is complete and every replica is ready: InfraError at
        once for a pod that cannot pull its image or crashes, or at the deadline."""
        from lightkube.resources.apps_v1 import Deployment

        name = _deployment_name(instance)
        started = time.monotonic()
        deadline = started + timeout
        while True:
            with api_errors(self.access, f"reading deployment/{name}"):
                deployment = self.access.client.get(Deployment, name, namespace=self.namespace)
            pods = self._pods(name)
            for pod in pods:
                problem = self._pod_failure(pod)
                if problem:
                    raise InfraError(f"{self.service} {instance.release} in {self.env}: {problem}")
            failed = _failed_condition(deployment)
            if failed:
                raise InfraError(
                    f"deployment/{name} in {self.access.where}: {failed}; {self.service} "
                    f"{instance.release} did not start"
                )
            if _rolled_out(deployment):
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                ready = (deployment.status.readyReplicas or 0) if deployment.status else 0
                wanted = deployment.spec.replicas if deployment.spec else 0
                waiting = "; ".join(_pod_state(pod) for pod in pods[:2]) or "no pods"
                raise InfraError(
                    f"deployment/{name} in {self.namespace} not ready after {timeout:g} s "
                    f"({ready}/{wanted} replicas ready; {waiting}); raise ready_timeout in "
                    f"[environments.{self.env}] if it is slow"
                )
            time.sleep(POLL)

    def smoke(self, instance: Instance, body: bytes, endpoint: str) -> SmokeResult:
        """The sample request through the slot's preview Service (the API server's service
        proxy): the same answer checks as the local target's."""
        from core.targets.local import answer_shape_problem

        name = _deployment_name(instance)
        path = "/" + endpoint.lstrip("/")
        # Ready pods join a Service's endpoints a moment later (the endpoints controller).
        self._await_endpoints(name, name, "after they turned ready")
        started = time.perf_counter()
        status, answer = self._through_service(name, "POST", path, body)
        latency = (time.perf_counter() - started) * 1000
        if status != 200:
            text = answer.decode(errors="replace").strip().splitlines()[:1]
            raise InfraError(
                f"smoke request to {path} through service/{name} answered {status}: "
                + " ".join(text)
            )
        problem = answer_shape_problem(body, answer)
        if problem:
            raise InfraError(f"smoke request to {path} through service/{name}: {problem}")
        return SmokeResult(latency, f"{path} answered 200 in {latency:.0f} ms (service/{name})")

    def switch(self, instance: Instance) -> None:
        """Point the Service at ``instance``'s slot, and wait until its endpoints are that
        slot's pods alone."""
        name = _deployment_name(instance)
        slot = name.rsplit("-", 1)[-1]
        self._apply(self._service(slot, instance.release), f"switching service/{self.base}")
        self._await_endpoints(self.base, name, "after its selector moved to them")

    def split(
        self,
        stable: Instance,
        candidate: Instance,
        weight: int,
        *,
        mode: Literal["canary", "shadow"] = "canary",
        sticky: str | None = None,
    ) -> None:
        raise UsageError(
            f"{mode} rollouts are not built for kubernetes environments yet ({self.env}); "
            "promote with --strategy all-at-once (blue-green)"
        )

    def routing(self) -> Routing | None:
        """A cluster environment is never split: nothing to route but the Service."""
        return None

    def candidate(self) -> Instance | None:
        return None

    def serving(self) -> Instance | None:
        """The slot the Service selects, when its Deployment has replicas."""
        slot = self._live_slot()
        if slot is None:
            return None
        for instance in self.instances():
            if instance.address == f"deployment/{self.base}-{slot}":
                return instance
        return None

    def instances(self) -> list[Instance]:
        """Every slot's Deployment with replicas, whatever the Service selects."""
        from lightkube.resources.apps_v1 import Deployment

        found = self._list(
            Deployment,
            {INSTANCE_LABEL: self.base, MANAGED_LABEL: FIELD_MANAGER},
            f"listing the deployments of {self.base}",
        )
        instances = []
        for deployment in found:
            meta = deployment.metadata
            if meta is None or not meta.name or not deployment.spec:
                continue
            if not deployment.spec.replicas:
                continue  # scaled to zero: kept for a rollback, runs nothing
            release = (meta.annotations or {}).get(f"{PREFIX}release", "")
            instances.append(Instance(release, f"deployment/{meta.name}", None, None))
        return sorted(instances, key=lambda instance: instance.address)

    def health(self) -> str | None:
        """None when ``/readyz`` answers 200 where users reach the environment (``url``),
        else through the API server's proxy to the Service."""
        if self.config.url:
            status = _get_status(self.config.url.rstrip("/") + "/readyz", 5.0)
            if status == 200:
                return None
            shown = self.config.url
            return f"{shown}/readyz answered {status}" if status else f"{shown} does not answer"
        status, answer = self._through_service(self.base, "GET", "/readyz", None)
        if status == 200:
            return None
        text = " ".join(answer.decode(errors="replace").split())[:160]
        return f"service/{self.base} in {self.namespace}: /readyz answered {status}: {text}"

    def stop(self, instance: Instance) -> None:
        """Scale the slot to zero replicas (pods end after their grace period); the
        Deployment stays, with its release, for a rollback."""
        self._scale(_deployment_name(instance), 0)

    def sweep(self, keep: Instance | Sequence[Instance] | None) -> list[str]:
        """Scale to zero every slot but ``keep``'s: what a crash left running."""
        kept = [keep] if isinstance(keep, Instance) else list(keep or ())
        addresses = {instance.address for instance in kept}
        stopped = []
        for instance in self.instances():
            if instance.address in addresses:
                continue
            self.stop(instance)
            stopped.append(f"scaled {instance.address} ({instance.release}) to 0 replicas")
        return stopped

    def down(self) -> bool:
        """Delete the environment's Service, Deployments and preview Services."""
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Service

        deleted = False
        objects: list[tuple[Any, str]] = [(Service, self.base)]
        for slot in SLOTS:
            objects += [(Deployment, f"{self.base}-{slot}"), (Service, f"{self.base}-{slot}")]
        for kind, name in objects:
            with api_errors(self.access, f"deleting {kind.__name__.lower()}/{name}"):
                try:
                    self.access.client.delete(kind, name, namespace=self.namespace)
                    deleted = True
                except ApiError as exc:
                    if exc.status.code != 404:
                        raise
        return deleted

    def log_tail(self, instance: Instance, lines: int = 12) -> list[str]:
        """The last lines of the slot's first pod (the kubelet's log), else what its pods'
        status says."""
        import httpx2
        from lightkube import ApiError

        pods = self._pods(_deployment_name(instance))
        for pod in pods[:1]:
            name = pod.metadata.name if pod.metadata else None
            if not name:
                continue
            try:
                found = list(
                    self.access.client.log(name, namespace=self.namespace, tail_lines=lines)
                )
            except (ApiError, httpx2.HTTPError):
                break
            return [line.rstrip("\n") for line in found if line.strip()][-lines:]
        return [_pod_state(pod) for pod in pods[:lines]]

    # ------------------------------------------------------------------ status

    def observe(self) -> ClusterState:
        """What the cluster runs now for `relman status`; ``problem`` set when it cannot be
        read (quickly: status does not wait on a cluster)."""
        from lightkube.resources.apps_v1 import Deployment

        from core.errors import ReleaseError

        try:
            slot = self._live_slot()
            if slot is None:
                return ClusterState(None, None, 0, 0, None)
            name = f"{self.base}-{slot}"
            with api_errors(self.access, f"reading deployment/{name}"):
                deployment = _get_or_none(self.access, Deployment, name, self.namespace)
        except ReleaseError as exc:
            return ClusterState(None, None, 0, 0, None, str(exc))
        if deployment is None:
            return ClusterState(None, None, 0, 0, name)
        meta = deployment.metadata
        spec = deployment.spec
        containers = spec.template.spec.containers if spec and spec.template.spec else []
        return ClusterState(
            (meta.annotations or {}).get(f"{PREFIX}release") if meta else None,
            containers[0].image if containers else None,
            (deployment.status.readyReplicas or 0) if deployment.status else 0,
            (spec.replicas or 0) if spec else 0,
            name,
        )

    # ------------------------------------------------------------------ helpers

    def _live_slot(self) -> str | None:
        """The slot the Service selects; None when there is no Service (or it selects
        something else than a slot of relman's)."""
        service = self._get_service()
        if service is None or service.spec is None:
            return None
        slot = (service.spec.selector or {}).get(SLOT_LABEL)
        return slot if slot in SLOTS else None

    def _idle_slot(self) -> str:
        """The slot the Service does not select (blue when there is no Service yet)."""
        return "green" if self._live_slot() == "blue" else "blue"

    def _get_service(self) -> Any:
        from lightkube.resources.core_v1 import Service

        with api_errors(self.access, f"reading service/{self.base}"):
            return _get_or_none(self.access, Service, self.base, self.namespace)

    def _pods(self, deployment: str) -> list[Any]:
        """The pods of ``deployment`` (by its slot's labels), by name."""
        from lightkube.resources.core_v1 import Pod

        slot = deployment.rsplit("-", 1)[-1]
        pods = self._list(
            Pod,
            {INSTANCE_LABEL: self.base, SLOT_LABEL: slot},
            f"listing the pods of deployment/{deployment}",
        )
        live = [pod for pod in pods if pod.metadata and not pod.metadata.deletionTimestamp]
        return sorted(live, key=lambda pod: pod.metadata.name or "")

    def _list(self, kind: Any, labels: dict[str, Any], doing: str) -> list[Any]:
        """The objects of ``kind`` in the namespace that carry ``labels``."""
        with api_errors(self.access, doing):
            return list(self.access.client.list(kind, namespace=self.namespace, labels=labels))

    def _pod_failure(self, pod: Any) -> str | None:
        """Why ``pod`` will not become ready by itself, with what to do; None while it
        may."""
        name = pod.metadata.name
        for status in (pod.status.containerStatuses if pod.status else None) or []:
            waiting = status.state.waiting if status.state else None
            reason = waiting.reason if waiting else None
            message = " ".join(((waiting.message if waiting else None) or "").split())
            if reason in PULL_FAILURES:
                return (
                    f"pod {name} cannot pull image {status.image} ({reason}"
                    + (f": {message}" if message else "")
                    + "); push the image to the registry (`relman build --image`), or fix "
                    f"image_registry or image_pull_secret in [environments.{self.env}.kubernetes]"
                )
            if reason in CONFIG_FAILURES:
                return (
                    f"pod {name} cannot start its container ({reason}: {message}); fix what "
                    f"it names in the namespace {self.namespace}"
                )
            if reason == "CrashLoopBackOff":
                last = status.lastState.terminated if status.lastState else None
                why = f"exit code {last.exitCode}" if last else "crashing"
                return (
                    f"pod {name} crashes on start ({why}, {status.restartCount} restarts, "
                    f"CrashLoopBackOff); see its log: kubectl logs -n {self.namespace} {name}"
                )
        return None

    def _deployment(
        self, slot: str, release: str, image: str, bento: str, provenance: Provenance
    ) -> dict[str, Any]:
        from core.build.bento_store import LABEL_PREFIX, find_bento

        found = find_bento(self.service, release)
        lineage = found.labels if found else {}
        version = provenance.version or lineage.get(f"{LABEL_PREFIX}version")
        described = {
            "release": release,
            "version": version,
            "bento": bento,
            "git-commit": provenance.git_commit or lineage.get(f"{LABEL_PREFIX}git_commit"),
            "model-md5": lineage.get(f"{LABEL_PREFIX}model_md5"),
            "data-md5": lineage.get(f"{LABEL_PREFIX}data_md5"),
        }
        pod_annotations = {PREFIX + key: value for key, value in described.items() if value}
        annotations = dict(pod_annotations)
        if provenance.run is not None:
            annotations[f"{PREFIX}run"] = str(provenance.run)
        if provenance.promotion is not None:
            annotations[f"{PREFIX}promotion"] = str(provenance.promotion)
        selector = self._selector(slot)
        labels = {
            **selector,
            MANAGED_LABEL: FIELD_MANAGER,
            ENV_LABEL: self.env,
            RELEASE_LABEL: release,
        }
        if version and _LABEL_VALUE.match(version):
            labels[VERSION_LABEL] = version
        container: dict[str, Any] = {
            "name": self.service.replace("_", "-"),
            "image": image,
            "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
            "readinessProbe": {
                "httpGet": {"path": "/readyz", "port": PORT_NAME},
                "periodSeconds": 2,
                "failureThreshold": 3,
            },
            "livenessProbe": {
                "httpGet": {"path": "/livez", "port": PORT_NAME},
                "initialDelaySeconds": 30,
                "periodSeconds": 10,
                "failureThreshold": 6,
            },
        }
        resources = {
            key: value
            for key, value in (
                ("cpu", self.config.resources.cpu),
                ("memory", self.config.resources.memory),
            )
            if value
        }
        if resources:
            container["resources"] = {"requests": resources, "limits": resources}
        pod_spec: dict[str, Any] = {
            "containers": [container],
            "terminationGracePeriodSeconds": self.config.termination_grace_seconds,
        }
        if self.config.image_pull_secret:
            pod_spec["imagePullSecrets"] = [{"name": self.config.image_pull_secret}]
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": f"{self.base}-{slot}",
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
            },
            "spec": {
                "replicas": self.config.replicas,
                "revisionHistoryLimit": 2,
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": labels, "annotations": pod_annotations},
                    "spec": pod_spec,
                },
            },
        }

    def _selector(self, slot: str) -> dict[str, str]:
        return {NAME_LABEL: self.service, INSTANCE_LABEL: self.base, SLOT_LABEL: slot}

    def _service(self, slot: str, release: str) -> dict[str, Any]:
        """The environment's Service, selecting ``slot``."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.base,
                "namespace": self.namespace,
                "labels": {
                    NAME_LABEL: self.service,
                    INSTANCE_LABEL: self.base,
                    MANAGED_LABEL: FIELD_MANAGER,
                    ENV_LABEL: self.env,
                },
                "annotations": {f"{PREFIX}release": release, f"{PREFIX}slot": slot},
            },
            "spec": {
                "selector": self._selector(slot),
                "ports": [
                    {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
                ],
            },
        }

    def _preview_service(self, slot: str) -> dict[str, Any]:
        """The Service that reaches ``slot``'s pods alone, for validating them."""
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{self.base}-{slot}",
                "namespace": self.namespace,
                "labels": {
                    NAME_LABEL: self.service,
                    INSTANCE_LABEL: f"{self.base}-preview",
                    MANAGED_LABEL: FIELD_MANAGER,
                    ENV_LABEL: self.env,
                    SLOT_LABEL: slot,
                },
            },
            "spec": {
                "selector": self._selector(slot),
                "ports": [
                    {"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
                ],
            },
        }

    def _apply(self, manifest: dict[str, Any], doing: str) -> None:
        from lightkube import codecs

        resource = codecs.from_dict(manifest)
        with api_errors(self.access, doing):
            self.access.client.apply(resource, field_manager=FIELD_MANAGER, force=True)

    def _scale(self, name: str, replicas: int) -> None:
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.types import PatchType

        with api_errors(self.access, f"scaling deployment/{name} to {replicas}"):
            try:
                self.access.client.patch(
                    Deployment,
                    name,
                    {"spec": {"replicas": replicas}},
                    namespace=self.namespace,
                    patch_type=PatchType.MERGE,
                    field_manager=FIELD_MANAGER,
                )
            except ApiError as exc:
                if exc.status.code != 404:
                    raise

    def _await_endpoints(self, service: str, deployment: str, since: str) -> None:
        """Until ``service``'s ready endpoints are the pods of ``deployment`` alone;
        InfraError after SWITCH_TIMEOUT."""
        deadline = time.monotonic() + SWITCH_TIMEOUT
        while not self._endpoints_on(service, deployment):
            if time.monotonic() >= deadline:
                raise InfraError(
                    f"service/{service} in {self.namespace} does not reach the pods of "
                    f"deployment/{deployment} {SWITCH_TIMEOUT:g} s {since} (endpoints not "
                    "updated: is the controller manager running?)"
                )
            time.sleep(POLL)

    def _endpoints_on(self, service: str, deployment: str) -> bool:
        """Whether ``service``'s ready endpoints are pods of ``deployment`` alone."""
        from lightkube.resources.core_v1 import Endpoints

        with api_errors(self.access, f"reading endpoints/{service}"):
            endpoints = _get_or_none(self.access, Endpoints, service, self.namespace)
        if endpoints is None:
            return False
        names = [
            address.targetRef.name if address.targetRef else ""
            for subset in endpoints.subsets or []
            for address in subset.addresses or []
        ]
        return bool(names) and all(name.startswith(f"{deployment}-") for name in names)

    def _through_service(
        self, name: str, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes]:
        """``method path`` to service ``name`` through the API server's service proxy."""
        import httpx2

        proxy = (
            f"/api/v1/namespaces/{self.namespace}/services/"
            f"{urllib.parse.quote(name)}:{PORT_NAME}/proxy{path}"
        )
        headers = {"Content-Type": "application/json"} if body is not None else {}
        try:
            response = self.access.http.request(
                method, proxy, content=body, headers=headers, timeout=30.0
            )
        except httpx2.HTTPError as exc:
            raise InfraError(
                f"{method} {path} through service/{name} in {self.access.where} failed: "
                f"{' '.join(str(exc).split()) or type(exc).__name__}"
            ) from exc
        if response.status_code == 403 and _is_status(response):
            raise InfraError(
                f"RBAC forbids the service proxy of service/{name} in {self.access.where} "
                "(services/proxy); grant it, or set url in "
                f"[environments.{self.env}.kubernetes] (docs/targets.md, RBAC)"
            )
        return response.status_code, response.content


def object_name(service: str, env: str) -> str:
    """``SERVICE-ENV`` as a Kubernetes name (a DNS label, with room for ``-green``)."""
    name = f"{service}-{env}".replace("_", "-")
    if len(name) <= 56:
        return name
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[:49].rstrip('-')}-{digest}"


def _deployment_name(instance: Instance) -> str:
    return instance.address.removeprefix("deployment/")


def _get_or_none(access: KubeAccess, kind: Any, name: str, namespace: str) -> Any:
    from lightkube import ApiError

    try:
        return access.client.get(kind, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404 and not namespace_gone(exc.status, namespace):
            return None
        raise


def _rolled_out(deployment: Any) -> bool:
    """kubectl's rollout status: the controller saw this spec, every replica is updated,
    available and ready, and no old replica is left."""
    meta, spec, status = deployment.metadata, deployment.spec, deployment.status
    if status is None or spec is None or meta is None:
        return False
    wanted = spec.replicas if spec.replicas is not None else 1
    return (
        (status.observedGeneration or 0) >= (meta.generation or 0)
        and (status.updatedReplicas or 0) == wanted
        and (status.replicas or 0) == wanted
        and (status.availableReplicas or 0) == wanted
        and (status.readyReplicas or 0) == wanted
    )


def _failed_condition(deployment: Any) -> str | None:
    """A Deployment condition that says its rollout will not go on by itself."""
    for condition in (deployment.status.conditions if deployment.status else None) or []:
        if condition.type == "ReplicaFailure" and condition.status == "True":
            return f"{condition.reason}: {condition.message}"
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            return f"{condition.reason}: {condition.message}"
    return None


def _pod_state(pod: Any) -> str:
    """``pod NAME: Running, not ready`` / ``pod NAME: Pending (Unschedulable: ...)``."""
    name = pod.metadata.name if pod.metadata else "?"
    status = pod.status
    if status is None:
        return f"pod {name}: no status yet"
    for container in status.containerStatuses or []:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason:
            return f"pod {name}: {status.phase}, waiting ({waiting.reason})"
        if container.state and container.state.running and not container.ready:
            return f"pod {name}: {status.phase}, not ready (readiness probe failing)"
    for condition in status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"pod {name}: {status.phase} ({condition.reason}: {condition.message})"
    return f"pod {name}: {status.phase or 'Pending'}"


def _is_status(response: Any) -> bool:
    try:
        return bool(json.loads(response.content).get("kind") == "Status")
    except (ValueError, AttributeError):
        return False


def _get_status(url: str, timeout: float) -> int | None:
    parts = urllib.parse.urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    conn = connection_class(parts.netloc, timeout=timeout)
    try:
        conn.request("GET", parts.path or "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()

"""A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and
kube-scheduler on free loopback ports, and a kubelet played by the test.

The binaries are built once by ``.ci/k8s-control-plane`` (Debian's ``kubernetes`` source
package, 1.20; ``./dev test`` runs it as root, as CI does) and ``etcd`` is Debian's
``etcd-server``; where they are missing, the tests that need them are skipped with one line
saying so (``needs_cluster``). The API server authenticates with a token file (an admin in
``system:masters``; the controller manager and scheduler likewise) and service-account tokens
(a key pair made here), authorizes with RBAC, and serves TLS with a CA made here: a
kubeconfig of the tests verifies it. Everything is ready when its own health endpoint says
so (no fixed sleeps) and stopped by pid.

There is no kubelet: :class:`Kubelet` plays it in a thread. It registers a Node (no taint),
and for each pod bound to it "pulls" the image (``runtime`` says what an image runs, or None
when it cannot be pulled: the pod then waits in ErrImagePull / ImagePullBackOff), gives the
pod an address of its own (a /32 on ``lo``: Endpoints refuse 127.0.0.1), starts the program
there on the container's port, probes its readiness as the pod's readinessProbe says and
sets the pod Ready, reports a program that exits (CrashLoopBackOff) and, when a pod is
deleted, stops the program and confirms the deletion. The API server's service proxy then
reaches a real process through a real Service. Giving addresses needs root (``ip addr``).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import os
import pwd
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.host.processes import end_child
from tests.ports import worker_ports
from tests.waiting import wait_for

BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
READY_WITHIN = 120.0  # seconds; about 10 on an idle machine
NODE = "relman-test-node"
CONTAINER_PORT = 3000


def control_plane_bin() -> Path | None:
    """Where .ci/k8s-control-plane put the binaries, if it did: the folder it printed
    (``./dev test`` passes it as RELMAN_K8S_BIN), else where it puts them."""
    candidates = []
    if os.environ.get("RELMAN_K8S_BIN"):
        candidates.append(Path(os.environ["RELMAN_K8S_BIN"]))
    if os.environ.get("RELMAN_K8S_CACHE"):
        candidates.append(Path(os.environ["RELMAN_K8S_CACHE"]) / "bin")
    candidates.append(Path("/var/cache/relman/kubernetes/bin"))
    # The real home: tests run with HOME pointing at a sandbox.
    candidates.append(Path(pwd.getpwuid(os.getuid()).pw_dir) / ".cache/relman/kubernetes/bin")
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in BINARIES):
            return folder
    return None


def _why_not() -> str | None:
    if control_plane_bin() is None:
        return (
            "needs the Kubernetes control plane (kube-apiserver, kube-controller-manager, "
            "kube-scheduler): run .ci/k8s-control-plane once (as root; ./dev test does)"
        )
    if shutil.which("etcd") is None:
        return "needs etcd (apt-get install etcd-server; .ci/k8s-control-plane installs it)"
    if shutil.which("openssl") is None:
        return "needs openssl to make the test cluster's certificates"
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return "needs root and ip(8) to give the test pods addresses of their own on lo"
    return None


WHY_NOT = _why_not()
needs_cluster = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


# ------------------------------------------------------------------------------ processes


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, size: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        end_child(self.process, 20.0)


def _start(
    name: str, command: list[str], folder: Path, env: dict[str, str] | None = None
) -> Process:
    log = folder / f"{name}.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    return Process(name, process, log)


def _https_status(port: int, path: str, token: str | None, context: ssl.SSLContext) -> int | None:
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=2, context=context)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def _http_ok(port: int, path: str) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _until(process: Process, ready: Callable[[], bool], what: str) -> None:
    def check() -> bool:
        if process.process.poll() is not None:
            said = process.tail()
            taken = "address already in use" in said
            raise (PortTaken if taken else AssertionError)(
                f"{process.name} exited on start: {said}"
            )
        return ready()

    wait_for(check, what, timeout=READY_WITHIN, poll=0.05)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(folder: Path) -> None:
    """A CA, the API server's certificate (127.0.0.1, localhost) and the service accounts'
    key pair, in ``folder``."""
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=relman-test-ca",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
        cwd=folder,
    )
    (folder / "san.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,IP:10.96.0.1\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        "3",
        "-extfile",
        "san.ext",
        cwd=folder,
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=folder)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=folder)


def write_kubeconfig(
    path: Path, server: str, ca: Path, users: dict[str, str], current: str | None = None
) -> Path:
    """A kubeconfig with one cluster and a context per user (``{name: token}``), each
    context named as its user."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "test", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": name, "user": {"token": token}} for name, token in users.items()],
        "contexts": [
            {"name": name, "context": {"cluster": "test", "user": name}} for name in users
        ],
        "current-context": current or next(iter(users)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


# ------------------------------------------------------------------------------ the stack


@dataclass
class Cluster:
    """A started control plane and its test kubelet."""

    folder: Path
    server: str
    ca: Path
    admin_token: str
    admin_kubeconfig: Path
    processes: list[Process]
    kubelet: Kubelet
    started_in: float  # seconds from the first process to everything ready

    def client(self, namespace: str = "default") -> Any:
        return admin_client(self.admin_kubeconfig, namespace)

    def create_namespace(self, name: str) -> None:
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import Namespace, ServiceAccount

        client = self.client()
        client.create(Namespace(metadata=ObjectMeta(name=name)))
        # Pods can be created once the namespace has its default service account.
        wait_for(
            lambda: _exists(client, ServiceAccount, "default", name),
            f"the default service account of namespace {name}",
        )

    def service_account_token(self, namespace: str, name: str, rules: list[dict[str, Any]]) -> str:
        """A service account bound to a Role with ``rules`` in ``namespace``; its token."""
        from lightkube import codecs
        from lightkube.resources.core_v1 import Secret, ServiceAccount

        client = self.client(namespace)
        for manifest in (
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ):
            client.apply(codecs.from_dict(manifest), field_manager="tests", force=True)

        def token() -> str | None:
            account = client.get(ServiceAccount, name, namespace=namespace)
            for ref in account.secrets or []:
                secret = client.get(Secret, ref.name, namespace=namespace)
                if secret.data and secret.data.get("token"):
                    import base64

                    return base64.b64decode(secret.data["token"]).decode()
            return None

        return wait_for(token, f"the token of service account {namespace}/{name}")

    def through_service(
        self, namespace: str, service: str, path: str, body: bytes | None = None
    ) -> tuple[int, bytes]:
        """A request to ``service`` (port ``http``) through the API server's service proxy,
        as admin: POST with ``body``, else GET."""
        port = int(self.server.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
        try:
            headers = {"Authorization": f"Bearer {self.admin_token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            proxy = f"/api/v1/namespaces/{namespace}/services/{service}:http/proxy{path}"
            conn.request("POST" if body is not None else "GET", proxy, body, headers)
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def kubeconfig(self, path: Path, users: dict[str, str], current: str | None = None) -> Path:
        return write_kubeconfig(path, self.server, self.ca, users, current)

    def stop(self) -> None:
        self.kubelet.stop()
        for process in reversed(self.processes):
            process.stop()


def admin_client(kubeconfig: Path, namespace: str = "default") -> Any:
    from lightkube import Client, KubeConfig

    config = KubeConfig.from_file(kubeconfig)
    return Client(config=config, namespace=namespace, field_manager="tests")


def _exists(client: Any, kind: Any, name: str, namespace: str) -> bool:
    from lightkube import ApiError

    try:
        client.get(kind, name, namespace=namespace)
        return True
    except ApiError:
        return False


class PortTaken(AssertionError):
    """A process of the control plane found its port taken (by a test run beside this one
    between the port's choice and its bind): started again on other ports."""


@contextmanager
def running_cluster(folder: Path, runtime: Runtime) -> Iterator[Cluster]:
    """The control plane and a kubelet running ``runtime``'s programs; stopped on exit."""
    binaries = control_plane_bin()
    assert binaries is not None, WHY_NOT
    for attempt in range(3):
        try:
            cluster = _started_cluster(folder / f"attempt-{attempt}", runtime, binaries)
            break
        except PortTaken:
            if attempt == 2:
                raise
    try:
        yield cluster
    finally:
        cluster.stop()


def _started_cluster(folder: Path, runtime: Runtime, binaries: Path) -> Cluster:
    """Everything started and ready; what was started is stopped again on a failure."""
    folder.mkdir(parents=True, exist_ok=True)
    _certificates(folder)
    etcd_port, peer_port, api_port, cm_port, sched_port = worker_ports(5)
    tokens = {name: os.urandom(16).hex() for name in ("admin", "controller", "scheduler")}
    (folder / "tokens.csv").write_text(
        f'{tokens["admin"]},admin,1,"system:masters"\n'
        f'{tokens["controller"]},system:kube-controller-manager,2,"system:masters"\n'
        f'{tokens["scheduler"]},system:kube-scheduler,3,"system:masters"\n'
    )
    server = f"https://127.0.0.1:{api_port}"
    ca = folder / "ca.crt"
    admin = write_kubeconfig(folder / "admin.kubeconfig", server, ca, {"admin": tokens["admin"]})
    for name in ("controller", "scheduler"):
        write_kubeconfig(folder / f"{name}.kubeconfig", server, ca, {name: tokens[name]})
    processes: list[Process] = []
    kubelet: Kubelet | None = None
    started = time.monotonic()
    try:
        etcd = _start(
            "etcd",
            [
                "etcd",
                "--name=default",
                f"--data-dir={folder / 'etcd'}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            ],
            folder,
        )
        processes.append(etcd)
        _until(etcd, lambda: _http_ok(etcd_port, "/health"), "etcd's /health")
        apiserver = _start(
            "kube-apiserver",
            [
                str(binaries / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--insecure-port=0",
                f"--tls-cert-file={folder / 'apiserver.crt'}",
                f"--tls-private-key-file={folder / 'apiserver.key'}",
                f"--client-ca-file={ca}",
                f"--token-auth-file={folder / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={folder / 'sa.pub'}",
                f"--service-account-signing-key-file={folder / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=false",
                "--profiling=false",
                f"--cert-dir={folder / 'certs'}",
            ],
            folder,
        )
        processes.append(apiserver)
        context = ssl.create_default_context(cafile=str(ca))
        _until(
            apiserver,
            lambda: _https_status(api_port, "/readyz", tokens["admin"], context) == 200,
            "kube-apiserver's /readyz",
        )
        controller = _start(
            "kube-controller-manager",
            [
                str(binaries / "kube-controller-manager"),
                f"--kubeconfig={folder / 'controller.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={cm_port}",
                "--port=0",
                "--leader-elect=false",
                "--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle",
                f"--service-account-private-key-file={folder / 'sa.key'}",
                f"--root-ca-file={ca}",
                "--use-service-account-credentials=false",
                "--profiling=false",
            ],
            folder,
        )
        processes.append(controller)
        scheduler = _start(
            "kube-scheduler",
            [
                str(binaries / "kube-scheduler"),
                f"--kubeconfig={folder / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={sched_port}",
                "--port=0",
                "--leader-elect=false",
                "--profiling=false",
            ],
            folder,
        )
        processes.append(scheduler)
        unverified = ssl._create_unverified_context()  # their own self-signed serving certs
        for process, port in ((controller, cm_port), (scheduler, sched_port)):
            _until(
                process,
                lambda port=port: _https_status(port, "/healthz", None, unverified) == 200,  # type: ignore[misc]
                f"{process.name}'s /healthz",
            )
        client = admin_client(admin)
        kubelet = Kubelet(client, runtime, folder / "pods")
        kubelet.start()
        cluster = Cluster(folder, server, ca, tokens["admin"], admin, processes, kubelet, 0.0)
        from lightkube.resources.core_v1 import ServiceAccount

        wait_for(
            lambda: _exists(client, ServiceAccount, "default", "default"),
            "the controller manager to make the default service account",
            timeout=READY_WITHIN,
        )
        cluster.started_in = time.monotonic() - started
    except BaseException:
        if kubelet is not None:
            kubelet.stop()
        for process in reversed(processes):
            process.stop()
        raise
    return cluster


# ------------------------------------------------------------------------------ the kubelet

# What an image runs: ``runtime(image, address, port, folder)`` gives the command of a
# program that serves on ``address:port``, or None when the image cannot be pulled.
Runtime = Callable[[str, str, int, Path], list[str] | None]


def app_runtime(registries: tuple[str, ...] = ("registry.relman.test",)) -> Runtime:
    """Images ``REGISTRY/relman/NAME:TAG`` of ``registries`` run tests/k8s_app.py: a tag
    starting with ``unready`` never answers ready, one starting with ``crash`` exits."""

    def run(image: str, address: str, port: int, folder: Path) -> list[str] | None:
        registry, _, rest = image.partition("/")
        if registry not in registries or ":" not in rest:
            return None
        tag = rest.rpartition(":")[2]
        mode = (
            "unready"
            if tag.startswith("unready")
            else "crash"
            if tag.startswith("crash")
            else "ready"
        )
        return [
            sys.executable,
            str(Path(__file__).with_name("k8s_app.py")),
            "--host",
            address,
            "--port",
            str(port),
            "--mode",
            mode,
            "--name",
            tag,
        ]

    return run


def bento_runtime(registries: tuple[str, ...] = ("registry.relman.test",)) -> Runtime:
    """Images ``REGISTRY/relman/SERVICE:RELEASE`` of ``registries`` run the release's Bento
    from the BentoML store (``bentoml serve``): what `relman build --image` puts in them."""

    def run(image: str, address: str, port: int, folder: Path) -> list[str] | None:
        from core.build.bento_store import find_bento

        registry, _, rest = image.partition("/")
        path, _, release = rest.rpartition(":")
        if registry not in registries or not path.startswith("relman/"):
            return None
        bento = find_bento(path.removeprefix("relman/"), release)
        if bento is None:
            return None
        return [
            sys.executable,
            "-m",
            "bentoml",
            "serve",
            bento.tag,
            "--host",
            address,
            "--port",
            str(port),
        ]

    return run


def pod_runtime(registries: tuple[str, ...] = ("registry.relman.test",)) -> Runtime:
    """A release's Bento where the BentoML store has one for the image, else
    :func:`app_runtime`'s test server."""
    bentos, apps = bento_runtime(registries), app_runtime(registries)

    def run(image: str, address: str, port: int, folder: Path) -> list[str] | None:
        return bentos(image, address, port, folder) or apps(image, address, port, folder)

    return run


class AddressPool:
    """Addresses for pods: /32s added to ``lo`` (Endpoints refuse 127.0.0.1), from a /24
    of 10.244.0.0/16 that no other address of this machine is in; removed when released."""

    def __init__(self) -> None:
        taken = subprocess.run(
            ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
        ).stdout
        third = 1 + os.getpid() % 250
        while f"10.244.{third}." in taken:
            third = 1 + (third + 1) % 250
        self.network = ipaddress.ip_network(f"10.244.{third}.0/24")
        self.free = [str(host) for host in list(self.network.hosts())[1:]]
        self.used: set[str] = set()
        self.lock = threading.Lock()

    def take(self) -> str:
        with self.lock:
            address = self.free.pop(0)
            self.used.add(address)
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True)
        return address

    def give_back(self, address: str) -> None:
        with self.lock:
            if address not in self.used:
                return
            self.used.discard(address)
            self.free.append(address)
        subprocess.run(
            ["ip", "addr", "del", f"{address}/32", "dev", "lo"], check=False, capture_output=True
        )

    def release_all(self) -> None:
        for address in list(self.used):
            self.give_back(address)


@dataclass
class PodRun:
    """A pod the test kubelet runs: its program, address and what it last reported."""

    namespace: str
    name: str
    uid: str
    image: str
    address: str | None = None
    process: subprocess.Popen[bytes] | None = None
    ready: bool = False
    reported: str = ""
    probe: dict[str, Any] = field(default_factory=dict)
    last_probe: float = 0.0


class Kubelet:
    """The kubelet of node ``relman-test-node``, played in a thread (see the module's
    docstring); ``problems`` collects what it could not do, for a failing test to show."""

    def __init__(self, client: Any, runtime: Runtime, folder: Path) -> None:
        self.client = client
        self.runtime = runtime
        self.folder = folder
        self.addresses = AddressPool()
        self.pods: dict[str, PodRun] = {}
        self.problems: list[str] = []
        self.started: list[str] = []  # "namespace/pod image" of every program started
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="test-kubelet", daemon=True)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._register_node()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        for run in list(self.pods.values()):
            self._end(run)
        self.addresses.release_all()

    # ---------------------------------------------------------------- node

    def _register_node(self) -> None:
        from lightkube import codecs
        from lightkube.resources.core_v1 import Node
        from lightkube.types import PatchType

        self.client.create(
            codecs.from_dict(
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {"name": NODE, "labels": {"kubernetes.io/hostname": NODE}},
                }
            )
        )
        now = _now()
        self.client.patch(
            Node.Status,
            NODE,
            {
                "status": {
                    "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "allocatable": {"cpu": "16", "memory": "64Gi", "pods": "110"},
                    "addresses": [{"type": "Hostname", "address": NODE}],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "played by the test",
                            "lastHeartbeatTime": now,
                            "lastTransitionTime": now,
                        }
                    ],
                    "nodeInfo": {
                        "machineID": "relman",
                        "systemUUID": "relman",
                        "bootID": "relman",
                        "kernelVersion": "",
                        "osImage": "test",
                        "containerRuntimeVersion": "test://1",
                        "kubeletVersion": "v1.20.0",
                        "kubeProxyVersion": "v1.20.0",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                    },
                }
            },
            patch_type=PatchType.MERGE,
        )
        # The admission plugin taints a new node not-ready; it is ready: no taints.
        self.client.patch(Node, NODE, {"spec": {"taints": None}}, patch_type=PatchType.MERGE)

    # ---------------------------------------------------------------- pods

    def _loop(self) -> None:
        from lightkube.resources.core_v1 import Pod

        while not self._stop.is_set():
            try:
                pods = list(self.client.list(Pod, namespace="*", fields={"spec.nodeName": NODE}))
                seen = set()
                for pod in pods:
                    key = f"{pod.metadata.namespace}/{pod.metadata.name}"
                    seen.add(key)
                    self._sync(key, pod)
                for key in set(self.pods) - seen:  # deleted at once (grace 0) by someone
                    self._end(self.pods.pop(key))
            except Exception as exc:  # the loop goes on; a test shows these when it fails
                if not self._stop.is_set():
                    self.problems.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(0.1)

    def _sync(self, key: str, pod: Any) -> None:
        run = self.pods.get(key)
        if run is not None and run.uid != pod.metadata.uid:
            self._end(self.pods.pop(key))
            run = None
        if pod.metadata.deletionTimestamp:
            if run is not None:
                self._end(self.pods.pop(key))
            self._confirm_deletion(pod)
            return
        if run is None:
            run = self._start_pod(pod)
            self.pods[key] = run
        self._observe(run)

    def _start_pod(self, pod: Any) -> PodRun:
        container = pod.spec.containers[0]
        run = PodRun(pod.metadata.namespace, pod.metadata.name, pod.metadata.uid, container.image)
        probe = container.readinessProbe
        if probe and probe.httpGet:
            port = probe.httpGet.port
            if isinstance(port, str):  # a named port of the container
                port = next(p.containerPort for p in container.ports or [] if p.name == port)
            run.probe = {"path": probe.httpGet.path or "/", "port": int(port)}
        port = (container.ports[0].containerPort if container.ports else None) or CONTAINER_PORT
        workdir = self.folder / f"{run.namespace}-{run.name}"
        workdir.mkdir(parents=True, exist_ok=True)
        address = self.addresses.take()
        run.address = address
        command = self.runtime(run.image, address, int(port), workdir)
        if command is None:
            self.addresses.give_back(address)
            run.address = None
            self._report(run, "pull-failed")
            return run
        with (workdir / "output.log").open("ab") as output:
            run.process = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(f"{run.namespace}/{run.name} {run.image}")
        self._report(run, "running")
        return run

    def _observe(self, run: PodRun) -> None:
        if run.process is None:
            return
        if run.process.poll() is not None:
            if run.reported != "crashed":
                self._report(run, "crashed")
            return
        if not run.probe or time.monotonic() - run.last_probe < 0.5:
            if not run.probe and not run.ready:
                run.ready = True
                self._report(run, "running")
            return
        run.last_probe = time.monotonic()
        ready = _probe(run.address or "", run.probe["port"], run.probe["path"])
        if ready != run.ready:
            run.ready = ready
            self._report(run, "running")

    def _report(self, run: PodRun, state: str) -> None:
        from lightkube.resources.core_v1 import Pod
        from lightkube.types import PatchType

        now = _now()
        name = "main"
        container: dict[str, Any] = {
            "name": name,
            "image": run.image,
            "imageID": "",
            "restartCount": 0,
            "ready": False,
        }
        if state == "pull-failed":
            phase = "Pending"
            container["state"] = {
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{run.image}"',
                }
            }
        elif state == "crashed":
            phase = "Running"
            code = run.process.returncode if run.process else 1
            container["restartCount"] = 1
            container["state"] = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "back-off restarting failed container",
                }
            }
            container["lastState"] = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Error",
                    "startedAt": now,
                    "finishedAt": now,
                }
            }
        else:
            phase = "Running"
            container["ready"] = run.ready
            container["started"] = True
            container["containerID"] = f"test://{run.process.pid if run.process else 0}"
            container["imageID"] = f"test://{run.image}"
            container["state"] = {"running": {"startedAt": now}}
        ready = "True" if run.ready and state == "running" else "False"
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "startTime": now,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                {"type": "Ready", "status": ready, "lastTransitionTime": now},
            ],
            "containerStatuses": [container],
        }
        if run.address:
            status["podIP"] = run.address
            status["podIPs"] = [{"ip": run.address}]
        try:
            pod = self.client.get(Pod, run.name, namespace=run.namespace)
            container["name"] = pod.spec.containers[0].name
            self.client.patch(
                Pod.Status,
                run.name,
                {"status": status},
                namespace=run.namespace,
                patch_type=PatchType.MERGE,
            )
            run.reported = state
        except Exception as exc:  # the pod went away meanwhile
            self.problems.append(f"status of {run.namespace}/{run.name}: {exc}")

    def _end(self, run: PodRun) -> None:
        if run.process is not None:
            end_child(run.process, 20.0)  # BentoML drains on SIGTERM, as in a real pod
        if run.address:
            self.addresses.give_back(run.address)
            run.address = None

    def _confirm_deletion(self, pod: Any) -> None:
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Pod

        with contextlib.suppress(ApiError):
            self.client.delete(
                Pod, pod.metadata.name, namespace=pod.metadata.namespace, grace_period=0
            )


def _probe(address: str, port: int, path: str) -> bool:
    conn = http.client.HTTPConnection(address, port, timeout=1)
    try:
        conn.request("GET", path)
        return 200 <= conn.getresponse().status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------ relman's RBAC

DOCS = Path(__file__).resolve().parents[1] / "docs" / "targets.md"


def documented_role() -> list[dict[str, Any]]:
    """The rules of the Role docs/targets.md tells a cluster's admin to create for relman."""
    import re

    text = DOCS.read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        document = yaml.safe_load(re.sub(r"^ {3}", "", block, flags=re.M))
        if isinstance(document, dict) and document.get("kind") == "Role":
            return list(document["rules"])
    raise AssertionError("docs/targets.md has no Role")


def without(rules: list[dict[str, Any]], resource: str, verb: str) -> list[dict[str, Any]]:
    """``rules`` less ``verb`` on ``resource``."""
    kept = []
    for rule in rules:
        verbs = [v for v in rule["verbs"] if resource not in rule["resources"] or v != verb]
        kept.append({**rule, "verbs": verbs})
    return kept


def cluster_project(root: Path, namespace: str, kubeconfig: Path, **settings: Any) -> Any:
    """A relman project in ``root`` whose service ``app`` has its staging in ``namespace``
    of the test cluster (images of registry.relman.test; ``settings``: more keys of
    [environments.staging.kubernetes], and ``ready_timeout``)."""
    from core.config.model import Project, parse_config

    ready_timeout = settings.pop("ready_timeout", 120)
    settings.setdefault("image_registry", "registry.relman.test")
    lines = "\n".join(
        f"{key} = " + (f'"{value}"' if isinstance(value, str | Path) else str(value).lower())
        for key, value in settings.items()
    )
    text = f"""
[project]
name = "k8s"

[services.app]
bento = "service:App"
model = ["model.pkl"]

[environments.staging]
target = "kubernetes"
ready_timeout = {ready_timeout}

[environments.staging.kubernetes]
namespace = "{namespace}"
kubeconfig = "{kubeconfig}"
{lines}
"""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "relman.toml"
    path.write_text(text)
    return Project(root, path, parse_config(text, path))

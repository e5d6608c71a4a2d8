"""The local target: `bentoml serve` processes (or, with ``runtime = "image"``, the release's
OCI image in podman: core/targets/container_run.py) behind relman's proxy, on this machine.

An environment's folder is ``.relman/envs/SERVICE/ENV/``. Its proxy (:mod:`core.targets.proxy`)
listens on the environment's host and port from relman.toml and routes each request to the
stable instance, or during a rollout a share of them to a canary (or copies to a shadow),
logging each in ``access.log``; each instance is a ``bentoml serve`` of one release's Bento
on a free side port of 127.0.0.1, in ``instances/RELEASE-PORT/`` (working folder,
``serve.log``, ``pid``).
Every process is started detached, in its own session, so it outlives the CLI and the TUI and
is stopped as a group. The instance's pid file is written by the child itself before it
execs bentoml, so even a relman killed right after the fork leaves a process it can find.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from core.config.model import Project
from core.errors import ConfigError, InfraError
from core.host.ports import port_is_free, side_port
from core.host.processes import (
    DEFAULT_GRACE,
    TAG_VARIABLE,
    carries_tag,
    end_processes,
    pid_alive,
    process_table,
    processes_mentioning,
    read_pid,
    stop_tagged,
)
from core.targets.base import Instance, Provenance, SmokeResult

if TYPE_CHECKING:
    from core.targets.proxy_control import ProxyStart, Routing

SIDE_HOST = "127.0.0.1"
LOG_TAIL_LINES = 12
# Instance folders kept after their process stopped, newest first, for their logs.
KEEP_STOPPED = 4
# Lines of a `bentoml serve` log that say the service failed to start (BentoML, uvicorn).
_CRASHED = ("Initializing service error", "Application startup failed")
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")
_LAUNCH = 'echo $$ > pid.tmp && mv pid.tmp pid && exec "$@"'


class LocalTarget:
    def __init__(self, project: Project, service: str, env: str) -> None:
        self.project = project
        self.service = service
        self.env = env
        project.config.require_port(env)
        self.config = project.config.environments[env]
        self.port: int = self.config.port or 0  # set: require_port checked it
        self.folder = project.state_dir / "envs" / service / env
        # The proxy launched while the environment's first instance warms up (see start).
        self._front: ProxyStart | None = None

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    # ------------------------------------------------------------------ instances

    def start(
        self,
        bento: str,
        release: str,
        *,
        log: Callable[[str], None],
        provenance: Provenance | None = None,
    ) -> Instance:
        """Start ``release`` beside what serves: its Bento with `bentoml serve`, or with
        ``runtime = "image"`` its OCI image with `podman run` (core/targets/container_run.py;
        ``bento`` is then only named in instance.json)."""
        if self.config.runtime != "image":  # an image carries its own Python
            python = self.project.python()
            if shutil.which(python) is None and not Path(python).exists():
                raise ConfigError(
                    f"the project's interpreter {python} does not exist; fix "
                    "[project] python in relman.toml"
                )
        port = side_port(SIDE_HOST)
        folder = self.folder / "instances" / f"{release}-{port}"
        folder.mkdir(parents=True, exist_ok=True)
        if self.config.runtime == "image":
            from core.targets.container_run import image_launch

            command, recorded, environ = image_launch(
                self.project, self.service, self.env, release, self.folder, folder, SIDE_HOST, port
            )
            environ[TAG_VARIABLE] = str(folder)
            what = f"{recorded['image']} as container {recorded['container']}"
        else:
            command, environ = self._serve_command(bento, folder, port)
            recorded, what = {}, bento
        (folder / "instance.json").write_text(
            json.dumps(
                {
                    "release": release,
                    "bento": bento,
                    "address": f"{SIDE_HOST}:{port}",
                    "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    **recorded,
                    **_provenance(provenance),
                }
            )
        )
        log(f"starting {what} on {SIDE_HOST}:{port}")
        with (folder / "serve.log").open("ab") as output:
            process = subprocess.Popen(
                ["/bin/sh", "-c", _LAUNCH, "relman-serve", *command],
                cwd=folder,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._launch_front()
        # The shell writes its pid (= the group) at once; wait for it, to hand back a pid.
        deadline = time.monotonic() + 5.0
        while read_pid(folder / "pid") is None and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        return Instance(release, f"{SIDE_HOST}:{port}", process.pid, str(folder / "serve.log"))

    def _serve_command(
        self, bento: str, folder: Path, port: int
    ) -> tuple[list[str], dict[str, str]]:
        """`bentoml serve` of ``bento`` on ``port``, and its environment."""
        python = self.project.python()
        if shutil.which(python) is None and not Path(python).exists():
            raise ConfigError(
                f"the project's interpreter {python} does not exist; fix "
                "[project] python in relman.toml"
            )
        command = [
            python,
            "-m",
            "bentoml",
            "serve",
            bento,
            "--host",
            SIDE_HOST,
            "--port",
            str(port),
        ]
        from core.targets.monitor_log import monitor_environment

        # Tagged (to find every process of it again); its bentoml.monitor logs kept in its
        # own folder, apart from other environments serving the same Bento.
        environ = {
            **os.environ,
            TAG_VARIABLE: str(folder),
            "BENTOML_HOME": str(_instance_home(folder)),
            **monitor_environment(folder / "monitoring", os.environ),
        }
        return command, environ

    def wait_ready(self, instance: Instance, timeout: float) -> float:
        started = time.monotonic()
        deadline = started + timeout
        while True:
            if not pid_alive(instance.pid):
                raise InfraError(
                    f"{self.service} {instance.release} exited while starting in {self.env}: "
                    + self._tail_line(instance)
                )
            # BentoML's server outlives a worker whose service fails to start and retries
            # it every few seconds: the worker's own words are the earliest sign of it.
            if any(marker in line for line in self.log_tail(instance, 40) for marker in _CRASHED):
                raise InfraError(
                    f"{self.service} {instance.release} crashed on start in {self.env}: "
                    + self._tail_line(instance)
                )
            status = _get_status(instance.address, "/readyz", 1.0)
            if status == 200:
                return time.monotonic() - started
            if time.monotonic() >= deadline:
                raise InfraError(
                    f"{self.service} {instance.release} not ready after {timeout:g} s in "
                    f"{self.env} (/readyz: {status or 'no answer'}); raise ready_timeout in "
                    f"[environments.{self.env}] if it is slow: " + self._tail_line(instance)
                )
            time.sleep(0.1)

    def smoke(self, instance: Instance, body: bytes, endpoint: str) -> SmokeResult:
        path = "/" + endpoint.lstrip("/")
        started = time.perf_counter()
        try:
            status, answer = _post(instance.address, path, body, 30.0)
        except (OSError, http.client.HTTPException) as exc:
            raise InfraError(f"smoke request to {path} failed: {exc}") from exc
        latency = (time.perf_counter() - started) * 1000
        if status != 200:
            text = answer.decode(errors="replace").strip().splitlines()[:1]
            raise InfraError(f"smoke request to {path} answered {status}: {' '.join(text)}")
        problem = answer_shape_problem(body, answer)
        if problem:
            raise InfraError(f"smoke request to {path}: {problem}")
        return SmokeResult(latency, f"{path} answered 200 in {latency:.0f} ms")

    @property
    def access_log(self) -> Path:
        """The proxy's access log (rotated to ``access.log.1``)."""
        return self.folder / "access.log"

    def switch(self, instance: Instance) -> None:
        """Everything to ``instance`` (ending a split); the proxy is started if need be."""
        from core.targets.proxy_control import (
            Routing,
            proxy_reads_routing,
            set_routing,
            switch_upstream,
        )

        self._ensure_proxy(routing=False)
        if proxy_reads_routing(self.folder):
            set_routing(self.folder, Routing(instance.address, instance.release))
        else:  # a proxy started by a relman before rollouts: it takes an address alone
            switch_upstream(self.folder, instance.address)

    def split(
        self,
        stable: Instance,
        candidate: Instance,
        weight: int,
        *,
        mode: Literal["canary", "shadow"] = "canary",
        sticky: str | None = None,
    ) -> None:
        """``weight`` % of the requests to ``candidate`` and the rest to ``stable`` (canary),
        or all to ``stable`` and a copy of ``weight`` % to ``candidate`` (shadow)."""
        from core.targets.proxy_control import Routing, set_routing

        routing = Routing(
            stable.address,
            stable.release,
            candidate.address,
            candidate.release,
            weight,
            mode,
            sticky,
        )
        self._ensure_proxy(routing=True)
        set_routing(self.folder, routing)

    def routing(self) -> Routing | None:
        """The routing the environment's proxy has in effect (None: it serves nothing)."""
        from core.targets.proxy_control import current_routing, proxy_pid

        if proxy_pid(self.folder) is None:
            return None
        return current_routing(self.folder)

    def candidate(self) -> Instance | None:
        """The running instance the routing sends canary or shadow traffic to."""
        routing = self.routing()
        if routing is None or routing.canary is None:
            return None
        return next((i for i in self.instances() if i.address == routing.canary), None)

    def _launch_front(self) -> None:
        """Launch the proxy of an environment that has none while its first instance warms
        up, so that the switch finds it listening instead of starting it then (a Python
        start-up, about 0.1 s). It serves 503 until the switch routes it; stopping the
        instance before that ends it again (see :meth:`stop`). A port taken by another
        program is left for the switch to report."""
        from core.targets.proxy_control import proxy_pid, spawn_proxy

        if self._front is not None or proxy_pid(self.folder) is not None:
            return
        if not port_is_free(self.port, self.config.host):
            return
        self._front = spawn_proxy(
            self.folder, self.config.host, self.port, access_log=self.access_log
        )

    def _ensure_proxy(self, *, routing: bool) -> None:
        """Start the environment's proxy unless it runs on the address relman.toml gives
        (and, with ``routing``, is one that applies a Routing)."""
        from core.targets.proxy_control import (
            proxy_pid,
            proxy_reads_routing,
            start_proxy,
            stop_proxy,
        )

        listen = f"{self.config.host}:{self.port}"
        listen_file = self.folder / "proxy.listen"
        if self._front is not None:  # launched while the instance warmed up
            front, self._front = self._front, None
            front.wait()
            listen_file.write_text(listen)
        if proxy_pid(self.folder) is not None and _read(listen_file) != listen:
            stop_proxy(self.folder)  # relman.toml moved the environment to another address
        if routing and proxy_pid(self.folder) is not None and not proxy_reads_routing(self.folder):
            stop_proxy(self.folder)  # started by a relman before rollouts; it finishes requests
        if proxy_pid(self.folder) is None:
            self.check_port()
            start_proxy(
                self.folder,
                self.config.host,
                self.port,
                access_log=self.access_log,
            )
            listen_file.write_text(listen)

    def prepare(self) -> None:
        self.check_port()

    def check_port(self) -> None:
        """InfraError when the environment's port is taken by something other than its own
        proxy on this very address (one left on the old port after relman.toml moved the
        environment does not hold the new one)."""
        from core.targets.proxy_control import proxy_pid

        listen = f"{self.config.host}:{self.port}"
        # No proxy.listen: a relman killed between starting the proxy and writing it; the
        # switch restarts that proxy, so its port counts as ours.
        held = _read(self.folder / "proxy.listen")
        ours = proxy_pid(self.folder) is not None and held in (None, listen)
        if not ours and not port_is_free(self.port, self.config.host):
            raise InfraError(
                f"{self.config.host}:{self.port} ({self.env}) is in use by another "
                f"program; stop it, or change port in [environments.{self.env}] of relman.toml"
            )

    def serving(self) -> Instance | None:
        from core.targets.proxy_control import current_upstream, proxy_pid

        if proxy_pid(self.folder) is None:
            return None
        upstream = current_upstream(self.folder)
        for instance in self.instances():
            if instance.address == upstream:
                return instance
        return None

    def instances(self) -> list[Instance]:
        found = []
        for folder in sorted((self.folder / "instances").glob("*/")):
            instance = _instance_in(folder)
            if instance is not None and carries_tag(instance.pid, str(folder)):
                found.append(instance)
        return found

    def health(self) -> str | None:
        status = _get_status(f"{self.config.host}:{self.port}", "/readyz", 5.0)
        if status == 200:
            return None
        return f"{self.url}/readyz answered {status}" if status else f"{self.url} does not answer"

    def stop(self, instance: Instance) -> None:
        container = _container_of(instance)
        if container:  # the container first: its podman client ends with it
            from core.targets.container_run import stop_container

            stop_container(container, DEFAULT_GRACE)
        stop_tagged(str(_folder_of(instance)), instance.pid)
        if self._front is not None:  # launched for an instance that never got to serve
            front, self._front = self._front, None
            front.cancel()
        self._prune()

    def sweep(self, keep: Instance | Sequence[Instance] | None) -> list[str]:
        """Stop every process of every instance but those of ``keep`` (one, or the stable and
        the candidate of a rollout): orphans of a crash, workers a killed server left behind.
        One line per instance stopped."""
        kept_instances = [keep] if isinstance(keep, Instance) else list(keep or ())
        kept = {str(_folder_of(instance)) for instance in kept_instances}
        from core.targets.container_run import sweep_containers

        # Containers first: a podman client whose container is gone ends by itself.
        stopped = sweep_containers(self.folder, kept)
        # Every process read once, not once per instance folder: the newest stopped ones
        # are kept (KEEP_STOPPED), so each promotion finds several here.
        table = process_table()
        running_tags = {info.tag for info in table if info.tag}
        for folder in sorted((self.folder / "instances").glob("*/")):
            if str(folder) in kept:
                continue
            instance = _instance_in(folder)
            leader = instance.pid if instance else None
            if str(folder) not in running_tags and not carries_tag(leader, str(folder)):
                continue  # nothing of it runs: its processes all carry its tag
            if stop_tagged(str(folder), leader):
                what = f"{instance.release} on {instance.address}" if instance else folder.name
                stopped.append(f"stopped orphan {what}")
        # Folders deleted by hand: their processes still name them (the tag, the --dir).
        lost = [
            pid
            for pid, _ in processes_mentioning(self.folder / "instances", table)
            if not any(carries_tag(pid, folder) for folder in kept)
        ]
        if lost:
            end_processes(lost)
            stopped.append(f"stopped {len(lost)} process(es) of instances whose folder is gone")
        from core.targets.proxy_control import proxy_pid

        if proxy_pid(self.folder) is None:
            marker = f" --dir {self.folder} "
            proxies = [
                pid
                for pid, command in processes_mentioning(self.folder, table)
                if marker in f" {command} "
            ]
            if proxies:
                end_processes(proxies)
                stopped.append(f"stopped a proxy of {self.env} that had lost its pid file")
        self._prune()
        return stopped

    def down(self) -> bool:
        from core.targets.proxy_control import stop_proxy

        stopped = stop_proxy(self.folder)
        return bool(self.sweep(None)) or stopped

    def log_tail(self, instance: Instance, lines: int = LOG_TAIL_LINES) -> list[str]:
        if not instance.log:
            return []
        try:
            text = Path(instance.log).read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]

    # ------------------------------------------------------------------ helpers

    def _tail_line(self, instance: Instance) -> str:
        """The error a person needs from the instance's log: its last exception line if it
        has one, else its last lines; and where the whole log is."""
        tail = self.log_tail(instance, 40)
        errors = [line.strip() for line in tail if _EXCEPTION.match(line.strip())]
        shown = errors[-1] if errors else " | ".join(line.strip() for line in tail[-3:])
        where = f" (log: {instance.log})" if instance.log else ""
        return (shown or "no output") + where

    def _prune(self) -> None:
        """Drop the folders of stopped instances beyond the newest few (their logs)."""
        stopped = [
            folder
            for folder in (self.folder / "instances").glob("*/")
            if not pid_alive(read_pid(folder / "pid"))
        ]
        stopped.sort(key=lambda folder: folder.stat().st_mtime, reverse=True)
        for folder in stopped[KEEP_STOPPED:]:
            shutil.rmtree(folder, ignore_errors=True)


def _provenance(provenance: Provenance | None) -> dict[str, Any]:
    """The run and promotion that started an instance, for instance.json (set ones only)."""
    if provenance is None:
        return {}
    found = {"run": provenance.run, "promotion": provenance.promotion}
    return {key: value for key, value in found.items() if value is not None}


def _instance_home(folder: Path) -> Path:
    """A BentoML home of the instance's own, sharing the real one's Bento and model stores.

    Every `bentoml serve` empties and reuses ``$BENTOML_HOME/prometheus_multiproc_dir`` for
    its metrics: instances sharing a home would wipe and mix each other's counters (a
    promotion's candidate resetting what the live environments report). Only that folder
    (and ``tmp``) is the instance's; everything else links to the real home.
    """
    from core.build.bento_store import bentoml_home

    real = bentoml_home()
    home = folder / "bentoml-home"
    home.mkdir(parents=True, exist_ok=True)
    for entry in ("bentos", "models", "envs"):
        link = home / entry
        (real / entry).mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(real / entry, target_is_directory=True)
    return home


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _folder_of(instance: Instance) -> Path:
    return Path(instance.log).parent if instance.log else Path()


def _container_of(instance: Instance) -> str | None:
    """The container an instance of ``runtime = "image"`` runs in (its instance.json)."""
    try:
        info = json.loads((_folder_of(instance) / "instance.json").read_text())
    except (OSError, ValueError):
        return None
    name = info.get("container") if isinstance(info, dict) else None
    return str(name) if name else None


def _instance_in(folder: Path) -> Instance | None:
    try:
        info = json.loads((folder / "instance.json").read_text())
    except (OSError, ValueError):
        return None
    return Instance(
        str(info.get("release", "")),
        str(info.get("address", "")),
        read_pid(folder / "pid"),
        str(folder / "serve.log"),
    )


def answer_shape_problem(request: bytes, answer: bytes) -> str | None:
    """Why an answer does not fit its request, or None: it must be JSON, and when the request
    sends one list of N rows and the answer is a list, the answer holds N items."""
    try:
        decoded: Any = json.loads(answer)
    except ValueError:
        return "the answer is not JSON: " + answer[:80].decode(errors="replace")
    try:
        sent: Any = json.loads(request)
    except ValueError:
        return None
    lists = (
        [value for value in sent.values() if isinstance(value, list)]
        if isinstance(sent, dict)
        else []
    )
    if len(lists) == 1 and isinstance(decoded, list) and len(decoded) != len(lists[0]):
        return f"sent {len(lists[0])} rows, the answer holds {len(decoded)} items"
    if len(lists) == 1 and not isinstance(decoded, list | dict):
        return f"sent {len(lists[0])} rows, the answer is a single {type(decoded).__name__}"
    return None


def _get_status(address: str, path: str, timeout: float) -> int | None:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):  # nothing there, or not HTTP
        return None
    finally:
        conn.close()


def _post(address: str, path: str, body: bytes, timeout: float) -> tuple[int, bytes]:
    host, _, port = address.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()

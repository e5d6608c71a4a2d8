"""`relman promote --detach`: the promotion, and the rollout it runs, driven by a relman of
its own in the background, so a terminal or a CI step need not stay for the analysis.

The child is ``relman --batch --json promote ...`` in a session of its own, its output in
``.relman/rollouts/SERVICE-ENV.log``. This side returns once the rollout has begun (its row
names the child as driver) or the child has ended (blocked at a gate, say: its document is
the answer). From then on `relman rollout status|pause|resume|abort|promote` steer it like
any rollout, and a killed child is recovered like any killed relman (docs/rollouts.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from core.config.model import Project
from core.errors import InfraError, ReadOnlyError
from core.ledger.releases import open_ledger

STARTED_WITHIN = 1800.0  # gates, suites and a build may come first


def promote_detached(
    project: Project,
    service: str,
    env: str,
    *,
    release: str | None = None,
    strategy: str | None = None,
    force: bool = False,
    read_only: bool = False,
) -> dict[str, Any]:
    """Start the promotion in the background; the document says where it stands."""
    project.config.check_names(service=service, env=env)
    if read_only:
        raise ReadOnlyError(f"read-only mode: promote of {service} to {env} refused")
    with open_ledger(project, read_only=False) as ledger:
        before = ledger.latest_rollout(service, env)
    folder = project.state_dir / "rollouts"
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / f"{service}-{env}.log"
    command = [sys.executable, "-m", "tui", "--project", str(project.root), "--batch", "--json"]
    command += ["promote", service, "--to", env]
    command += ["--release", release] if release else []
    command += ["--strategy", strategy] if strategy else []
    command += ["--force"] if force else []
    answer_path = folder / f"{service}-{env}.json"
    with log_path.open("ab") as log, answer_path.open("wb") as answer:
        offset = log.tell()
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=answer,
            stderr=log,
            cwd=project.root,
            start_new_session=True,
        )
    deadline = time.monotonic() + STARTED_WITHIN
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            said = log_path.read_bytes()[offset:].decode(errors="replace")
            return _finished(answer_path.read_text(errors="replace"), said, code)
        with open_ledger(project, read_only=True) as ledger:
            latest = ledger.latest_rollout(service, env)
        begun = latest is not None and (before is None or latest.id != before.id)
        if begun and latest is not None and latest.pid == child.pid:
            return {
                "ok": True,
                "service": service,
                "env": env,
                "detached": True,
                "pid": child.pid,
                "rollout": latest.id,
                "log": str(log_path),
                "detail": f"{latest.strategy} rollout #{latest.id} driven in the background by "
                f"pid {child.pid}; `relman rollout status {service} --env {env}` follows it",
                "exit_code": 0,
            }
        time.sleep(0.2)
    raise InfraError(
        f"the background promote (pid {child.pid}) did not begin its rollout within "
        f"{STARTED_WITHIN:g} s; see {log_path}"
    )


def _finished(answer: str, said: str, code: int) -> dict[str, Any]:
    """The child's own document when it ended before a rollout began (all at once, or
    stopped by a gate); its exit code stands."""
    try:
        document: dict[str, Any] = json.loads(answer) if answer.strip() else {}
    except ValueError:
        document = {}
    if not document:
        lines = [line for line in said.splitlines() if line.strip()]
        document = {"ok": code == 0, "error": lines[-1] if lines else f"exit code {code}"}
    document["exit_code"] = code
    document["detached"] = False
    return document

"""`relman alerts` and Alertmanager's silences: a silence made with ``POST /api/v2/silences``
in a real Alertmanager for service=iris env=dev shows on iris/dev's firing alert (who, until
when, why) as ``silenced``, not firing, in `relman --json alerts` and its text, and
``--check`` does not count it; a negative matcher silences the other environment too. An
Alertmanager that does not answer costs a bounded wait and one line: the alerts are still
shown, and counted as firing."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config.model import load_project
from core.monitoring.collector_process import metrics_path
from store.metrics.store import MetricStore
from tests.core.test_collector import RELEASE
from tests.core.test_collector import TOML as COLLECTOR_TOML
from tests.ports import worker_ports
from tests.prom_stack import Server, needs_prometheus, running_alertmanager
from tui.cli import run

# iris in dev and prod, told of an Alertmanager.
TOML = (
    COLLECTOR_TOML.replace("[monitoring]", "[environments.prod]\nport = 3102\n\n[monitoring]")
    + 'alertmanager_url = "{url}"\n'
)


def firing_project(root: Path, alertmanager_url: str) -> Path:
    """A project whose metric store holds error_rate firing in iris/dev, latency_p99 firing
    in iris/prod and a resolved alert in iris/dev (no collector runs)."""
    root.mkdir(parents=True)
    (root / "relman.toml").write_text(TOML.format(url=alertmanager_url))
    project = load_project(root)
    now = int(time.time())
    with MetricStore.open(metrics_path(project)) as store:
        old = store.open_alert(
            "latency_p99", "sudden", "iris", "dev", t=now - 7200, state="firing", release=RELEASE
        )
        store.update_alert(old.id, t=now - 3600, state="resolved", detail="p99 80 ms; clear")
        for rule, env, detail in (
            ("error_rate", "dev", "error rate 50.0% > 5.0% for 1 min"),
            ("latency_p99", "prod", "p99 870 ms > 500 ms for 11 min"),
        ):
            store.open_alert(
                rule,
                "sudden",
                "iris",
                env,
                t=now - 120,
                state="firing",
                detail=detail,
                release=RELEASE,
                rollback=f"relman rollback iris --env {env} --reason '{rule}: {detail}'",
            )
    return root


def silence(manager: Server, *matchers: dict[str, Any], by: str = "ada") -> str:
    """A silence of the next hour: its id."""
    now = time.time()
    document = {
        "matchers": list(matchers),
        "startsAt": _iso(now - 60),
        "endsAt": _iso(now + 3600),
        "createdBy": by,
        "comment": "rolling out the fix",
    }
    return str(manager.post("/api/v2/silences", document)["silenceID"])


def matcher(name: str, value: str, *, regex: bool = False, equal: bool = True) -> dict[str, Any]:
    return {"name": name, "value": value, "isRegex": regex, "isEqual": equal}


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def relman_alerts(
    capsys: pytest.CaptureFixture[str], root: Path, *args: str
) -> tuple[int, str, str]:
    """``relman [--json] alerts [--check]`` in this process: exit code, stdout, stderr."""
    capsys.readouterr()
    options = [a for a in args if a != "--check"]
    code = run(["--project", str(root), *options, "alerts", *(a for a in args if a == "--check")])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Server]:
    with running_alertmanager(tmp_path / "am") as started:
        yield started


@needs_prometheus
def test_a_silence_for_iris_dev_shows_silenced_and_is_not_counted_as_firing(
    tmp_path: Path, manager: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    root = firing_project(tmp_path / "shop", manager.url)
    code, out, _ = relman_alerts(capsys, root, "--json")
    before = json.loads(out)
    assert (code, before["firing"], before["silenced"]) == (0, 2, 0)
    assert before["alertmanager"] == {"url": manager.url, "silences": 0, "problem": None}

    made = silence(manager, matcher("service", "iris"), matcher("env", "dev"))
    code, out, _ = relman_alerts(capsys, root, "--json")
    document = json.loads(out)
    assert code == 0
    assert (document["ok"], document["firing"], document["silenced"]) == (False, 1, 1)
    assert document["alertmanager"]["silences"] == 1
    # Firing first, the silenced one after the others; the state itself stays firing.
    shown = [(a["name"], a["env"], a["state"], a.get("silence")) for a in document["alerts"]]
    assert [s[:3] for s in shown] == [
        ("latency_p99", "prod", "firing"),
        ("error_rate", "dev", "firing"),
        ("latency_p99", "dev", "resolved"),
    ]
    assert shown[0][3] is None and shown[2][3] is None
    entry = shown[1][3]
    assert entry is not None
    assert entry["until"].startswith(_iso(time.time() + 3600)[:13])
    assert entry == {
        "id": made,
        "by": "ada",
        "until": entry["until"],
        "comment": "rolling out the fix",
        "matchers": 'service="iris", env="dev"',
    }
    assert relman_alerts(capsys, root, "--json", "--check")[0] == 1  # prod still fires

    code, out, _ = relman_alerts(capsys, root)
    lines = out.splitlines()
    assert lines[0].startswith("firing   latency_p99    iris/prod")
    assert lines[2].startswith("silenced error_rate     iris/dev")
    assert lines[3].startswith("         silenced by ada until ")
    assert lines[3].endswith(': rolling out the fix (service="iris", env="dev")')

    # A negative regular expression covers every other environment of iris: prod too.
    silence(manager, matcher("service", "iris"), matcher("env", "d.*", regex=True, equal=False))
    code, out, _ = relman_alerts(capsys, root, "--json", "--check")
    document = json.loads(out)
    assert (code, document["ok"], document["firing"], document["silenced"]) == (0, True, 0, 2)


def test_an_alertmanager_that_does_not_answer_leaves_the_silences_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Listening, never answering: the connection is taken, the request waits.
    (port,) = worker_ports(1)
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", port))
        deaf.listen(8)
        url = f"http://127.0.0.1:{port}"
        root = firing_project(tmp_path / "shop", url)
        code, out, _ = relman_alerts(capsys, root, "--json", "--check")
        text = relman_alerts(capsys, root)
    document = json.loads(out)
    assert code == 1
    assert (document["firing"], document["silenced"]) == (2, 0)
    assert len(document["alerts"]) == 3
    line = f"silences unknown: alertmanager {url}: no answer within 2 s"
    assert document["alertmanager"] == {"url": url, "silences": None, "problem": line}
    assert text[1].splitlines()[0].startswith("firing   latency_p99    iris/prod")
    assert text[2].splitlines()[-1].endswith(f"{line}; firing alerts are counted as firing")

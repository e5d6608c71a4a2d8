"""Cost of the exported Prometheus rules (issue 16): `relman policy export --format prometheus`
of a project with 20 services x 3 environments (a template assigned to prod, a conditional
value, a service with its own limits), loaded in a real Prometheus (Debian's, started by
tests/prom_stack.py) that scrapes a fake BentoML (tests/fake_bentoml.py) serving the 60
targets' request counters and duration histograms, each with its own traffic, some with
errors, BentoML's probes included. With ``--history`` days (default 8) of the 10-minute
medians of every pair backfilled first (`promtool tsdb create-blocks-from openmetrics`), the
baseline rules read a week of the past as they do in production; the measurement starts
once Prometheus has compacted those blocks.

Per evaluation cycle: the sum over the rule groups of Prometheus' own
``prometheus_rule_group_last_duration_seconds``, read from its /metrics once a second for
``--seconds`` (60) after every group has evaluated with data. Rules are evaluated every
second, the targets scraped every ``--scrape`` (15 s, Prometheus' usual; ``1s`` puts 60
samples in each one-minute rate window, the heaviest case). Goal: < 50 ms, for the median
cycle (p95 and max printed beside it); the durations are wall time, so the load average is
printed too. The costliest rules say where the time goes.

    python benchmarks/bench_prom_rules.py [--seconds 60] [--scrape 15s] [--history 8] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.alerts.prom_rules import RecordingRule, baseline_record, compile_rules
from core.alerts.prom_yaml import render
from core.config.model import parse_config
from tests.fake_bentoml import LES, fake_bentoml
from tests.prom_stack import PROMTOOL, prometheus_config, promtool_check_rules, running_prometheus

GOAL_MS = 50.0
SERVICES = 20
ENVIRONMENTS = ("dev", "staging", "prod")
METRIC = "prometheus_rule_group_last_duration_seconds"


def project_config() -> str:
    """relman.toml of 20 services in dev, staging and prod, with a policy that varies."""
    lines = ['[project]\nname = "bench"\n']
    for n in range(SERVICES):
        lines.append(f'[services.svc{n:02d}]\nbento = "service:S{n}"\nmodel = ["m{n}"]\n')
    for i, env in enumerate(ENVIRONMENTS):
        lines.append(f"[environments.{env}]\nport = {3100 + i}\n")
    lines.append(
        """
[monitoring]
assign = [{ match = { env = "prod" }, templates = ["strict"] }]
templates.strict = { error_rate_max = 0.02, latency_p99_ms = 400, when = [
    { match = { service = "svc0*" }, latency_p99_ms = 250 },
] }

[services.svc07.monitoring]
season = "weekly"
leak_metric = "p99_ms"
"""
    )
    return "\n".join(lines)


def backfill(
    data: Path, days: int, levels: dict[tuple[str, str], float], names: list[str]
) -> float:
    """``days`` of the 10-minute medians the baselines read back (``names``), one every two
    minutes, around each pair's level with a daily cycle, written as TSDB blocks into
    ``data``; the seconds it took."""
    started = time.perf_counter()
    data.mkdir(parents=True, exist_ok=True)
    source = data.parent / "history.om"
    rng = random.Random(16)
    now = int(time.time()) // 60 * 60 - 600  # up to ten minutes ago: before live data
    first = now - days * 86_400
    with source.open("w") as out:
        for name in names:
            out.write(f"# TYPE {name} gauge\n")
            for (service, env), level in levels.items():
                for t in range(first, now, 120):
                    cycle = 1 + 0.1 * math.sin(2 * math.pi * (t % 86_400) / 86_400)
                    value = level * cycle * rng.lognormvariate(0, 0.03)
                    out.write(f'{name}{{service="{service}",env="{env}"}} {value:.5f} {t}\n')
        out.write("# EOF\n")
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "-q", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    source.unlink()
    return time.perf_counter() - started


def _usual(traffic: dict[tuple[str, str], dict[str, float]]) -> dict[tuple[str, str], float]:
    """Each pair's latency as it was before its trouble (a tenfold one is not usual)."""
    out = {}
    for n, (pair, rates) in enumerate(traffic.items()):
        latency = rates["latency_seconds"]
        out[pair] = latency / 10 if n % 20 == 13 else latency
    return out


def bucket_p95(latency: float) -> float:
    """The p95 histogram_quantile reads when every request took ``latency``: interpolated
    in the bucket that holds it."""
    bounds = [0.0, *(float(le) for le in LES if le != "+Inf")]
    for low, high in itertools.pairwise(bounds):
        if latency <= high:
            return low + 0.95 * (high - low)
    return bounds[-1]


def own_metrics(url: str, names: tuple[str, ...]) -> dict[str, float]:
    """Prometheus' own samples of ``names`` (unlabelled), from its /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(names)
    }


def settle(url: str, timeout: float = 300.0) -> None:
    """Wait until Prometheus has compacted the backfilled blocks (its first compaction comes
    about a minute after it starts; the block count then holds still)."""
    names = ("prometheus_tsdb_compactions_total", "prometheus_tsdb_blocks_loaded")
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < deadline:
        found = own_metrics(url, names)
        if found.get(names[0], 0) > 0:
            seen.append(found.get(names[1], 0))
            if len(seen) >= 15 and len(set(seen[-15:])) == 1:
                return
        time.sleep(1.0)
    print("note: the backfilled blocks were still being compacted", file=sys.stderr)


def rule_durations(url: str) -> list[tuple[str, float]]:
    """(rule, seconds of its last evaluation) of every rule, numbered where a name repeats."""
    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=10) as response:
        answer = json.load(response)
    out: list[tuple[str, float]] = []
    seen: dict[str, int] = {}
    for group in answer["data"]["groups"]:
        for rule in group["rules"]:
            name = rule["name"]
            seen[name] = seen.get(name, 0) + 1
            shown = name if seen[name] == 1 else f"{name}#{seen[name]}"
            out.append((shown, float(rule["evaluationTime"])))
    return out


def group_durations(url: str) -> dict[str, float]:
    """Each rule group's last evaluation (seconds), from Prometheus' own /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(METRIC + "{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('rule_group="', 1)[1].split('"', 1)[0]] = float(value)
    return out


def measure(seconds: float, history_days: int, scrape: str = "15s") -> dict[str, Any]:
    config = parse_config(project_config(), Path("relman.toml"))
    rules = compile_rules(config)
    pairs = [(p.service, p.env) for p in rules.pairs]
    with tempfile.TemporaryDirectory(prefix="bench-prom-rules-") as temp:
        folder = Path(temp)
        rule_path = folder / "relman.rules.yml"
        rule_path.write_text(render(rules))
        checked = promtool_check_rules(rule_path)
        if checked.returncode != 0:
            raise SystemExit(f"promtool check rules refused the export: {checked.stdout}")
        # Healthy traffic, each pair at its usual latency; one pair in ten in trouble now
        # (errors, or latency ten times its past), so that some alerts are open.
        rng = random.Random(7)
        traffic: dict[tuple[str, str], dict[str, float]] = {}
        for n, pair in enumerate(pairs):
            latency = rng.choice([0.004, 0.02, 0.04, 0.08])
            traffic[pair] = {
                "ok_per_second": rng.uniform(1, 50),
                "errors_per_second": 5.0 if n % 20 == 3 else rng.choice([0.0, 0.0, 0.05]),
                "probe_failures_per_second": rng.choice([0.0, 1.0]),
                "latency_seconds": latency * 10 if n % 20 == 13 else latency,
            }
        levels = {pair: bucket_p95(latency) for pair, latency in _usual(traffic).items()}
        medians = [
            rule.record
            for group in rules.groups
            for rule in group.rules
            if isinstance(rule, RecordingRule) and "_median" in rule.record
        ]
        backfill_seconds = (
            backfill(folder / "prom" / "data", history_days, levels, medians)
            if history_days
            else 0.0
        )
        targets = folder / "targets.json"
        with fake_bentoml() as fake:
            labels: dict[str, dict[str, str]] = {}
            for (service, env), rates in traffic.items():
                name = f"{service}-{env}"
                fake.add(name, **rates)
                labels[name] = {"service": service, "env": env}
            targets.write_text(json.dumps(fake.file_sd(labels)))
            prom_config = prometheus_config(file_sd=[targets], rule_files=[rule_path])
            prom_config["global"]["scrape_interval"] = scrape
            with running_prometheus(folder / "prom", prom_config) as prometheus:
                # Every pair scraped and recorded, every group evaluated since.
                deadline = time.monotonic() + 180
                while len(prometheus.query("relman:requests:rate1m > 0")) < len(pairs):
                    if time.monotonic() > deadline:
                        raise SystemExit("Prometheus did not record every pair in 180 s")
                    time.sleep(0.5)
                groups = len(rules.groups)
                while len(group_durations(prometheus.url)) < groups:
                    time.sleep(0.5)
                if history_days:
                    settle(prometheus.url)
                samples: list[float] = []
                by_group: dict[str, list[float]] = {}
                by_rule: dict[str, list[float]] = {}
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    durations = group_durations(prometheus.url)
                    samples.append(sum(durations.values()) * 1000)
                    for group, spent in durations.items():
                        by_group.setdefault(group.rsplit(";", 1)[-1], []).append(spent * 1000)
                    for name, spent in rule_durations(prometheus.url):
                        by_rule.setdefault(name, []).append(spent * 1000)
                    time.sleep(1.0)
                baseline = prometheus.query(f"count({baseline_record('p95_ms', 'daily')})")
                firing = prometheus.get("/api/v1/alerts")["data"]["alerts"]
    ordered = sorted(samples)
    return {
        "services": SERVICES,
        "environments": len(ENVIRONMENTS),
        "recording_rules": rules.recording,
        "alerting_rules": rules.alerting,
        "groups": len(rules.groups),
        "scrape_interval": scrape,
        "history_days": history_days,
        "backfill_seconds": round(backfill_seconds, 1),
        "baselines_with_history": int(float(baseline[0]["value"][1])) if baseline else 0,
        "samples": len(samples),
        "median_ms": statistics.median(samples),
        "p95_ms": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))],
        "max_ms": ordered[-1],
        "alerts_open": len(firing),
        "group_median_ms": {g: statistics.median(v) for g, v in sorted(by_group.items())},
        "costliest_rules_ms": dict(
            sorted(
                ((name, statistics.median(v)) for name, v in by_rule.items()),
                key=lambda item: -item[1],
            )[:6]
        ),
        "goal_ms": GOAL_MS,
        "met": statistics.median(samples) < GOAL_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--scrape", default="15s", help="Prometheus' scrape interval")
    parser.add_argument("--history", type=int, default=8, help="days backfilled (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.seconds, args.history, args.scrape)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{result['services']} services x {result['environments']} environments: "
        f"{result['recording_rules']} recording + {result['alerting_rules']} alerting rules "
        f"in {result['groups']} groups; scraped every {result['scrape_interval']}, evaluated "
        f"every 1s; {result['history_days']} days of history backfilled "
        f"in {result['backfill_seconds']} s ({result['baselines_with_history']} baselines "
        f"from it); {result['alerts_open']} alerts open"
    )
    verdict = "met" if result["met"] else "MISSED"
    load = ", ".join(f"{x:g}" for x in result["load_average"])
    print(
        f"rule evaluation per cycle (sum of prometheus_rule_group_last_duration_seconds over "
        f"the groups, {result['samples']} cycles): median {result['median_ms']:.1f} ms, "
        f"p95 {result['p95_ms']:.1f} ms, max {result['max_ms']:.1f} ms "
        f"(goal < {GOAL_MS:g} ms, median: {verdict}; load average {load} on "
        f"{os.cpu_count()} cores: a busy machine lengthens every evaluation)"
    )
    shares = ", ".join(f"{g} {ms:.1f}" for g, ms in result["group_median_ms"].items())
    print(f"median ms by group: {shares}")
    costly = ", ".join(f"{name} {ms:.1f}" for name, ms in result["costliest_rules_ms"].items())
    print(f"costliest rules (median ms): {costly}")


if __name__ == "__main__":
    main()

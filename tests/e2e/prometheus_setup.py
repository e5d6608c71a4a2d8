"""The demo released to dev with ``[monitoring] source = "prometheus"``, for the e2e tests
of issue 16 (tests/e2e/test_prometheus_chain.py): a real Prometheus scrapes the environment
through the file_sd list the collector (started by the promotion) keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.served import git, relman_json
from tests.prom_stack import Server
from tests.waiting import wait_for

FILE_SD = ".relman/prometheus-targets.json"
MONITORING = "[monitoring]\nscrape_interval = 5.0\n"


def release_read_from_prometheus(
    root: Path, prom: Server, *, scrape_interval: float = 5.0, more: str = ""
) -> tuple[str, dict[str, Any]]:
    """The demo's relman.toml set to read from ``prom`` through the file_sd list (with
    ``more`` lines of [monitoring]), committed and released to dev, and Prometheus
    scraping dev: the release and dev's ``up`` series."""
    config = root / "relman.toml"
    text = config.read_text()
    assert MONITORING in text
    config.write_text(
        text.replace(
            MONITORING,
            f"[monitoring]\nscrape_interval = {scrape_interval}\n"
            f'source = "prometheus"\nprometheus_url = "{prom.url}"\nfile_sd = "{FILE_SD}"\n' + more,
        )
    )
    git(root, "commit", "-qam", "metrics from Prometheus")
    done = relman_json(root, "release")  # to dev; the promotion starts the collector
    assert done["_exit"] == 0, done["_stderr"]
    release: str = done["release"]

    # the collector lists dev's instance; Prometheus scrapes it with the list's labels
    [up] = wait_for(
        lambda: prom.query('up{service="iris", env="dev"} == 1'),
        "Prometheus to scrape dev through the collector's file_sd list",
        120,
        0.5,
    )
    assert up["metric"]["service_version"] == release
    return release, up

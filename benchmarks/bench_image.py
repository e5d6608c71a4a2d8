"""A release's OCI image (docs/targets.md, Images): how long `relman build --image` takes, how
big the image is, and how long a release takes from start to ready when run from its image
(podman) against the baseline, its Bento run by `bentoml serve`.

The demo (``relman demo``, made in a temp dir) gets a release of its own (a comment in
service.py: an image tag no other run has), then:

    build A    relman --batch --json build --image, with an empty wheel cache (the wheels
               downloaded from the package index); whether podman reused a cached install
               layer (same wheels as an image already in its storage) is printed
    build B    a second release (another comment), wheel cache warm: the usual rebuild
    ready      --rounds (5) times each, alternating: the local target's start() of release A
               in an environment with runtime = "image" (podman run) and in one with the
               default runtime (bentoml serve), then wait_ready() (GET /readyz until 200);
               the seconds from start() to ready, median and max

    python benchmarks/bench_image.py [--rounds 5] [--keep]

Needs podman and the base image (`./dev image-base`). Everything lives in one temp dir with
its own BentoML home and wheel cache; at the end the instances are stopped, `relman down`
runs, the images built here are removed (unless --keep), and any process still naming the
temp dir is stopped by pid and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from demo_env import RELMAN, clean_up, environment, run

from core.build.image import base_image, image_ref
from core.config.model import load_project
from core.host.containers import find_engine
from core.host.ports import free_ports
from core.targets.local import LocalTarget

MARKER = "RELMAN_BENCH_IMAGE"


def _release(demo: Path, env: dict[str, str], note: str) -> None:
    service = demo / "service.py"
    service.write_text(service.read_text() + f"\n# bench_image {note} {uuid.uuid4().hex}\n")
    run(["git", "commit", "-qam", f"bench_image {note}"], demo, env)


def _build(demo: Path, env: dict[str, str], label: str) -> dict:
    started = time.monotonic()
    done = run([RELMAN, "--batch", "--json", "build", "--image"], demo, env)
    seconds = time.monotonic() - started
    document: dict = json.loads(done.stdout)
    [image] = document["images"]
    step = next(s for s in document["steps"] if s["name"] == "image")
    # podman says "--> Using cache ID" for each step it did not run again.
    cached = done.stderr.count("Using cache")
    wheels = re.search(r"(\d+ wheels \(\d+ MB\) ready in [0-9.]+ s)", done.stderr)
    print(
        f"build {label}: {seconds:.1f} s in all (image step {step['seconds']:.1f} s; "
        f"{wheels.group(1) if wheels else 'wheels: ?'}; {cached} build steps from podman's "
        f"cache), {image['size'] / 1e6:.0f} MB, {image['builder']} with {image['engine']}, "
        f"{'reused' if image['reused'] else 'built'} {image['ref']}"
    )
    return document


def _ready_once(target: LocalTarget, bento: str, release: str) -> float:
    started = time.monotonic()
    instance = target.start(bento, release, log=lambda _line: None)
    try:
        target.wait_ready(instance, 120)
        return time.monotonic() - started
    finally:
        target.stop(instance)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the images built here")
    args = parser.parse_args()
    engine = find_engine("podman")
    if engine is None or engine.image(base_image()) is None:
        print(f"podman or the base image {base_image()} is missing: run ./dev image-base")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="relman-bench-image-"))
    env = environment(tmp, MARKER)
    env["RELMAN_WHEEL_CACHE"] = str(tmp / "wheels")
    env["PIP_NO_CACHE_DIR"] = "1"  # the first build downloads for real
    demo = tmp / "iris-demo"
    releases: list[str] = []
    try:
        run([RELMAN, "demo", str(demo)], tmp, env)
        config = demo / "relman.toml"
        text = config.read_text()
        ports = free_ports(3, start=3600)
        for env_name, port in zip(("dev", "staging", "prod"), ports, strict=True):
            text = re.sub(
                rf"(\[environments\.{env_name}\]\n)port = \d+", rf"\g<1>port = {port}", text
            )
        text = text.replace("[environments.dev]\n", '[environments.dev]\nruntime = "image"\n')
        config.write_text(text)
        run(["git", "commit", "-qam", "bench_image: dev runs images"], demo, env)

        _release(demo, env, "A")
        built = _build(demo, env, "A (wheel cache empty)")
        release = built["bentos"][0]["release"]
        releases.append(release)
        _release(demo, env, "B")
        second = _build(demo, env, "B (wheel cache warm, a new release)")
        releases.append(second["bentos"][0]["release"])

        os.environ.update({k: v for k, v in env.items() if k in ("BENTOML_HOME", MARKER)})
        project = load_project(demo)
        bento = built["bentos"][0]["tag"]
        targets = {
            "image (podman run)": LocalTarget(project, "iris", "dev"),
            "bento (bentoml serve, baseline)": LocalTarget(project, "iris", "staging"),
        }
        seconds: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, target in targets.items():
                seconds[name].append(_ready_once(target, bento, release))
        for name, values in seconds.items():
            print(
                f"start to ready, {name}: median {statistics.median(values):.2f} s, "
                f"max {max(values):.2f} s over {len(values)} starts"
            )
        image = statistics.median(seconds["image (podman run)"])
        baseline = statistics.median(seconds["bento (bentoml serve, baseline)"])
        print(f"ratio image / bento: {image / baseline:.2f}")
    finally:
        clean_up(demo, env, tmp)
        if not args.keep:
            for release in releases:
                engine.remove_image(image_ref("iris", release))
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

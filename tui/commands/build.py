"""`relman build [SERVICE] [--image]`: build (or reuse) the Bento of the candidate release, and
with --image its OCI image. BentoML's (and the image builder's) output goes to stderr as it
happens, the Bento's tag (and the image's reference) to stdout."""

from __future__ import annotations

import argparse
from typing import Any

from core import api
from tui.output import emit, out
from tui.output import log as _stderr


def add_parsers(verbs: Any) -> None:
    build = verbs.add_parser(
        "build",
        help="build the Bento of the candidate release",
        description="Build the Bento of the candidate of SERVICE (default: every service) "
        "with BentoML, from the build config relman.toml names: version = the release id, "
        "labels = its lineage (git commit, model and data md5, release, relman version). "
        "A release is built once: a Bento already built for it is reused. Refused for a "
        "dirty working tree or a candidate with lineage problems (exit 1).",
    )
    build.add_argument(
        "service", metavar="SERVICE", nargs="?", help="the service to build (default: all)"
    )
    build.add_argument(
        "--image",
        action="store_true",
        help="also build the release's OCI image from its Bento (podman, else docker), "
        "tagged localhost/relman/SERVICE:RELEASE with the lineage as labels (docs/targets.md)",
    )
    build.set_defaults(handler=cmd_build, mutates=True)


def cmd_build(args: argparse.Namespace) -> int:
    project = api.load_project(args.project)
    report = api.build(
        project,
        args.service,
        log=_stderr,
        read_only=args.read_only,
        cancel=getattr(args, "cancel", None),  # set by SIGHUP and SIGTERM (tui/hangup.py)
        image=getattr(args, "image", False),
    )
    if args.json:
        emit(report)
    else:
        for bento in report["bentos"]:
            out(f"{'reused' if bento['reused'] else 'built'} {bento['tag']}")
        for image in report.get("images", []):
            size = f"{image['size'] / 1e6:.0f} MB"
            made = "reused" if image["reused"] else f"built ({image['builder']}, {image['engine']})"
            out(f"{made} {image['ref']} {size}")
    return 0 if report["ok"] else 1

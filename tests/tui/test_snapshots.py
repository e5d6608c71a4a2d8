"""SVG snapshots of the overview once the project is loaded: the 80x24 on-call terminal and
a roomier one. Nothing on screen depends on tmp_path, so the pictures are deterministic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.tui.conftest import WaitForWorkers
from tui.app import RelmanApp

SnapCompare = Callable[..., bool]


def test_overview_80x24(
    snap_compare: SnapCompare, project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_for_workers)


def test_overview_120x40(
    snap_compare: SnapCompare, project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_for_workers)


def test_overview_read_only_80x24(
    snap_compare: SnapCompare, project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir, read_only=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_for_workers)


def test_help_80x24(
    snap_compare: SnapCompare, project_dir: Path, wait_for_workers: WaitForWorkers
) -> None:
    app = RelmanApp(project_dir=project_dir)
    assert snap_compare(
        app, press=["question_mark"], terminal_size=(80, 24), run_before=wait_for_workers
    )

"""The interface on a repository without relman.toml (tests/e2e/adopted.py): it opens
read-only, says that it reads without a relman.toml and which command writes one, and shows
the versions GTO's tags assign to each stage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core import api
from screens.overview import OverviewScreen
from tests.e2e.adopted import Adopted, adopted_in
from tests.tui.conftest import WaitForWorkers
from tests.tui.test_app import rows, status_text
from tui.app import RelmanApp

SIZE = (80, 24)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adopted]:
    with adopted_in(tmp_path_factory.mktemp("adopted-tui")) as built:
        yield built


async def test_the_overview_reads_the_repository_read_only(
    adopted: Adopted, wait_for_workers: WaitForWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(adopted.root)
    # As the command line reads it for the first paint: the models, not yet their data.
    project = api.read_project(None, quick=True)
    assert project.inferred and project.config.services["churn"].data == []
    # The first paint's rows already hold the stages' versions (the tags, no poll).
    first = {
        (s.name, e.name): e.version for s in api.recorded_overview(project) for e in s.environments
    }
    assert first[("churn", "dev")] == "v0.3.0" and first[("churn", "prod")] == "v0.1.0"
    app = RelmanApp(project_dir=None, read_only=project.inferred, project=project)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert isinstance(app.screen, OverviewScreen)
        said = status_text(app)
        assert "Reading without a relman.toml" in said and "relman init" in said
        assert app.read_only
        shown = {(row[0], row[1]): row[2] for row in rows(app)}
        assert shown[("churn", "dev")] == "v0.3.0"
        assert shown[("churn", "staging")] == "v0.2.0"
        assert shown[("churn", "prod")] == "v0.1.0"
        # The first poll read the repository fully, in its worker: the data is known now.
        assert app.project is not None
        assert app.project.config.services["churn"].data == ["data/raw.csv"]
    assert not (adopted.root / ".relman").exists()

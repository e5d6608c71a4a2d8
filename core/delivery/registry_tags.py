"""The GTO-style registry tags a promotion writes on its release's commit.

Checked before anything changes (a version registered on another commit blocks the
promotion at its gates), written after the switch (a failure to write is reported in the
step, never undoes a deployment). Off with ``[project] gto_tags = false``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from core.config.model import Project
from core.delivery.deploy import Steps
from core.errors import BlockedError, ReleaseError
from store import Ledger, ReleaseRecord

if TYPE_CHECKING:
    from core.lineage.gitinfo import TagRef


def model_names(ledger: Ledger, record: ReleaseRecord) -> list[str]:
    """The dvc.yaml artifact names of the release's model (what GTO tags name)."""
    return [
        artifact.name
        for artifact in ledger.artifacts(record.id)
        if artifact.kind == "model" and artifact.name != artifact.path
    ]


def check_tags(
    project: Project, ledger: Ledger, record: ReleaseRecord, env: str, steps: Steps
) -> list[TagRef] | None:
    """A GTO tag conflict (the version registered on another commit) blocks before anything
    changes, not after the switch. Returns the repository's tags it read (for
    :func:`write_tags`), or None when there was nothing to check."""
    if not project.config.project.gto_tags or not record.version:
        return None
    from core.lineage.gitinfo import tags
    from core.lineage.gto import plan_promotion_tags

    refs = tags(project.root, fresh=True)  # a promotion checks the tags as they are now
    for name in model_names(ledger, record):
        try:
            stage = project.config.stage_of(env)
            plan_promotion_tags(refs, name, record.version, stage, record.git_commit)
        except BlockedError as exc:
            steps.failed("tags", str(exc))
            raise
    return refs


def write_tags(
    project: Project,
    ledger: Ledger,
    record: ReleaseRecord,
    env: str,
    steps: Steps,
    existing: list[TagRef] | None = None,
) -> None:
    """GTO-style tags on the release's commit; a failure is reported, never fatal.
    ``existing``: the tags :func:`check_tags` read before the deploy, not read again (a name
    another promotion took since is planned again on fresh tags, as after any race);
    otherwise read here."""
    if not project.config.project.gto_tags:
        steps.skipped("tags", "GTO tags off ([project] gto_tags = false)")
        return
    from core.ledger.identity import current_user
    from core.lineage.gto import write_promotion_tags

    if not record.version:
        steps.skipped("tags", "release has no version to tag")
        return
    names = model_names(ledger, record)
    if not names:
        steps.skipped("tags", "the model has no artifact name in dvc.yaml to tag")
        return
    started = time.perf_counter()
    created: list[str] = []
    try:
        for name in names:
            created += write_promotion_tags(
                project.root,
                name,
                record.version,
                project.config.stage_of(env),  # its GTO name ([environments.ENV] stage)
                record.git_commit,
                actor=current_user(project.root),
                existing=existing,
            )
    except ReleaseError as exc:
        steps.skipped("tags", f"not written: {exc}")
        return
    if created:
        steps.passed("tags", "wrote " + ", ".join(created), time.perf_counter() - started)
    else:
        steps.skipped("tags", f"tags of {record.version} in {env} already there")

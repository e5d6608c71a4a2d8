"""Releases, their artifacts and their version numbers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from store.errors import AmbiguousRelease, InvalidRequest, LedgerConflict, ReleaseNotFound
from store.ledger.base import LedgerBase
from store.ledger.records import ArtifactRecord, Bump, ReleaseRecord, release_from_row

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
FIRST_VERSION = "v1.0.0"
_CANDIDATES_SHOWN = 5


def bump_version(version: str | None, bump: Bump) -> str:
    """``v1.2.3`` bumped; the first version of a service is v1.0.0 whatever the bump."""
    if version is None:
        return FIRST_VERSION
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not a version like v1.2.0")
    major, minor, patch = (int(part) for part in match.groups())
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


class ReleasesMixin(LedgerBase):
    def record_release(
        self,
        release_id: str,
        *,
        service: str,
        git_commit: str,
        git_branch: str | None = None,
        message: str = "",
        author: str = "",
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        artifacts: Iterable[ArtifactRecord] = (),
        version: str | None = None,
    ) -> ReleaseRecord:
        """Record a release and its artifacts. The id is content-derived, so recording the
        same id again changes nothing and returns the release already recorded."""
        if version is not None:
            _check_version_format(version)
        with self._writing(f"recording release {release_id}") as at:
            existing = self._one("SELECT * FROM releases WHERE id = ?", [release_id])
            if existing is not None:
                return release_from_row(existing)
            if version is not None:
                self._check_version_free(service, version)
            row = {
                "id": release_id,
                "service": service,
                "version": version,
                "git_commit": git_commit,
                "git_branch": git_branch,
                "message": message,
                "author": author,
                "created_at": at,
                "params": json.dumps(dict(params or {}), sort_keys=True, default=str),
                "metrics": json.dumps(dict(metrics or {}), sort_keys=True, default=str),
            }
            self._db.table("releases").insert(row)
            stored = list(artifacts)
            self._db.table("artifacts").insert_all(
                {
                    "release_id": release_id,
                    "name": artifact.name,
                    "kind": artifact.kind,
                    "path": artifact.path,
                    "md5": artifact.md5,
                    "size": artifact.size,
                    "nfiles": artifact.nfiles,
                }
                for artifact in stored
            )
            self._audit(
                at,
                "release.record",
                "ok",
                service=service,
                release_id=release_id,
                details={
                    "git_commit": git_commit,
                    "version": version,
                    "artifacts": {artifact.path: artifact.md5 for artifact in stored},
                },
            )
            return release_from_row(row)

    def assign_version(self, release_id: str, version: str) -> ReleaseRecord:
        """Give a recorded release its version number; a version is never reassigned."""
        _check_version_format(version)
        with self._writing(f"assigning {version} to {release_id}") as at:
            release = self._release_row(release_id)
            if release.version == version:
                return release
            if release.version is not None:
                raise LedgerConflict(
                    f"release {release_id} already is {release.service} {release.version} in "
                    f"{self.where}; versions are never reassigned, record a new release"
                )
            self._check_version_free(release.service, version)
            self._db.execute("UPDATE releases SET version = ? WHERE id = ?", [version, release_id])
            self._audit(
                at,
                "release.version",
                "ok",
                service=release.service,
                release_id=release_id,
                details={"version": version},
            )
            return self._release_row(release_id)

    def next_version(self, service: str, bump: Bump = "minor") -> str:
        """The version the next release of ``service`` would get: v1.0.0 first, then bumped
        from the highest version recorded (highest by number, not by date)."""
        with self._reading() as db:
            rows = db.execute(
                "SELECT version FROM releases WHERE service = ? AND version IS NOT NULL",
                [service],
            ).fetchall()
        numbers = [
            tuple(int(part) for part in match.groups())
            for (version,) in rows
            if (match := _VERSION.match(version))
        ]
        highest = "v{}.{}.{}".format(*max(numbers)) if numbers else None
        return bump_version(highest, bump)

    def get_release(self, id_or_prefix: str) -> ReleaseRecord:
        """The release with this id, or the only one whose id starts with it."""
        prefix = id_or_prefix.strip()
        if not prefix:
            raise ReleaseNotFound("no release id given; `relman history` lists the releases")
        with self._reading():
            exact = self._one("SELECT * FROM releases WHERE id = ?", [prefix])
            if exact is not None:
                return release_from_row(exact)
            # A range, not LIKE: it uses the primary key index and needs no escaping.
            upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            rows = list(
                self._db.query(
                    "SELECT * FROM releases WHERE id >= ? AND id < ? ORDER BY id LIMIT ?",
                    [prefix, upper, _CANDIDATES_SHOWN + 1],
                )
            )
        if not rows:
            raise ReleaseNotFound(
                f"no release {prefix!r} in {self.where}; `relman history` lists the recorded "
                "releases"
            )
        if len(rows) > 1:
            shown = ", ".join(
                f"{row['id']} ({row['service']} {row['version'] or 'unversioned'})"
                for row in rows[:_CANDIDATES_SHOWN]
            )
            more = " and more" if len(rows) > _CANDIDATES_SHOWN else ""
            raise AmbiguousRelease(
                f"release prefix {prefix!r} is ambiguous in {self.where}: {shown}{more}; "
                "type more characters"
            )
        return release_from_row(rows[0])

    def releases(self, service: str, *, limit: int | None = None) -> list[ReleaseRecord]:
        """The releases of a service, newest first."""
        with self._reading() as db:
            rows = db.query(
                "SELECT * FROM releases WHERE service = ? ORDER BY created_at DESC, id DESC"
                " LIMIT ?",
                [service, -1 if limit is None else limit],
            )
            return [release_from_row(row) for row in rows]

    def artifacts(self, release_id: str) -> list[ArtifactRecord]:
        with self._reading() as db:
            rows = db.query(
                "SELECT * FROM artifacts WHERE release_id = ? ORDER BY kind, path", [release_id]
            )
            return [ArtifactRecord(**row) for row in rows]

    def _check_version_free(self, service: str, version: str) -> None:
        taken = self._one(
            "SELECT id FROM releases WHERE service = ? AND version = ?", [service, version]
        )
        if taken is not None:
            raise LedgerConflict(
                f"{service} {version} is already release {taken['id']} in {self.where}; "
                f"take the next version (`relman history` shows the versions in use)"
            )


def _check_version_format(version: str) -> None:
    if _VERSION.match(version) is None:
        raise InvalidRequest(
            f"version {version!r} is not of the form v1.2.0; use vMAJOR.MINOR.PATCH"
        )

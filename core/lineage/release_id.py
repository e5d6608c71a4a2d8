"""The release id: a short content hash naming what a release serves.

``sha256`` of the canonical JSON (sorted keys, no whitespace, UTF-8) of
``{"source": ..., "artifacts": [[path, md5], ...] sorted, "params": {...}}``, first 12 hex
characters. ``source`` is the hash of the service's build context
(:mod:`core.lineage.build_context`: the git blob ids of the files its Bento is built from,
and its BentoML build config), ``artifacts`` the md5 of each model and data output DVC
records, ``params`` the parameters. It depends on content only, so every clone of the
repository computes the same id for the same code, data, model and parameters, whatever the
machine or the path; and a commit that changes nothing the release serves (relman.toml, a
README, a file the build config leaves out) keeps the id.

Ids made before this rule hashed the git commit instead of ``source``; the ledger keeps them
as they are (an id is an opaque string), and the same content gets a new-style id once.

A working tree that differs from its commit in what the release serves has no stable id:
uncommitted edits are not part of the hash, so two different dirty trees could share one.
Such a candidate gets the id of its content with the suffix ``-dirty`` (e.g.
``3f9a1c0b2d4e-dirty``); the ledger never records it as a release, and ``is_dirty_id`` lets
callers refuse it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["DIRTY_SUFFIX", "ID_LENGTH", "canonical_json", "is_dirty_id", "release_id"]

ID_LENGTH = 12
DIRTY_SUFFIX = "-dirty"


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def release_id(
    source: str,
    artifacts: Mapping[str, str | None],
    params: Mapping[str, Any],
    *,
    dirty: bool = False,
) -> str:
    """The id of a release: the hash of its build context (``source``), the md5 of each
    artifact path, the parameters."""
    payload = {
        "source": source,
        # Paths in POSIX form so that Windows and Unix clones agree.
        "artifacts": sorted([path.replace("\\", "/"), md5] for path, md5 in artifacts.items()),
        "params": params,
    }
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:ID_LENGTH]
    return digest + DIRTY_SUFFIX if dirty else digest


def is_dirty_id(value: str) -> bool:
    return value.endswith(DIRTY_SUFFIX)

"""The release id: a short content hash naming what a release is made of.

``sha256`` of the canonical JSON (sorted keys, no whitespace, UTF-8) of
``{"commit": ..., "artifacts": [[path, md5], ...] sorted, "params": {...}}``, first 12 hex
characters. It depends on content only, so every clone of the repository computes the same id
for the same commit, data, model and parameters, whatever the machine or the path.

A dirty working tree has no stable id: uncommitted edits to code are not part of the hash, so
two different dirty trees could share one. Such a candidate gets the id of its content with
the suffix ``-dirty`` (e.g. ``3f9a1c0b2d4e-dirty``); the ledger never records it as a
release, and ``is_dirty_id`` lets callers refuse it.
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
    commit: str,
    artifacts: Mapping[str, str | None],
    params: Mapping[str, Any],
    *,
    dirty: bool = False,
) -> str:
    """The id of a release: ``commit``, the md5 of each artifact path, the parameters."""
    payload = {
        "commit": commit,
        # Paths in POSIX form so that Windows and Unix clones agree.
        "artifacts": sorted([path.replace("\\", "/"), md5] for path, md5 in artifacts.items()),
        "params": params,
    }
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:ID_LENGTH]
    return digest + DIRTY_SUFFIX if dirty else digest


def is_dirty_id(value: str) -> bool:
    return value.endswith(DIRTY_SUFFIX)

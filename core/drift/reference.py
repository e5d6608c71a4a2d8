"""The reference of drift: a release's training data, read from the local DVC cache.

The dataset is read by the md5 the ledger recorded for the release (:func:`reference_frame`),
so it is the exact data of that release whatever the working tree holds now; an md5 names
immutable content, so :func:`cached_reference_frame` keeps the newest frames read.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import threading
from collections import OrderedDict
from pathlib import Path

from core.errors import ConfigError

__all__ = ["Column", "cache_object_path", "cached_reference_frame", "reference_frame"]

_MD5 = re.compile(r"[0-9a-f]{32}(\.dir)?")
_TABLES = {".csv": ",", ".tsv": "\t"}

Column = list[float | str]


def reference_frame(root: Path, md5: str | None, path: str) -> dict[str, Column]:
    """The columns of the dataset ``path`` at ``md5``, read from the local DVC cache.

    ``md5`` is the hash the release recorded (``….dir`` for a directory, whose CSV/TSV files
    are read in order and stacked). A column whose every non-empty cell is a number is a
    column of floats (empty cells NaN), any other a column of text. ConfigError (exit 2)
    when the object is not in the cache (``dvc pull``), or is not a table.
    """
    if not md5 or not _MD5.fullmatch(md5):
        raise ConfigError(
            f"{path}: the release records no usable md5 ({md5!r}), so its training data "
            "cannot be found in the DVC cache"
        )
    cache = _cache_dir(root)
    if md5.endswith(".dir"):
        listing = _read_object(cache, md5, path)
        try:
            entries = json.loads(listing)
            files = sorted(
                (str(e["relpath"]), str(e["md5"]))
                for e in entries
                if Path(str(e["relpath"])).suffix.lower() in _TABLES
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ConfigError(
                f"{path}: the DVC cache's listing of {md5} is damaged ({exc}); "
                "remove it and run 'dvc pull'"
            ) from exc
        if not files:
            raise ConfigError(f"{path}: the directory holds no .csv or .tsv file to compare with")
        tables = [
            _parse_table(_read_object(cache, oid, f"{path}/{rel}"), f"{path}/{rel}")
            for rel, oid in files
        ]
    else:
        if Path(path).suffix.lower() not in _TABLES:
            raise ConfigError(
                f"{path}: drift is measured against CSV or TSV training data; "
                "point the service's dataset at a .csv file"
            )
        tables = [_parse_table(_read_object(cache, md5, path), path)]
    return _columns(tables)


def cache_object_path(root: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object ``md5`` of the project at ``root``."""
    return _cache_dir(root) / "files" / "md5" / md5[:2] / md5[2:]


def _read_object(cache: Path, md5: str, path: str) -> str:
    # DVC 3's layout first, then DVC 2's (objects not yet migrated).
    for candidate in (cache / "files" / "md5" / md5[:2] / md5[2:], cache / md5[:2] / md5[2:]):
        try:
            raw = candidate.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read {candidate}: {exc.strerror}") from exc
        return raw.decode("utf-8-sig", errors="replace")
    raise ConfigError(
        f"{path} (md5 {md5}) is not in the local DVC cache {cache}; "
        "run 'dvc pull' at the release's commit to fetch its training data"
    )


def _cache_dir(root: Path) -> Path:
    """``.dvc/cache``, or the ``[cache] dir`` of .dvc/config.local or .dvc/config."""
    dvc = root / ".dvc"
    for name in ("config.local", "config"):
        folder = _config_value(dvc / name, "cache", "dir")
        if folder:
            given = Path(folder).expanduser()
            return given if given.is_absolute() else (dvc / given).resolve()
    return dvc / "cache"


def _config_value(path: Path, section: str, key: str) -> str | None:
    """A value of DVC's INI-like config (sections ``[cache]``, keys indented or not)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    current = None
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip().strip("'\"")
        elif current == section and "=" in stripped and not stripped.startswith(("#", ";")):
            name, _, value = stripped.partition("=")
            if name.strip() == key:
                return value.strip().strip("'\"") or None
    return None


def _parse_table(text: str, path: str) -> list[dict[str, str]]:
    delimiter = _TABLES.get(Path(path).suffix.lower(), ",")
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise ConfigError(f"{path}:{reader.line_num}: not valid CSV: {exc}") from exc
    if not reader.fieldnames:
        raise ConfigError(f"{path}: empty, no header line")
    return rows


def _columns(tables: list[list[dict[str, str]]]) -> dict[str, Column]:
    names: dict[str, None] = {}
    for table in tables:
        for row in table:
            names.update((name, None) for name in row if name is not None)
    cells = {name: [row.get(name) or "" for t in tables for row in t] for name in names}
    return {name: _typed(values) for name, values in cells.items()}


def _typed(cells: list[str]) -> Column:
    numbers: list[float | str] = []
    for cell in cells:
        text = cell.strip()
        if not text:
            numbers.append(math.nan)
            continue
        try:
            numbers.append(float(text))
        except ValueError:
            return [str(c) for c in cells]
    return numbers


# Reference frames by (cache folder, md5, path): an md5 names immutable content, so a frame
# read once serves every later poll; the two newest are kept (a promotion brings a second).
_FRAMES: OrderedDict[tuple[str, str, str], dict[str, Column]] = OrderedDict()
_FRAMES_LOCK = threading.Lock()
_FRAMES_KEPT = 2


def cached_reference_frame(root: Path, md5: str, path: str) -> dict[str, Column]:
    """:func:`reference_frame`, read once for as long as it stays among the newest two."""
    key = (str(_cache_dir(root)), md5, path)
    with _FRAMES_LOCK:
        if key in _FRAMES:
            _FRAMES.move_to_end(key)
            return _FRAMES[key]
    frame = reference_frame(root, md5, path)
    with _FRAMES_LOCK:
        _FRAMES[key] = frame
        while len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return frame

"""What the watcher polls: DVC-tracked data whose workspace content differs from the md5 DVC
recorded for it (in its .dvc file, or in dvc.lock).

A poll is cheap when nothing changed: it stats every watched file and hashes only those whose
(size, mtime_ns, inode) changed since they were last hashed, the same trust DVC's own state
database puts in them, and re-reads a record file only when its own stat changed. DVC is not
imported: its md5 of a file is the md5 of its bytes (``md5-dos2unix`` records of DVC 2 are
hashed by dvc_data), a directory's the md5 of its JSON listing as dvc_data's ``Tree`` writes
it, plus ``.dir``. ``.dvcignore`` rules inside a watched directory are not applied.

A poll reports every difference it sees, not only new ones: settling is the caller's
business (core/pipelines/watch.py). :meth:`DataWatch.stat_key` tells a file still being
written: equal keys at two polls a debounce apart mean nothing wrote to it in between.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.lineage.gitinfo import git
from core.pipelines.change_feed import ChangeFeed
from core.pipelines.stage_scope import stage_scope

if TYPE_CHECKING:
    from core.config.model import Project

__all__ = ["TABLE_SUFFIXES", "DataChange", "DataWatch", "file_md5", "watched_data"]

TABLE_SUFFIXES = (".csv", ".tsv")
_CHUNK = 1024 * 1024
StatKey = tuple[int, ...]


@dataclass(frozen=True)
class DataChange:
    """A watched path whose workspace content is not what DVC recorded."""

    path: str  # relative to the project root, e.g. "data/iris.csv"
    recorded_md5: str | None  # None: nothing records it yet
    current_md5: str | None  # None: the file is gone
    recorded_rows: int | None  # rows of a CSV/TSV (lines minus the header) when known
    current_rows: int | None

    def reason(self) -> str:
        """One line: ``data/iris.csv changed: md5 013d0da0 -> 7a1c9e22, 150 -> 180 rows``."""
        if self.current_md5 is None:
            return f"{self.path} is gone: md5 {_short(self.recorded_md5)} recorded"
        if self.recorded_md5 is None:
            return f"{self.path} is not recorded by DVC yet: md5 {_short(self.current_md5)}"
        line = f"{self.path} changed: md5 {_short(self.recorded_md5)} -> {_short(self.current_md5)}"
        if self.current_rows is not None:
            if self.recorded_rows is not None:
                line += f", {self.recorded_rows} -> {self.current_rows} rows"
            else:
                line += f", {self.current_rows} rows now"
        return line


def _short(md5: str | None) -> str:
    return (md5 or "none")[:8]


def watched_data(project: Project, service: str) -> list[str]:
    """The DVC-tracked inputs of the service's model: its ``data`` artifacts, and what the
    stages up to its model read that no stage produces and git does not track (outputs of
    .dvc files, raw files recorded in dvc.lock only). Directories are allowed."""
    inputs = stage_scope(project, service).inputs
    if not inputs:
        return []
    listed = git(project.root, "ls-files", "-z", "--", *inputs).split("\0")
    in_git = {path for path in listed if path}
    return [
        path
        for path in inputs
        if not any(f == path or f.startswith(path.rstrip("/") + "/") for f in in_git)
    ]


def file_md5(
    path: str | Path, *, legacy: bool = False, rows: bool = False
) -> tuple[str, int | None]:
    """DVC's md5 of a file and, when ``rows``, its rows as a table (lines minus the header).

    ``legacy``: the ``md5-dos2unix`` of records DVC 2 wrote (CRLF read as LF in text files).
    """
    if legacy:
        from dvc_data.hashfile.hash import file_md5 as dvc_file_md5

        md5 = str(dvc_file_md5(str(path), name="md5-dos2unix"))
        return md5, _count_rows(path) if rows else None
    digest = hashlib.md5(usedforsecurity=False)
    lines, last = 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if rows:
                lines += chunk.count(b"\n")
                last = chunk[-1:]
    return digest.hexdigest(), _rows(lines, last) if rows else None


def _count_rows(path: str | Path) -> int:
    lines, last = 0, b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return _rows(lines, last)


def _rows(newlines: int, last: bytes) -> int:
    lines = newlines + (1 if last and last != b"\n" else 0)
    return max(lines - 1, 0)


@dataclass(frozen=True)
class _Record:
    md5: str
    legacy: bool  # md5-dos2unix, as DVC 2 recorded it
    own: bool  # the path's own record (a .dvc file, a stage output), not a dependency's


@dataclass(frozen=True)
class _Hashed:
    key: StatKey
    legacy: bool
    md5: str
    rows: int | None


class DataWatch:
    """The watched paths of one project, compared with their DVC records at each poll."""

    def __init__(self, root: Path, paths: Iterable[str], *, notify: bool = False) -> None:
        """``notify``: walk a watched folder only when the kernel said something under it
        changed (core/pipelines/change_feed.py), for a watch that polls on and on."""
        self.root = Path(root).resolve()
        self.paths = list(dict.fromkeys(Path(os.path.normpath(p)).as_posix() for p in paths))
        # Files hashed since this watch was made: an idle poll adds none.
        self.files_hashed = 0
        # Folders walked (every file in them stat'ed) since this watch was made.
        self.walks = 0
        self._hashed: dict[str, _Hashed] = {}
        self._listings: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {}
        self._keys: dict[str, StatKey | None] = {}
        self._sources = self._record_files()
        self._source_keys: dict[Path, StatKey | None] = {}
        self._parsed: dict[Path, list[tuple[str, _Record]]] = {}
        self._records: dict[str, _Record] = {}
        self._cached_rows: dict[str, int | None] = {}
        self._cache_dir = _cache_dir(self.root)
        self._feed: ChangeFeed | None = None
        if notify:
            folders = [path for path in self.paths if (self.root / path).is_dir()]
            self._feed = ChangeFeed(self.root, folders)
        # What the last look at each path found, for a folder no notification concerns.
        self._found: dict[tuple[str, bool], tuple[str | None, int | None]] = {}

    def poll(self) -> list[DataChange]:
        """Every watched path whose content differs from its record, now."""
        self._refresh_records()
        quiet = self._quiet_folders()
        changes = []
        for path in self.paths:
            record = self._records.get(path)
            legacy = record.legacy if record else False
            table = path.lower().endswith(TABLE_SUFFIXES)
            found = self._found.get((path, legacy)) if path in quiet else None
            if found is None:
                found = self._found[(path, legacy)] = self._current(path, legacy, table)
            current, rows = found
            recorded = record.md5 if record else None
            if current == recorded:
                continue
            recorded_rows = self._recorded_rows(recorded) if table and recorded else None
            changes.append(DataChange(path, recorded, current, recorded_rows, rows))
        return changes

    def close(self) -> None:
        """Stop the notifications of a ``notify`` watch."""
        if self._feed is not None:
            self._feed.close()
            self._feed = None

    @property
    def notifications(self) -> str:
        """How folders are watched, in words (the watcher's log)."""
        if self._feed is None:
            return "every poll stats every watched file"
        if self._feed.failed:
            return self._feed.failed
        if not self._feed.paths:
            return "no folders; each watched file is one stat a poll"
        return f"file notifications for {len(self._feed.paths)} folder(s)"

    def _quiet_folders(self) -> set[str]:
        """The watched folders nothing was written under since the last poll (none without
        ``notify``)."""
        if self._feed is None:
            return set()
        return set(self._feed.paths) - self._feed.take()

    def stat_key(self, path: str) -> StatKey | None:
        """The stat of ``path`` at the last poll (for a directory, of every file in it); None
        when it was missing. Two polls seeing the same key: nothing wrote to it in between."""
        return self._keys.get(Path(os.path.normpath(path)).as_posix())

    # -------------------------------------------------------------------- the workspace

    def _current(self, path: str, legacy: bool, table: bool) -> tuple[str | None, int | None]:
        full = self.root / path
        try:
            info = os.stat(full)
        except OSError:  # gone (or unreadable, which DVC could not hash either)
            self._keys[path] = None
            return None, None
        if not stat.S_ISDIR(info.st_mode):
            self._keys[path] = _key(info)
            hashed = self._file(path, full, info, legacy, table)
            return hashed.md5, hashed.rows
        self.walks += 1
        entries, keys = [], []
        for rel, file_info in sorted(_walk(full), key=lambda item: item[0]):
            keys.append((rel, _key(file_info)))
            # A plain string: an idle poll of 1,000 files makes no Path object per file.
            hashed = self._file(f"{path}/{rel}", os.path.join(full, rel), file_info, legacy, False)
            entries.append((rel, hashed.md5))
        self._keys[path] = (len(keys), hash(tuple(keys)))
        listing = tuple(entries)
        known = self._listings.get(path)
        if known is None or known[0] != listing:
            known = (listing, _tree_md5(listing))
            self._listings[path] = known
        return known[1], None

    def _file(
        self, path: str, full: str | Path, info: os.stat_result, legacy: bool, table: bool
    ) -> _Hashed:
        key = _key(info)
        known = self._hashed.get(path)
        if known is not None and known.key == key and known.legacy == legacy:
            return known
        try:
            md5, rows = file_md5(full, legacy=legacy, rows=table)
        except OSError:  # removed between the stat and the read: seen at the next poll
            return _Hashed(key, legacy, "", None)
        self.files_hashed += 1
        hashed = _Hashed(key, legacy, md5, rows)
        self._hashed[path] = hashed
        return hashed

    def _recorded_rows(self, md5: str) -> int | None:
        """Rows of the recorded version, from its copy in the local DVC cache if it is there."""
        if md5 not in self._cached_rows:
            rows = None
            for copy in (
                self._cache_dir / "files" / "md5" / md5[:2] / md5[2:],
                self._cache_dir / md5[:2] / md5[2:],  # DVC 2's layout
            ):
                if copy.is_file():
                    rows = _count_rows(copy)
                    break
            self._cached_rows[md5] = rows
        return self._cached_rows[md5]

    # ---------------------------------------------------------------------- the records

    def _record_files(self) -> list[Path]:
        """.dvc files and dvc.lock files (with their dvc.yaml, for a stage's wdir)."""
        found = {self.root / f"{path}.dvc": None for path in self.paths}
        listed = git(
            self.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
            "--", "*.dvc", "*dvc.lock",
        ).split("\0")  # fmt: skip
        for name in sorted(filter(None, listed)):
            path = self.root / name
            if name.endswith("dvc.lock"):
                found.update({path: None, path.with_name("dvc.yaml"): None})
            elif path not in found and self._names_watched(path):
                found[path] = None  # a .dvc file named otherwise (dvc add --file)
        return list(found)

    def _names_watched(self, dvcfile: Path) -> bool:
        return any(path in self.paths for path, _ in _parse_dvcfile(self.root, dvcfile))

    def _refresh_records(self) -> None:
        changed = False
        for source in self._sources:
            try:
                key: StatKey | None = _key(os.stat(source))
            except OSError:
                key = None
            if key != self._source_keys.get(source, ()):
                self._source_keys[source] = key
                changed = True
        if not changed:
            return
        own: dict[str, _Record] = {}
        deps: dict[str, _Record] = {}
        for source in self._sources:
            if source.name == "dvc.yaml":
                continue
            if source.name == "dvc.lock":
                parsed = _parse_lock(self.root, source)
            else:
                parsed = _parse_dvcfile(self.root, source)
            for path, record in parsed:
                (own if record.own else deps).setdefault(path, record)
        self._records = {**deps, **own}


def _key(info: os.stat_result) -> StatKey:
    return (info.st_size, info.st_mtime_ns, info.st_ino)


def _walk(folder: Path) -> Iterator[tuple[str, os.stat_result]]:
    """Every file under ``folder`` (symlinks followed) as (POSIX relative path, stat)."""
    stack = [("", folder)]
    while stack:
        prefix, here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            try:
                if entry.is_dir():
                    stack.append((rel + "/", Path(entry.path)))
                else:
                    yield rel, entry.stat()
            except OSError:  # removed meanwhile, or a dangling link
                continue


def _tree_md5(entries: tuple[tuple[str, str], ...]) -> str:
    """A directory's md5 as DVC records it: dvc_data's Tree listing, as JSON, hashed."""
    listing = [{"md5": md5, "relpath": rel} for rel, md5 in entries]
    data = json.dumps(listing, sort_keys=True).encode("utf-8")
    return hashlib.md5(data, usedforsecurity=False).hexdigest() + ".dir"


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # missing or half-written: read again when its stat changes


def _entries(base: Path, root: Path, items: Any, own: bool) -> list[tuple[str, _Record]]:
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("md5"), str):
            continue  # another hash (etag, cloud versioning): not compared here
        path = Path(os.path.relpath(os.path.normpath(base / str(item.get("path"))), root))
        legacy = item.get("hash") != "md5"
        found.append((path.as_posix(), _Record(item["md5"], legacy, own)))
    return found


def _parse_dvcfile(root: Path, dvcfile: Path) -> list[tuple[str, _Record]]:
    data = _load_yaml(dvcfile)
    if not isinstance(data, dict):
        return []
    base = dvcfile.parent / str(data.get("wdir") or ".")
    return _entries(base, root, data.get("outs"), own=True)


def _parse_lock(root: Path, lock: Path) -> list[tuple[str, _Record]]:
    data = _load_yaml(lock)
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        return []
    pipeline = _load_yaml(lock.with_name("dvc.yaml"))
    declared = pipeline.get("stages") if isinstance(pipeline, dict) else None
    found = []
    for name, stage in stages.items():
        if not isinstance(stage, dict):
            continue
        decl = declared.get(str(name).split("@", 1)[0]) if isinstance(declared, dict) else None
        wdir = decl.get("wdir") if isinstance(decl, dict) else None
        base = lock.parent / (wdir if isinstance(wdir, str) and "${" not in wdir else ".")
        found += _entries(base, root, stage.get("outs"), own=True)
        found += _entries(base, root, stage.get("deps"), own=False)
    return found


def _cache_dir(root: Path) -> Path:
    """The DVC cache: ``[cache] dir`` of .dvc/config.local or .dvc/config, else .dvc/cache."""
    for name in ("config.local", "config"):
        try:
            text = (root / ".dvc" / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]'\" ").lower()
            elif section == "cache" and "=" in line:
                key, value = (part.strip() for part in line.split("=", 1))
                if key == "dir" and value:
                    return (root / ".dvc" / os.path.expanduser(value)).resolve()
    return root / ".dvc" / "cache"

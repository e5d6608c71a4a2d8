"""Tail the JSON lines of BentoML's default monitor, safely across rotation and restarts.

``bentoml.monitor("iris")`` with the default monitor writes, per server worker N (from 1):

- ``LOG_PATH/iris/data/data.N.log``: one JSON object per logged row, the logged columns plus
  ``timestamp`` (``datetime.now().isoformat()``: naive, the server's local time),
  ``request_id`` and ``trace_id``. A ``TimedRotatingFileHandler`` rotates it at midnight
  (``when: D``) by renaming it ``data.N.log.YYYY-MM-DD`` and starting a new one; nothing is
  deleted.
- ``LOG_PATH/iris/schema/schema.N.log``: one JSON object per worker start, naming each
  column's role (feature, prediction, target) and type.

``LOG_PATH`` is ``monitoring`` relative to the served Bento's own folder unless the server is
started with :func:`monitor_environment` (verified with BentoML 1.4.40 ``bentoml serve``: the
key is per service, ``services.monitoring.options.log_path``; the v1 key
``monitoring.options.log_path`` is silently ignored).

:class:`MonitorReader` returns the rows written since its last pass: whole lines only (a
partial last line waits for the next pass), a file is followed by its inode so a rotated file
is finished under its new name, a file shorter than the offset read (truncated) or a new
inode is read from the start, and unparsable lines are skipped and counted. A file is also
known by its first line (a digest): one truncated and written again past the offset read
(``copytruncate``, or truncated between our listing and our read), or a new file on a
reused inode, starts differently and is read from the start too. Its
:meth:`MonitorReader.state` is plain JSON, for a collector to persist across restarts.
:meth:`MonitorReader.read_outcomes` reads the same rows without their features (a time,
request id, prediction and target each: what a comparison of predictions needs).

Lines are parsed a few hundred at a time as one JSON array when that is sure to give each
line's own object (:func:`parse_objects`), else one by one; a row's second is looked up by its
timestamp's first 19 characters once the reader has seen that second.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from itertools import repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeGuard, TypeVar

__all__ = [
    "CONFIG_OVERRIDES_VARIABLE",
    "MonitorReader",
    "MonitorRow",
    "MonitorSchema",
    "Outcome",
    "label_text",
    "monitor_environment",
    "monitor_folders",
    "parse_objects",
]

# BentoML's JSON config override (BENTOML_CONFIG_OPTIONS, its older "k=v" form, is
# deprecated and splits values on whitespace; the JSON form takes any path).
CONFIG_OVERRIDES_VARIABLE = "BENTOML_CONFIG_OVERRIDES"
# Columns the default monitor adds to every row.
TIME, REQUEST_ID, TRACE_ID = "timestamp", "request_id", "trace_id"
# Bytes read per pass over all files: the first pass over a large backlog is spread out.
READ_BUDGET = 8 * 1024 * 1024
# Problem lines kept per pass.
MAX_PROBLEMS = 10
# Bytes of a file's first line that identify it (its digest is kept with the offset).
HEAD_BYTES = 4096
# data.3.log (current) or data.3.log.2026-11-27 (rotated; any suffix).
_DATA_FILE = re.compile(r"data\.(\d+)\.log(?:\.(.+))?")
_SCHEMA_FILE = re.compile(r"schema\.(\d+)\.log(?:\..+)?")
# Lines parsed together as one JSON array.
BATCH = 512
# A timestamp's whole second as datetime.isoformat() writes it (then ".ffffff" or nothing).
_SECOND = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
# Seconds a reader remembers (one a second of log: cleared past this).
_SECONDS_KEPT = 4096
# What follows the second in the timestamps of many rows (joined by newlines): ".ffffff" or
# nothing each.
_TAILS = re.compile(r"(?:\.[0-9]{6})?(?:\n(?:\.[0-9]{6})?)*")
_second, _tail = itemgetter(slice(0, 19)), itemgetter(slice(19, None))
# request_id values that mean none.
_NO_ID = (None, "", "None")
R = TypeVar("R")


@dataclass(frozen=True)
class MonitorRow:
    """One logged row: its time (Unix seconds, UTC), request, features and outcome."""

    t: int
    request_id: str | None
    features: dict[str, float]
    prediction: str | None
    target: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "request_id": self.request_id,
            "features": dict(self.features),
            "prediction": self.prediction,
            "target": self.target,
        }


class Outcome(NamedTuple):
    """A logged row without its features (:meth:`MonitorReader.read_outcomes`)."""

    t: int
    request_id: str | None
    prediction: str | None
    target: str | None


@dataclass(frozen=True)
class MonitorSchema:
    """The columns of a monitor by role, in the order the service logged them."""

    features: tuple[str, ...] = ()
    predictions: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    # False when no schema file was found and the roles are guessed from the row itself.
    declared: bool = True


@dataclass
class _FileState:
    inode: int
    offset: int
    # "LENGTH:DIGEST" of the file's first line, once read: how a rewritten file is told.
    head: str | None = None


@dataclass
class _Pass:
    """What one read() found wrong, aggregated per file."""

    bad_lines: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def bad(self, name: str, count: int = 1) -> None:
        if count:
            self.bad_lines[name] = self.bad_lines.get(name, 0) + count

    def lines(self) -> list[str]:
        found = [f"data/{n}: {k} unparsable line(s) skipped" for n, k in self.bad_lines.items()]
        found += self.notes
        if len(found) > MAX_PROBLEMS:
            found = [*found[:MAX_PROBLEMS], f"{len(found) - MAX_PROBLEMS} more problems"]
        return found


class MonitorReader:
    """The new rows of one monitor folder (``LOG_PATH/NAME``, holding ``data/``, ``schema/``).

    ``state`` is what :meth:`state` returned earlier (``{file name: {"inode", "offset"}}``);
    without it every file present is read from its start. ``naive_tz`` is the zone of
    timestamps without an offset: BentoML writes the server's local time, so the default
    (None) reads them as this machine's local time; pass ``datetime.UTC`` for UTC.
    """

    def __init__(
        self,
        folder: Path,
        state: Mapping[str, Any] | None = None,
        *,
        naive_tz: tzinfo | None = None,
        read_budget: int = READ_BUDGET,
    ) -> None:
        self.folder = Path(folder)
        self.naive_tz = naive_tz
        self.read_budget = read_budget
        self._files: dict[str, _FileState] = _load_state(state)
        self._schema_key: tuple[str, int, int] | None = None
        self._schema = MonitorSchema(declared=False)
        # The last pass's problems, one line each; ``skipped`` counts bad lines ever seen.
        self.problems: list[str] = []
        self.skipped = 0
        # The Unix second of each timestamp second seen ("2027-01-15T07:00:00"): a row's
        # second costs a lookup, not a parse.
        self._seconds: dict[str, int] = {}

    @property
    def schema(self) -> MonitorSchema:
        return self._schema

    def state(self) -> dict[str, Any]:
        """``{file name: {"inode": int, "offset": int}}``: JSON, for the next reader."""
        return {
            name: {"inode": s.inode, "offset": s.offset, **({"head": s.head} if s.head else {})}
            for name, s in sorted(self._files.items())
        }

    def read(self) -> list[MonitorRow]:
        """Rows completed since the last call, oldest file first, then by time."""
        rows = self._read(self._rows)
        rows.sort(key=attrgetter("t"))
        return rows

    def read_outcomes(self) -> list[Outcome]:
        """The rows :meth:`read` would return, without their features: each row's time,
        request id, prediction and target (a few times cheaper per row)."""
        rows = self._read(self._outcomes)
        rows.sort(key=itemgetter(0))
        return rows

    # ------------------------------------------------------------------ internals

    def _read(self, convert: Callable[[list[bytes]], tuple[list[R], int]]) -> list[R]:
        """Rows completed since the last call (``convert`` makes them of a file's new lines,
        and counts the unparsable ones), oldest file first."""
        found = _Pass()
        self._load_schema(found)
        previous = self._files
        by_inode = {s.inode: s for s in previous.values()}
        files: dict[str, _FileState] = {}
        rows: list[R] = []
        budget = self.read_budget
        for name, stat in self._data_files():
            known = previous.get(name)
            if known is None or known.inode != stat.st_ino:
                # renamed by rotation: finish it where we were; else a new file from the start
                known = by_inode.get(stat.st_ino, _FileState(stat.st_ino, 0))
            state = _FileState(stat.st_ino, known.offset, known.head)
            if stat.st_size < state.offset:
                found.notes.append(f"data/{name}: shorter than already read, read again")
                state = _FileState(stat.st_ino, 0)
            if stat.st_size > state.offset and budget > 0:
                state, used, new_rows = self._read_file(name, state, budget, found, convert)
                rows.extend(new_rows)
                budget -= used
            files[name] = state
        self._files = files
        if rows and not self._schema.declared:
            found.notes.append("no schema file: roles guessed from the column names")
        self.problems = found.lines()
        self.skipped += sum(found.bad_lines.values())
        return rows

    def _data_files(self) -> list[tuple[str, os.stat_result]]:
        """Data files with their stat, in writing order: per worker, rotated ones first."""
        folder = self.folder / "data"
        entries: list[tuple[tuple[int, int, str], str, os.stat_result]] = []
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        for name in names:
            match = _DATA_FILE.fullmatch(name)
            if match is None:
                continue
            try:
                stat = (folder / name).stat()
            except FileNotFoundError:  # rotated away between listdir and stat
                continue
            suffix = match.group(2)
            order = (int(match.group(1)), 0 if suffix else 1, suffix or "")
            entries.append((order, name, stat))
        entries.sort(key=lambda entry: entry[0])
        return [(name, stat) for _, name, stat in entries]

    def _read_file(
        self,
        name: str,
        known: _FileState,
        budget: int,
        found: _Pass,
        convert: Callable[[list[bytes]], tuple[list[R], int]],
    ) -> tuple[_FileState, int, list[R]]:
        """Parse the whole lines of ``name`` from ``known.offset``: (its new state, bytes
        used, rows). A file that no longer starts with the line read first is read again
        from the start."""
        offset, head = known.offset, known.head
        try:
            with open(self.folder / "data" / name, "rb") as handle:
                if os.fstat(handle.fileno()).st_ino != known.inode:
                    return known, 0, []  # rotated since listed: the next pass follows it
                if offset and head and _head(handle) != head:
                    found.notes.append(
                        f"data/{name}: rewritten since it was read (truncated or replaced), "
                        "read again from the start"
                    )
                    offset, head = 0, None
                handle.seek(offset)
                chunk = handle.read(budget)
                end = chunk.rfind(b"\n")
                if end < 0 and len(chunk) == budget:
                    if budget < self.read_budget:
                        return _FileState(known.inode, offset, head), budget, []  # next pass
                    # One line longer than the whole budget: skip it rather than stall on it.
                    skipped = _skip_line(handle)
                    if skipped is None:
                        return _FileState(known.inode, offset, head), budget, []  # the rest
                    found.bad(name)
                    offset += budget + skipped
                    return _FileState(known.inode, offset, head or _head(handle)), budget, []
                if end >= 0 and head is None:
                    head = _head(handle)
        except FileNotFoundError:
            return known, 0, []
        state = _FileState(known.inode, offset if end < 0 else offset + end + 1, head)
        if end < 0:
            return state, 0, []  # a partial line only: it waits for its newline
        rows, bad = convert(chunk[:end].split(b"\n"))
        found.bad(name, bad)
        return state, end + 1, rows

    def _rows(self, lines: list[bytes]) -> tuple[list[MonitorRow], int]:
        """The rows of ``lines`` (blank ones left out), and how many were unparsable."""
        rows: list[MonitorRow] = []
        bad = 0
        for records in _parse_lines(lines):
            found, unparsable = self._rows_of(records)
            rows.extend(found)
            bad += unparsable
        return rows, bad

    def _rows_of(self, records: list[Any]) -> tuple[list[MonitorRow], int]:
        """The rows of parsed lines (None: not JSON), and how many are no row."""
        rows: list[MonitorRow] = []
        for record, t in zip(records, self._record_times(records), strict=True):
            row = self._row(record, t)
            if row is not None:
                rows.append(row)
        return rows, len(records) - len(rows)

    def _outcomes(self, lines: list[bytes]) -> tuple[list[Outcome], int]:
        """The outcomes of ``lines`` (blank ones left out), and how many were unparsable:
        what :meth:`_rows` makes of them, column by column."""
        outcomes: list[Outcome] = []
        bad = 0
        schema = self._schema
        for records in _parse_lines(lines):
            if not schema.declared or set(map(type, records)) != {dict}:
                rows, _ = self._rows_of(records)
                bad += len(records) - len(rows)
                outcomes.extend(Outcome(r.t, r.request_id, r.prediction, r.target) for r in rows)
                continue
            times = self._unix_times(map(dict.get, records, repeat(TIME)))
            ids = _ids(list(map(dict.get, records, repeat(REQUEST_ID))))
            predictions = _column(records, schema.predictions)
            targets = _column(records, schema.targets)
            before = len(outcomes)
            outcomes.extend(
                map(
                    tuple.__new__,
                    repeat(Outcome),
                    zip(times, ids, predictions, targets, strict=True),
                )
            )
            if None in times:  # no time: the row is unparsable
                kept = [row for row in outcomes[before:] if row[0] is not None]
                bad += len(outcomes) - before - len(kept)
                outcomes[before:] = kept
        return outcomes, bad

    def _record_times(self, records: list[Any]) -> list[int | None]:
        return self._unix_times(map(_get_field, records, repeat(TIME)))

    def _unix_times(self, values: Iterable[Any]) -> list[int | None]:
        """:func:`_unix_time` of each value. Those written as datetime.isoformat() writes
        them (a second, then ".ffffff" or nothing) are looked up by their second, each second
        parsed once (:meth:`_learn`)."""
        values = list(values)
        tails = "\n".join(map(_tail, values)) if set(map(type, values)) == {str} else None
        if tails is None or tails.count("\n") >= len(values) or not _TAILS.fullmatch(tails):
            return [self._unix_time(value) for value in values]
        seconds = list(map(_second, values))
        for second in set(seconds).difference(self._seconds):
            self._learn(second)
        times: list[int | None] = list(map(self._seconds.get, seconds))
        if None in times:  # not a plain second: parsed whole
            for i, t in enumerate(times):
                if t is None:
                    times[i] = _unix_time(values[i], self.naive_tz)
        return times

    def _unix_time(self, value: Any) -> int | None:
        """:func:`_unix_time` of one value (looked up as :meth:`_unix_times` does)."""
        if type(value) is not str:
            return None
        rest = value[19:]
        if not rest or (
            len(rest) == 7 and rest[0] == "." and rest[1:].isdigit() and rest.isascii()
        ):
            t = self._seconds.get(value[:19]) or self._learn(value[:19])
            if t is not None:
                return t
        return _unix_time(value, self.naive_tz)

    def _learn(self, second: str) -> int | None:
        """The Unix second of "YYYY-MM-DDTHH:MM:SS", kept for the timestamps of that second,
        or None (not of that form, or not between 1970 and 2242: there the fraction of a
        second could change the whole second read)."""
        if _SECOND.fullmatch(second) is None:
            return None
        t = _unix_time(second, self.naive_tz)
        if t is None or not 0 < t < 2**33:
            return None
        if len(self._seconds) >= _SECONDS_KEPT:
            self._seconds.clear()
        self._seconds[second] = t
        return t

    def _row(self, record: Any, t: int | None) -> MonitorRow | None:
        """The row of a parsed line (``t`` its time), or None when it is no row."""
        if not isinstance(record, dict) or t is None:
            return None
        schema = self._schema if self._schema.declared else _guess_schema(record)
        features = {}
        for column in schema.features:
            value = record.get(column)
            # Numbers only: categorical or sequence features have no place in the drift math.
            if _is_number(value) and math.isfinite(value):
                features[column] = float(value)
        request_id = record.get(REQUEST_ID)
        return MonitorRow(
            t=t,
            request_id=None if request_id in (None, "", "None") else str(request_id),
            features=features,
            prediction=_first(record, schema.predictions),
            target=_first(record, schema.targets),
        )

    def _load_schema(self, found: _Pass) -> None:
        """Roles from the newest schema file; read again only when it changed."""
        folder = self.folder / "schema"
        newest: tuple[int, str, int] | None = None
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            names = []
        for name in names:
            if _SCHEMA_FILE.fullmatch(name) is None:
                continue
            try:
                stat = (folder / name).stat()
            except FileNotFoundError:
                continue
            candidate = (stat.st_mtime_ns, name, stat.st_size)
            if newest is None or candidate > newest:
                newest = candidate
        if newest is None:
            return
        key = (newest[1], newest[0], newest[2])
        if key == self._schema_key:
            return
        schema = _parse_schema(folder / newest[1])
        if schema is None:
            found.notes.append(f"schema/{newest[1]}: no readable schema line")
            return
        self._schema_key = key
        self._schema = schema


def _parse_lines(lines: list[bytes]) -> Iterator[list[Any]]:
    """What each non-blank line holds (None when it is not JSON), BATCH lines at a time."""
    for first in range(0, len(lines), BATCH):
        batch = lines[first : first + BATCH]
        records = parse_objects(batch)
        yield records if records is not None else [_parse(line) for line in batch if line.strip()]


def parse_objects(lines: list[bytes]) -> list[Any] | None:
    """What each of ``lines`` parses to alone (``json.loads``), all parsed as one JSON array
    (a few times faster than one by one); None unless that is sure to be the same: every
    line is "{...}" and none holds "[", "]" or NUL. Joined by a newline and a comma, no
    string runs from one line into the next (JSON strings hold no raw newline), and after a
    line's last "}" the comma and the next line's "{" can continue no object (a member is
    a string) and no array (there is none): each joining comma separates two elements, so
    as many elements as lines means each line is one, what it parses to alone. (NUL: a line
    with NUL among its first bytes is read alone as UTF-16 or UTF-32.)"""
    joined = b"\n,".join(lines)
    if (
        joined[:1] != b"{"
        or joined[-1:] != b"}"
        or joined.count(b"}\n,{") != len(lines) - 1
        or b"[" in joined
        or b"]" in joined
        or b"\0" in joined
    ):
        return None
    try:
        records = json.loads(b"[" + joined + b"]")
    except ValueError:  # includes UnicodeDecodeError
        return None
    return records if len(records) == len(lines) else None


def _parse(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        return None


def _get_field(record: Any, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else None


def _ids(values: list[Any]) -> list[str | None]:
    """Each row's request id as MonitorRow has it (none: None, "" or "None")."""
    if set(map(type, values)) == {str} and "" not in values and "None" not in values:
        return values
    return [None if value in _NO_ID else str(value) for value in values]


def _column(records: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str | None]:
    """:func:`_first` of each record."""
    if not columns:
        return [None] * len(records)
    if len(columns) > 1:
        return [_first(record, columns) for record in records]
    values = list(map(dict.get, records, repeat(columns[0])))
    if set(map(type, values)) == {str}:
        return values
    return [
        value if type(value) is str else None if value is None else label_text(value)
        for value in values
    ]


def _load_state(state: Mapping[str, Any] | None) -> dict[str, _FileState]:
    files: dict[str, _FileState] = {}
    for name, entry in (state or {}).items():
        try:
            head = entry.get("head")
            files[str(name)] = _FileState(
                int(entry["inode"]),
                max(0, int(entry["offset"])),
                head if isinstance(head, str) else None,  # saved by an older relman: none
            )
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # a damaged entry: the file is read again from its start
    return files


def _head(handle: BinaryIO) -> str:
    """``LENGTH:DIGEST`` of the first line of an open file (up to HEAD_BYTES of it), the
    file position kept. Called once the first line is whole."""
    position = handle.tell()
    handle.seek(0)
    first = handle.read(HEAD_BYTES)
    handle.seek(position)
    end = first.find(b"\n")
    line = first if end < 0 else first[: end + 1]
    return f"{len(line)}:{hashlib.blake2b(line, digest_size=12).hexdigest()}"


def _skip_line(handle: BinaryIO) -> int | None:
    """Bytes up to and including the next newline, or None when the file ends first."""
    skipped = 0
    while block := handle.read(1024 * 1024):
        at = block.find(b"\n")
        if at >= 0:
            return skipped + at + 1
        skipped += len(block)
    return None


def _parse_schema(path: Path) -> MonitorSchema | None:
    """The last valid schema object of a schema file."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        columns = record.get("columns") if isinstance(record, dict) else None
        if not isinstance(columns, list):
            continue
        roles: dict[str, list[str]] = {"feature": [], "prediction": [], "target": []}
        for column in columns:
            if isinstance(column, dict) and isinstance(column.get("name"), str):
                role = column.get("role")
                if role in roles:
                    roles[role].append(column["name"])
        return MonitorSchema(
            tuple(roles["feature"]), tuple(roles["prediction"]), tuple(roles["target"])
        )
    return None


def _guess_schema(record: dict[str, Any]) -> MonitorSchema:
    """Without a schema: "prediction" and "target" by name, every other number a feature."""
    reserved = {TIME, REQUEST_ID, TRACE_ID, "prediction", "target"}
    features = tuple(k for k, v in record.items() if k not in reserved and _is_number(v))
    return MonitorSchema(
        features,
        ("prediction",) if "prediction" in record else (),
        ("target",) if "target" in record else (),
        declared=False,
    )


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _first(record: dict[str, Any], columns: tuple[str, ...]) -> str | None:
    for column in columns:
        value = record.get(column)
        if value is not None:
            return label_text(value)
    return None


def label_text(value: Any) -> str:
    """A class label as text: 1 and 1.0 both read "1", as the drift math compares them."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


def _unix_time(value: Any, naive_tz: tzinfo | None) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None and naive_tz is not None:
        moment = moment.replace(tzinfo=naive_tz)
    # A naive datetime's timestamp() is that of the local time of this machine.
    return int(moment.timestamp())  # whole seconds (a record before 1970 is no concern)


def monitor_folders(log_path: Path) -> dict[str, Path]:
    """``{monitor name: folder}`` of the monitors that wrote under ``log_path``."""
    try:
        children = sorted(log_path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {child.name: child for child in children if (child / "data").is_dir()}


def monitor_environment(log_path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """``{BENTOML_CONFIG_OVERRIDES: ...}`` that points a `bentoml serve` at ``log_path``.

    Merged into an override the environment already carries. ``services.monitoring`` is
    the default of every service of the Bento; a service that sets ``monitoring`` in its own
    ``@bentoml.service(...)`` config keeps its own log_path.
    """
    overrides: dict[str, Any] = {}
    if existing := environ.get(CONFIG_OVERRIDES_VARIABLE):
        try:
            loaded = json.loads(existing)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            overrides = loaded
    level = overrides
    for key in ("services", "monitoring", "options"):
        if not isinstance(level.get(key), dict):
            level[key] = {}
        level = level[key]
    level["log_path"] = str(Path(log_path).absolute())
    return {CONFIG_OVERRIDES_VARIABLE: json.dumps(overrides)}

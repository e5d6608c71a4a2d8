"""Shadow traffic in the proxy (:mod:`core.targets.proxy`): a copy of a request the stable
answered, sent to the candidate in the background over a connection of its own, its answer
read in full, compared with the stable's and dropped. At most ``SHADOW_LIMIT`` copies are out
at once (a slow shadow gets fewer, never a pile of tasks), and a failing shadow costs the
client nothing. Each copy gives an access-log record of role ``shadow`` and a line of
``shadow.log`` with both answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h11

from core.targets.access_log import AccessLog
from core.targets.proxy_routes import Side

SHADOW_LIMIT = 32  # copies in flight at once; a copy beyond that is dropped
SHADOW_TIMEOUT = 30.0  # a copy unanswered after this counts as failed
BODY_CAP = 64 * 1024  # answers kept to compare (and logged) up to this size
READ_SIZE = 1 << 16
SHADOW_FAILED = 502  # the status a copy gets when the shadow did not answer


def agreement(
    stable_status: int, stable_body: bytes | None, shadow_status: int, shadow_body: bytes | None
) -> bool | None:
    """True when both answered 2xx with equal JSON, False when both answered 2xx with JSON
    that differs, None when they cannot be compared (an error, a body not JSON or too big)."""
    if not (200 <= stable_status < 300 and 200 <= shadow_status < 300):
        return None
    if stable_body is None or shadow_body is None:
        return None
    try:
        return bool(json.loads(stable_body) == json.loads(shadow_body))
    except ValueError:
        return None


def shown(body: bytes | None) -> Any:
    """A body as shadow.log keeps it: its JSON, else its text (None when not kept)."""
    if body is None:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")


class Capture:
    """The first BODY_CAP bytes of a body; ``body`` is None once it grew past them."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.over = False

    def add(self, data: bytes) -> None:
        if not self.over:
            self.data += data
            self.over = len(self.data) > BODY_CAP

    @property
    def body(self) -> bytes | None:
        return None if self.over else bytes(self.data)


class ShadowFailed(Exception):
    """The shadow did not answer in full; the reason is one short phrase."""


class Mirrors:
    """The copies in flight, and where their outcome is written."""

    def __init__(
        self,
        shadow_log: Path,
        access: Callable[..., None],
        reason: Callable[[BaseException], str],
        connect_timeout: float,
    ) -> None:
        self.path = shadow_log
        self.access = access
        self.reason = reason
        self.connect_timeout = connect_timeout
        self.tasks: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.log: AccessLog | None = None  # opened with the first copy

    def admit(self) -> bool:
        """Whether a copy may go out now (the stable's answer is then kept to compare); a
        copy refused is counted in ``dropped``."""
        if len(self.tasks) < SHADOW_LIMIT:
            return True
        self.dropped += 1
        return False

    def send(
        self,
        side: Side,
        request: h11.Request,
        events: list[h11.Event],
        stable: tuple[int, float, bytes | None],
    ) -> bool:
        """Start the copy of ``request`` (``events``: its head and whole body as sent to the
        stable) to ``side``; ``stable`` is the stable's status, ms and body. False when
        SHADOW_LIMIT copies are out already (the copy is dropped)."""
        if not self.admit():
            return False
        task = asyncio.create_task(self._mirror(side, request, list(events), stable))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    async def _mirror(
        self,
        side: Side,
        request: h11.Request,
        events: list[h11.Event],
        stable: tuple[int, float, bytes | None],
    ) -> None:
        started = time.perf_counter()
        error = None
        try:
            status, sent, body = await asyncio.wait_for(
                self._exchange(side, events), SHADOW_TIMEOUT
            )
        except TimeoutError:
            status, sent, body = SHADOW_FAILED, 0, None
            error = f"no answer within {SHADOW_TIMEOUT:g} s"
        except (OSError, ShadowFailed, h11.ProtocolError) as exc:
            status, sent, body = SHADOW_FAILED, 0, None
            error = self.reason(exc)
        ms = round((time.perf_counter() - started) * 1000, 3)
        stable_status, stable_ms, stable_body = stable
        agree = agreement(stable_status, stable_body, status, body)
        self.access(request, status, ms, side, sent, agree=agree)
        shadow: dict[str, Any] = {"status": status, "ms": ms, "body": shown(body)}
        if error:
            shadow["error"] = error
        request_body = b"".join(e.data for e in events if isinstance(e, h11.Data))
        record = {
            "t": time.time(),
            "path": request.target.split(b"?", 1)[0].decode("latin-1"),
            "request": shown(request_body) if 0 < len(request_body) <= BODY_CAP else None,
            "stable": {"status": stable_status, "ms": stable_ms, "body": shown(stable_body)},
            "shadow": shadow,
            "agree": agree,
        }
        if self.log is None:
            try:
                self.log = AccessLog(self.path)
            except OSError:
                return  # the access log has the copy's record; flush() says nothing of this
        self.log.write(record)

    async def _exchange(self, side: Side, events: list[h11.Event]) -> tuple[int, int, bytes | None]:
        """Send the copy on a new connection; its status, body size and (capped) body."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(side.host, side.port), self.connect_timeout
            )
        except TimeoutError:
            raise ShadowFailed(f"no connection within {self.connect_timeout:g} s") from None
        try:
            conn = h11.Connection(h11.CLIENT)
            head = events[0]
            assert isinstance(head, h11.Request)
            headers = [*head.headers.raw_items(), (b"connection", b"close")]
            first = h11.Request(method=head.method, target=head.target, headers=headers)
            writer.write(b"".join(conn.send(event) or b"" for event in [first, *events[1:]]))
            await writer.drain()
            status, size, capture = 0, 0, Capture()
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(READ_SIZE))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    capture.add(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return status, size, capture.body
                elif isinstance(event, h11.ConnectionClosed):
                    raise ShadowFailed("closed the connection without answering")
        finally:
            writer.close()

    def flush(self) -> str | None:
        return self.log.flush() if self.log else None

    async def close(self) -> None:
        """Cancel the copies still out, then write out the shadow log."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.log:
            with contextlib.suppress(OSError):
                self.log.flush()
            self.log.close()

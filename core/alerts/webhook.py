"""Alert webhooks: one JSON POST per alert announced, and the posts kept while the endpoint
fails.

:func:`send_webhook` posts one document and answers with None or one error line.
:class:`Outbox` delivers the collector's posts not delivered yet, oldest first. They live in
the metric store (``webhook_outbox``), queued in the very transaction that stores the alert
changes they announce, so neither a failing endpoint nor a collector killed before
delivery loses one: each pass tries them again in order, once, and stops at the first
failure; a delivered post is deleted from the store at once. Beyond ``MAX_PENDING_POSTS``
the oldest are dropped, with a line that says so. Delivery is at least once: a collector
killed between a 2xx answer and the deletion posts that one again when it restarts.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

# Webhook posts held while the endpoint fails; the oldest are dropped beyond.
MAX_PENDING_POSTS = 100


def announcer(
    url: str, states: Sequence[str], documents: Sequence[dict[str, Any]]
) -> Callable[[Sequence[str | None]], list[tuple[str, dict[str, Any]]]]:
    """The posts to ``url`` of a minute's alert transitions (their ``states`` and
    ``documents``), given the state each one found its alert in, in the transaction that
    stores them (store.metrics.store.MetricStore.record_minute). On-call hears of an alert that
    starts firing and of the resolution of one that fired; not of a pending one that
    cleared, nor twice of a change the store already holds (a minute judged again after a
    crash finds its own state: its posts were queued the first time). Changes stored after
    the transitions (the refreshed lines of open alerts) announce nothing, nor does a
    transition ``grouped_with`` a rule of the same cause that already paged."""

    def announce(before: Sequence[str | None]) -> list[tuple[str, dict[str, Any]]]:
        return [
            (url, document)
            for state, document, was in zip(states, documents, before[: len(states)], strict=True)
            if not document.get("grouped_with")
            and (
                (state == "firing" and was != "firing") or (state == "resolved" and was == "firing")
            )
        ]

    return announce


class PostStore(Protocol):
    """Where the posts wait (store.metrics.store.MetricStore)."""

    def webhook_posts(self) -> list[Any]: ...

    def remove_webhook_posts(self, ids: Sequence[int]) -> None: ...


class Outbox:
    """The webhook posts a store holds, delivered in order."""

    def __init__(self, store: PostStore) -> None:
        self.store = store
        # Delivered (or dropped) but not deleted yet: the store was locked just then.
        self._gone: list[int] = []

    @property
    def posts(self) -> list[Any]:
        """The posts not delivered yet, oldest first (store.metrics.store.WebhookPost)."""
        gone = set(self._gone)
        return [post for post in self.store.webhook_posts() if post.id not in gone]

    def deliver(self) -> list[str]:
        """Post the documents waiting, oldest first; the first failure keeps it and those
        after it for the next call (in order, one try per call). The problem lines."""
        problems: list[str] = []
        free = self._forget()
        posts = self.posts
        if len(posts) > MAX_PENDING_POSTS:
            dropped = len(posts) - MAX_PENDING_POSTS
            free = self._forget([post.id for post in posts[:dropped]], free)
            del posts[:dropped]
            problems.append(
                f"webhook: the {dropped} oldest undelivered alert post(s) dropped; "
                f"{MAX_PENDING_POSTS} are kept while the endpoint fails"
            )
        for done, post in enumerate(posts):
            problem = send_webhook(post.url, post.document)
            if problem:
                problems.append(f"{problem}; {len(posts) - done} post(s) kept, tried again")
                break
            # Deleted at once: a collector killed now would post it again on restart.
            free = self._forget([post.id], free)
        return problems

    def _forget(self, ids: Sequence[int] = (), free: bool = True) -> bool:
        """Delete ``ids`` and those a locked store kept before from the store, unless it
        was found locked already (not ``free``): they are skipped meanwhile, and deleted
        by a later call. Whether the store took the deletion."""
        from store.metrics.store import MetricStoreBusy

        self._gone.extend(ids)
        if not self._gone or not free:
            return free
        try:
            self.store.remove_webhook_posts(self._gone)
        except MetricStoreBusy:
            return False
        self._gone = []
        return True


def send_webhook(url: str, payload: Mapping[str, Any], timeout: float = 5) -> str | None:
    """POST ``payload`` as JSON to ``url``. None when answered 2xx, else one error line
    (``webhook http://...: HTTP 500 Internal Server Error``); never raises on network
    errors. Only http and https URLs."""
    if not url.startswith(("http://", "https://")):
        return f"webhook {url}: not an http(s) URL"
    try:
        body = json.dumps(payload, default=str).encode()
    except (TypeError, ValueError) as exc:
        return f"webhook {url}: payload is not JSON ({exc})"
    try:
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "relman-alerts"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
            response.read(65536)
    except urllib.error.HTTPError as exc:
        return f"webhook {url}: HTTP {exc.code} {exc.reason}"
    except urllib.error.URLError as exc:
        return f"webhook {url}: {_reason(exc.reason)}"
    except (OSError, ValueError, http.client.HTTPException) as exc:  # not HTTP there, too
        return f"webhook {url}: {_reason(exc)}"
    if not 200 <= status < 300:
        return f"webhook {url}: HTTP {status}"
    return None


def _reason(reason: object) -> str:
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, TimeoutError) or text == "timed out":
        return "timed out"
    return text

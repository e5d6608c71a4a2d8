"""Alert webhooks: one JSON POST per alert announced, and the posts kept while the endpoint
fails.

:func:`send_webhook` posts one document and answers with None or one error line.
:class:`Outbox` delivers the collector's posts not delivered yet, oldest first. They live in
the metric store (``webhook_outbox``), queued in the very transaction that stores the alert
changes they announce, so neither a failing endpoint nor a collector killed before
delivery loses one: each pass tries them again in order, once, and stops at the first
failure of each endpoint (the others go on); a delivered post is deleted from the store at
once. Beyond ``MAX_PENDING_POSTS`` the oldest are dropped, with a line that says so.
Delivery is at least once: a collector killed between a 2xx answer and the deletion posts
that one again when it restarts.

Posts to ``[monitoring] alertmanager_url`` go through the same outbox: the alert's entry is
kept, and its Alertmanager payload built when it is sent (core.alerts.alertmanager_relay),
which also posts the firing alerts again while they fire.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from core.alerts.alertmanager import Alertmanager, alerts_url, is_alerts_url
from core.alerts.alertmanager_relay import Relay

# Webhook posts held while the endpoint fails; the oldest are dropped beyond.
MAX_PENDING_POSTS = 100
# The firing alerts an Alertmanager is posted again, at most.
MAX_REPOSTED = 1000

Announce = Callable[[Sequence[str | None]], list[tuple[str, dict[str, Any]]]]


def announcer(
    url: str | None,
    states: Sequence[str],
    documents: Sequence[dict[str, Any]],
    alertmanager: str | None = None,
) -> Announce | None:
    """The posts to the webhook ``url`` and to the Alertmanager at ``alertmanager`` (its
    base URL) of a minute's alert transitions (their ``states`` and ``documents``), given the
    state each one found its alert in, in the transaction that stores them
    (store.metrics.store.MetricStore.record_minute); None when there is neither. On-call
    hears of an alert that starts firing and of the resolution of one that fired; not of a
    pending one that cleared, nor twice of a change the store already holds (a minute judged
    again after a crash finds its own state: its posts were queued the first time). Changes
    stored after the transitions (the refreshed lines of open alerts) announce nothing, nor
    does a transition ``grouped_with`` a rule of the same cause that already paged, to the
    webhook (Alertmanager gets every alert: its routes group them)."""
    if not url and not alertmanager:
        return None
    manager = alerts_url(alertmanager) if alertmanager else None

    def announce(before: Sequence[str | None]) -> list[tuple[str, dict[str, Any]]]:
        posts: list[tuple[str, dict[str, Any]]] = []
        for state, document, was in zip(states, documents, before[: len(states)], strict=True):
            if not (
                (state == "firing" and was != "firing") or (state == "resolved" and was == "firing")
            ):
                continue
            if url and not document.get("grouped_with"):
                posts.append((url, document))
            if manager:
                posts.append((manager, document))
        return posts

    return announce


class PostStore(Protocol):
    """Where the posts wait, and the alerts (store.metrics.store.MetricStore)."""

    def webhook_posts(self) -> list[Any]: ...

    def remove_webhook_posts(self, ids: Sequence[int]) -> None: ...

    def alerts(self, state: str | None = None, *, limit: int = 100) -> list[Any]: ...


class Outbox:
    """The webhook and Alertmanager posts a store holds, delivered in order."""

    def __init__(self, store: PostStore, relay: Relay | None = None) -> None:
        self.store = store
        # Delivered (or dropped) but not deleted yet: the store was locked just then.
        self._gone: list[int] = []
        self.relay = relay if relay is not None else Relay()

    @property
    def posts(self) -> list[Any]:
        """The posts not delivered yet, oldest first (store.metrics.store.WebhookPost)."""
        gone = set(self._gone)
        return [post for post in self.store.webhook_posts() if post.id not in gone]

    def deliver(
        self, alertmanager: Alertmanager | None = None, now: float | None = None
    ) -> list[str]:
        """Post the documents waiting, oldest first; the first failure of an endpoint keeps
        it and the endpoint's posts after it for the next call (in order, one try per
        call). Then, unless it just failed, the firing alerts are posted again to
        ``alertmanager`` when due at ``now`` (the collector's clock). The problem lines."""
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
        failed: set[str] = set()  # endpoints whose posts wait for the next call
        for done, post in enumerate(posts):
            # An Alertmanager's posts go to the one relman.toml names now (it may have moved).
            url = post.url
            if alertmanager is not None and is_alerts_url(url):
                url = alertmanager.alerts_url
            if url in failed:
                continue
            if is_alerts_url(url):
                lines, delivered = self._to_alertmanager(url, post, alertmanager)
                problems.extend(lines)
            else:
                problem = send_webhook(post.url, post.document)
                delivered = problem is None
                if problem:
                    kept = sum(later.url == post.url for later in posts[done:])
                    problems.append(f"{problem}; {kept} post(s) kept, tried again")
            if not delivered:
                failed.add(url)
                continue
            # Deleted at once: a collector killed now would post it again on restart.
            free = self._forget([post.id], free)
        if alertmanager is not None and alertmanager.alerts_url not in failed:
            when = now if now is not None else self.relay.wall()
            problems.extend(self.relay.repost(alertmanager, self._firing, when))
        return problems

    def _to_alertmanager(
        self, url: str, post: Any, alertmanager: Alertmanager | None
    ) -> tuple[list[str], bool]:
        """One post to the Alertmanager at ``url``: the lines to log, and whether it is done
        with (taken, or refused as wrong: it would be refused again, and would hold up those
        after it)."""
        posted = self.relay.send(url, post.document, alertmanager)
        if posted.problem is None:
            return self.relay.answered(url), True
        if posted.refused:
            name, state = post.document.get("name"), post.document.get("state")
            return [f"{posted.problem}; the post of {name} {state} dropped"], True
        return self.relay.failed(url, posted.problem), False

    def _firing(self) -> list[dict[str, Any]]:
        """The firing alerts of the store (none while it is locked: posted next time)."""
        from store.metrics.store import MetricStoreBusy

        try:
            rows = self.store.alerts(state="firing", limit=MAX_REPOSTED)
        except MetricStoreBusy:
            return []
        return [row.to_dict() for row in rows]

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

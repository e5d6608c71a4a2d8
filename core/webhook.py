"""Alert webhooks: one JSON POST per alert announced, and the posts kept while the endpoint
fails.

:func:`send_webhook` posts one document and answers with None or one error line.
:class:`Outbox` holds the collector's posts not delivered yet, oldest first: each pass
tries them again in order, once, and stops at the first failure; beyond
``MAX_PENDING_POSTS`` the oldest are dropped, with a line that says so. The collector saves
them in ``collector.json``, so a restart delivers them too.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

# Webhook posts held while the endpoint fails; the oldest are dropped beyond.
MAX_PENDING_POSTS = 100


class Outbox:
    """Webhook posts not delivered yet, oldest first: ``{"url", "document"}``."""

    def __init__(self, saved: object = None) -> None:
        """``saved``: :attr:`posts` as a collector saved them (anything else: none)."""
        self.posts: list[dict[str, Any]] = [
            post
            for post in (saved if isinstance(saved, list) else [])
            if isinstance(post, dict) and {"url", "document"} <= post.keys()
        ]

    def add(self, url: str, document: dict[str, Any]) -> None:
        self.posts.append({"url": url, "document": document})

    def deliver(self) -> list[str]:
        """Post the documents waiting, oldest first; the first failure keeps it and those
        after it for the next call (in order, one try per call). The problem lines."""
        problems: list[str] = []
        if len(self.posts) > MAX_PENDING_POSTS:
            dropped = len(self.posts) - MAX_PENDING_POSTS
            del self.posts[:dropped]
            problems.append(
                f"webhook: the {dropped} oldest undelivered alert post(s) dropped; "
                f"{MAX_PENDING_POSTS} are kept while the endpoint fails"
            )
        while self.posts:
            problem = send_webhook(self.posts[0]["url"], self.posts[0]["document"])
            if problem:
                problems.append(f"{problem}; {len(self.posts)} post(s) kept, tried again")
                break
            self.posts.pop(0)
        return problems


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
    except (TimeoutError, OSError, ValueError) as exc:
        return f"webhook {url}: {_reason(exc)}"
    if not 200 <= status < 300:
        return f"webhook {url}: HTTP {status}"
    return None


def _reason(reason: object) -> str:
    text = " ".join(str(reason).split()) or type(reason).__name__
    if isinstance(reason, TimeoutError) or text == "timed out":
        return "timed out"
    return text

"""Webhooks for finished jobs: who is subscribed (kept in Redis), and how a delivery is signed.

A subscriber gives a URL and, optionally, a secret. Every job that ends (succeeded, failed,
cancelled) is POSTed to it as JSON by the projector process (backfill_projector.webhooks), with
`X-Backfill-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact body under the secret, so
the receiver can tell the call came from this deployment. The console sets the subscription.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis

from backfill_bus.names import Names

SIGNATURE_HEADER = "X-Backfill-Signature"
MAX_URL_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    url: str
    secret: str = ""

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("a webhook URL starts with http:// or https:// and names a host")
        if len(self.url) > MAX_URL_LENGTH or any(c.isspace() for c in self.url):
            raise ValueError(f"a webhook URL has no spaces and at most {MAX_URL_LENGTH} characters")

    @property
    def shown_url(self) -> str:
        """The URL without credentials or query (which may carry a token), for events and logs."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _key(names: Names) -> str:
    return f"{names.namespace}webhooks:job-finished"


async def read_webhooks(redis: Redis, names: Names) -> list[WebhookSubscription]:
    raw: Any = await redis.get(_key(names))
    if raw is None:
        return []
    try:
        return [WebhookSubscription(**item) for item in json.loads(raw)]
    except (ValueError, TypeError):
        return []  # a hand-edited key gone bad: nobody is notified rather than a crash


async def write_webhook(redis: Redis, names: Names, url: str, secret: str = "") -> None:
    """Subscribe `url` to finished jobs (the one subscription the console manages)."""
    subscription = WebhookSubscription(url.strip(), secret)
    payload = [{"url": subscription.url, "secret": subscription.secret}]
    await redis.set(_key(names), json.dumps(payload))


async def clear_webhooks(redis: Redis, names: Names) -> None:
    await redis.delete(_key(names))


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """For receivers (and tests): a constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)

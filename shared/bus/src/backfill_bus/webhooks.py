"""Webhooks for finished jobs: who is subscribed (kept in Redis), and how a delivery is signed.

Each subscription gives a URL, a secret, and optional filters (sources, statuses). A subscription
made without a secret gets one generated (`new_secret`), which its maker is shown once: every
POST is signed.
Every job that ends (succeeded, failed, cancelled) is POSTed as JSON to every subscription that
matches it, by the projector process (backfill_projector.webhooks), with
`X-Backfill-Signature: sha256=<hex>`, the HMAC-SHA256 of the exact body under the secret, so
the receiver can tell the call came from this deployment.

Subscriptions live in one Redis hash (id -> JSON), so every API replica, console and projector
sees the same ones. The API manages any number (`/api/v1/webhooks`); the console manages one
of its own, under the id `console`. A deployment that still has the single subscription the
console used to keep (a plain key) finds it moved into the hash, as `console`, on first read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit
from uuid import uuid4

from redis.asyncio import Redis

from backfill_bus.names import Names

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Backfill-Signature"
SUBSCRIPTION_HEADER = "X-Backfill-Subscription"
MAX_URL_LENGTH = 2000
MAX_SECRET_LENGTH = 500
# A soft cap (checked, then written): each subscriber costs a POST per finished job.
MAX_SUBSCRIPTIONS = 100
EVENTS = ("job.finished",)
STATUSES = ("succeeded", "failed", "cancelled")
CONSOLE_WEBHOOK_ID = "console"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SOURCE = re.compile(r"[a-z0-9_-]{1,32}")


class TooManyWebhooksError(ValueError):
    """Raised when a subscription is added while MAX_SUBSCRIPTIONS exist: delete one first."""


def check_url(url: str) -> str:
    """The URL as given, or a ValueError that says what is wrong with it, in plain words."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a webhook URL starts with http:// or https:// and names a host")
    if len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        raise ValueError(f"a webhook URL has no spaces and at most {MAX_URL_LENGTH} characters")
    return url


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    """Empty `sources` or `statuses` mean every source, every end."""

    url: str
    secret: str = field(default="", repr=False)  # write-only: never shown, logged or returned
    id: str = ""
    events: tuple[str, ...] = EVENTS
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    created: datetime | None = None

    def __post_init__(self) -> None:
        check_url(self.url)
        if len(self.secret) > MAX_SECRET_LENGTH:
            raise ValueError(f"a webhook secret has at most {MAX_SECRET_LENGTH} characters")
        if self.id and not _ID.fullmatch(self.id):
            raise ValueError("a webhook id is 1 to 64 characters of A-Z a-z 0-9 _ -")
        if not self.events or not set(self.events) <= set(EVENTS):
            raise ValueError(f"webhook events are some of {list(EVENTS)}")
        if not set(self.statuses) <= set(STATUSES):
            raise ValueError(f"webhook statuses are some of {list(STATUSES)}")
        if not all(_SOURCE.fullmatch(source) for source in self.sources):
            raise ValueError("a source name is 1 to 32 characters of a-z 0-9 _ -")

    @property
    def shown_url(self) -> str:
        """The URL without credentials or query (which may carry a token), for events and logs."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"

    def matches(self, event: str, source: str | None, status: str) -> bool:
        """Whether a job's end goes to this subscriber; an unknown source only passes when
        the subscriber does not filter by source."""
        if event not in self.events or (self.statuses and status not in self.statuses):
            return False
        return not self.sources or source in self.sources


def _key(names: Names) -> str:
    return f"{names.namespace}webhooks:subscriptions"


def _legacy_key(names: Names) -> str:
    """Where the console kept its one subscription before there were many."""
    return f"{names.namespace}webhooks:job-finished"


def _dumps(subscription: WebhookSubscription) -> str:
    created = subscription.created or datetime.now(UTC)
    return json.dumps(
        {
            "id": subscription.id,
            "url": subscription.url,
            "secret": subscription.secret,
            "events": list(subscription.events),
            "sources": list(subscription.sources),
            "statuses": list(subscription.statuses),
            "created": created.isoformat(),
        }
    )


def _loads(raw: bytes | str) -> WebhookSubscription | None:
    try:
        data = json.loads(raw)
        return WebhookSubscription(
            url=data["url"],
            secret=data.get("secret", ""),
            id=data["id"],
            events=tuple(data.get("events") or EVENTS),
            sources=tuple(data.get("sources") or ()),
            statuses=tuple(data.get("statuses") or ()),
            created=datetime.fromisoformat(data["created"]) if data.get("created") else None,
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        # A hand-edited entry gone bad: that one is skipped (and said so), the others still work.
        log.warning("webhooks: a stored subscription cannot be read and is skipped")
        return None


async def _move_legacy(redis: Redis, names: Names, raw: bytes) -> None:
    """The old single subscription becomes the console's, unless the console set a new one."""
    try:
        (item,) = json.loads(raw)
        old = WebhookSubscription(item["url"], item.get("secret", ""), id=CONSOLE_WEBHOOK_ID)
    except (ValueError, TypeError, KeyError):
        log.warning("webhooks: the old console subscription cannot be read and is dropped")
    else:
        await redis.hsetnx(_key(names), CONSOLE_WEBHOOK_ID, _dumps(old))
    await redis.delete(_legacy_key(names))


async def _all(redis: Redis, names: Names) -> dict[str, WebhookSubscription]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(_key(names))
        pipe.get(_legacy_key(names))
        stored, legacy = await pipe.execute()
    if legacy is not None:
        await _move_legacy(redis, names, legacy)
        stored = await redis.hgetall(_key(names))
    found = {}
    for raw in stored.values():
        subscription = _loads(raw)
        if subscription is not None:
            found[subscription.id] = subscription
    return found


async def read_webhooks(redis: Redis, names: Names) -> list[WebhookSubscription]:
    """Every subscription, oldest first."""
    found = (await _all(redis, names)).values()
    return sorted(found, key=lambda s: (s.created or datetime.min.replace(tzinfo=UTC), s.id))


# With no subscription (nor a legacy one), a consumer group on the event log is moved to the
# log's end instead of reading it: every entry so far was appended before anyone subscribed, so
# a read would have acked them all unposted too. Check and move are one script, so a
# subscription added meanwhile cannot slip between them: what follows it is read.
_SKIP_UNWATCHED = """
if redis.call('HLEN', KEYS[2]) > 0 or redis.call('EXISTS', KEYS[3]) == 1 then
    return 0
end
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], '$')
return 1
"""


async def skip_unwatched(redis: Redis, names: Names, group: str) -> bool:
    """True when nobody subscribes and `group` now stands at the end of `events`."""
    keys = [names.events, _key(names), _legacy_key(names)]
    return bool(await redis.eval(_SKIP_UNWATCHED, len(keys), *keys, group))


async def read_webhook(redis: Redis, names: Names, webhook_id: str) -> WebhookSubscription | None:
    return (await _all(redis, names)).get(webhook_id)


async def add_webhook(
    redis: Redis,
    names: Names,
    url: str,
    secret: str = "",
    *,
    events: Iterable[str] = EVENTS,
    sources: Iterable[str] = (),
    statuses: Iterable[str] = (),
) -> WebhookSubscription:
    """A new subscription with an id of its own; ValueError says what is wrong with the input.

    Without a secret, one is generated: the returned subscription carries it, to be shown once.
    """
    subscription = WebhookSubscription(
        url.strip(),
        secret or new_secret(),
        id=uuid4().hex,
        events=tuple(dict.fromkeys(events)),
        sources=tuple(dict.fromkeys(sources)),
        statuses=tuple(dict.fromkeys(statuses)),
        created=datetime.now(UTC),
    )
    if await redis.hlen(_key(names)) >= MAX_SUBSCRIPTIONS:
        raise TooManyWebhooksError(
            f"there are already {MAX_SUBSCRIPTIONS} webhooks; delete one before adding another"
        )
    await redis.hset(_key(names), subscription.id, _dumps(subscription))
    return subscription


async def delete_webhook(redis: Redis, names: Names, webhook_id: str) -> bool:
    """True if it existed. Deliveries already under way for it finish; none start after."""
    await _all(redis, names)  # an old console subscription is deletable by its new id too
    return bool(await redis.hdel(_key(names), webhook_id))


async def write_console_webhook(redis: Redis, names: Names, url: str, secret: str = "") -> str:
    """Subscribe `url` to every finished job as the console's own subscription (replaced).

    Returns the secret that signs its POSTs: `secret`, or one generated when it is empty.
    """
    subscription = WebhookSubscription(
        url.strip(), secret or new_secret(), id=CONSOLE_WEBHOOK_ID, created=datetime.now(UTC)
    )
    await redis.hset(_key(names), CONSOLE_WEBHOOK_ID, _dumps(subscription))
    await redis.delete(_legacy_key(names))
    return subscription.secret


async def clear_console_webhook(redis: Redis, names: Names) -> None:
    """Remove the console's own subscription; those made through the API stay."""
    await redis.hdel(_key(names), CONSOLE_WEBHOOK_ID)
    await redis.delete(_legacy_key(names))


def new_secret() -> str:
    """A secret for a subscription made without one: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """For receivers (and tests): a constant-time check of the signature header."""
    return hmac.compare_digest(sign(secret, body), header)

"""Posting finished jobs to webhook subscribers, from the event log, at least once.

The notifier reads `events` through a consumer group of its own (`webhooks`), so however many
projector processes run, each finished job is posted once per matching subscriber, and one that
dies mid-delivery leaves the entry pending for the next to take over. Subscribers are served
independently and at once: each has its own tries, backoff and bound on POSTs in flight, so a
slow or failing one never holds up another. The entry is acked once every delivery succeeded or
gave up; a subscriber already served (noted in Redis) is skipped when an entry is taken over.
Every delivery ends with its own `job.webhook` event in the job's history. A webhook never
changes a job: its status is already final when it is posted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import (
    SIGNATURE_HEADER,
    SUBSCRIPTION_HEADER,
    EventLog,
    Names,
    WebhookSubscription,
    body_of,
    ensure_group,
    read_webhooks,
    sign,
    skip_unwatched,
)
from backfill_bus.logs import correlation_id_var, job_id_var
from backfill_contracts import (
    AnyEvent,
    JobCancelled,
    JobFailed,
    JobSucceeded,
    JobWebhook,
    parse_event,
)
from backfill_projector.faults import Backoff, OutageLog, outage_of, pause
from backfill_readmodel import queries
from backfill_readmodel.views import JobView

log = logging.getLogger(__name__)
GROUP = "webhooks"
Finished = JobSucceeded | JobFailed | JobCancelled
_STATUS = {"job.succeeded": "succeeded", "job.failed": "failed", "job.cancelled": "cancelled"}
# An ending's type as it appears in its JSON, quoted: an event without one of these anywhere in
# its body is not an ending, and is acked unparsed (a chunk's bars are most of the log's bytes,
# and validating them here cost the projector's process as much as folding them).
_ENDING_TYPES = tuple(f'"{name}"'.encode() for name in _STATUS)
# An entry another notifier took and has held this long belongs to a dead process.
_ABANDONED_MS = 60_000
# How long a delivery waits for the projection to show the job's end, for the payload.
_PROJECTION_WAIT_S = 5.0
# Subscribers already served for an entry, kept while it may still be taken over.
_SERVED_TTL_S = 86_400
# How often entries under delivery have their idle time reset (well inside _ABANDONED_MS).
_CLAIM_REFRESH_S = 15.0


class WebhookNotifier:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        names: Names,
        producer: str,
        *,
        timeout_s: float = 10.0,
        max_tries: int = 5,
        retry_base_s: float = 1.0,
        block_ms: int = 1000,
        unwatched_poll_s: float = 0.25,
        jobs_in_flight: int = 256,
        posts_per_subscriber: int = 4,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.names = names
        self.consumer = producer
        self.events = EventLog(redis, names, producer)
        self.timeout_s = timeout_s
        self.max_tries = max_tries
        self.retry_base_s = retry_base_s
        self.block_ms = block_ms
        self.unwatched_poll_s = unwatched_poll_s
        # Finished jobs being delivered at once: bounds memory, never a subscriber's pace.
        self.slots = asyncio.Semaphore(jobs_in_flight)
        self.posts_per_subscriber = posts_per_subscriber
        self._posting: dict[str, asyncio.Semaphore] = {}
        self._deliveries: set[asyncio.Task[None]] = set()
        self._in_flight: set[bytes] = set()
        self._next_takeover = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, riding out Redis outages as the projector does."""
        backoff = Backoff()
        outages = OutageLog(log, "webhooks")
        group_ready = False
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            self.client = client
            claims = asyncio.create_task(self._keep_claims(stop))
            cursor = "0"  # first our own pending entries (a restart), then new ones
            while not stop.is_set():
                try:
                    if not group_ready:
                        # From now on: a first deployment does not post every job that ended.
                        await ensure_group(self.redis, self.names.events, GROUP, start="$")
                        group_ready = True
                    cursor = await self._step(cursor)
                except Exception as error:
                    delay = backoff.take()
                    outage = outage_of(error)
                    if outage is None:
                        # A bug here must not stop the projection beside it (they share a
                        # process): say so loudly, wait, and read again.
                        log.exception(
                            "webhooks: reading finished jobs failed; again in %.0f s", delay
                        )
                    else:
                        outages.failed(outage, error, delay)
                    group_ready = False  # a restarted Redis may have come back without it
                    await pause(stop, delay)
                else:
                    outages.recovered()
                    backoff.reset()
            for task in [*self._deliveries, claims]:
                task.cancel()  # left pending: the next start delivers them
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._deliveries, claims, return_exceptions=True)

    async def _keep_claims(self, stop: asyncio.Event) -> None:
        """A delivery may outlast _ABANDONED_MS (a subscriber timing out on every try): the
        idle time of entries still ours is reset meanwhile, so no notifier takes them over."""
        while not stop.is_set():
            await pause(stop, _CLAIM_REFRESH_S)
            if not self._in_flight:
                continue
            try:
                pending: Any = await self.redis.xpending_range(
                    self.names.events, GROUP, "-", "+", 1000, consumername=self.consumer
                )
                ours = [p["message_id"] for p in pending if p["message_id"] in self._in_flight]
                if ours:
                    await self.redis.xclaim(
                        self.names.events, GROUP, self.consumer, 0, ours, justid=True
                    )
            except (RedisError, OSError) as error:  # the read loop reports outages
                log.debug("webhooks: refreshing claims failed: %s", error)

    async def _step(self, cursor: str) -> str:
        if cursor == "0" or time.monotonic() >= self._next_takeover:
            self._next_takeover = time.monotonic() + _ABANDONED_MS / 1000
            await self._take_over_abandoned()
        if cursor == ">" and await skip_unwatched(self.redis, self.names, GROUP):
            # Nobody subscribes: reading every chunk's bars back from Redis only to ack them
            # was 15 % of the projector's process under bar ingest (issue #9's A3 profile).
            await asyncio.sleep(self.unwatched_poll_s)
            return cursor
        reply: Any = await self.redis.xreadgroup(
            GROUP,
            self.consumer,
            {self.names.events: cursor},
            count=100,
            block=None if cursor == "0" else self.block_ms,
        )
        entries = reply[0][1] if reply else []
        if cursor == "0" and not entries:
            return ">"  # nothing of ours was pending
        await self._handle_all(entries)
        return ">" if cursor == ">" else entries[-1][0].decode()

    async def _take_over_abandoned(self) -> None:
        """Entries a dead notifier held: claimed here, then delivered as our own pending."""
        reply: Any = await self.redis.xautoclaim(
            self.names.events, GROUP, self.consumer, _ABANDONED_MS, "0-0", count=100
        )
        await self._handle_all([(i, f) for i, f in (reply[1] if reply else []) if f])

    async def _handle_all(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        """Start deliveries for the entries that need one; ack the rest in one call.

        Most events are not a job's end, and most ends have no subscriber: one XACK for a
        read, and one read of the subscriptions, instead of one of each per event.
        """
        subscriptions: list[WebhookSubscription] | None = None
        done: list[bytes] = []
        for entry_id, fields in entries:
            if entry_id in self._in_flight:
                continue  # ours and under delivery (seen again by a takeover pass)
            event = _finished_event(fields)
            if event is not None and subscriptions is None:
                subscriptions = await read_webhooks(self.redis, self.names)
            wanted = [] if event is None else _wanted(subscriptions or [], event)
            if event is None or not wanted:
                done.append(entry_id)
                continue
            await self.slots.acquire()
            self._in_flight.add(entry_id)
            task = asyncio.create_task(self._deliver_all(entry_id, event, wanted))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        if done:
            await self.redis.xack(self.names.events, GROUP, *done)

    async def _deliver_all(
        self, entry_id: bytes, event: Finished, subscribers: list[WebhookSubscription]
    ) -> None:
        served_key = f"{self.names.namespace}webhooks:served:{entry_id.decode()}"
        # This task's own context: its lines name the job, and its request once projected.
        job_id_var.set(event.job_id)
        correlation_id_var.set(event.job_id)
        try:
            view = await self._projected(event)
            if view is not None and view.correlation_id:
                correlation_id_var.set(view.correlation_id)
            source = None if view is None else view.source
            body = json.dumps(self._payload(entry_id.decode(), event, view)).encode()
            members: Any = await self.redis.smembers(served_key)
            served = {m.decode() for m in members}
            status = _STATUS[event.type]
            targets = [
                s
                for s in subscribers
                if s.id not in served and s.matches("job.finished", source, status)
            ]
            results = await asyncio.gather(
                *(self._deliver(s, event, body, served_key) for s in targets),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            if failures:
                raise failures[0]
            await self.redis.xack(self.names.events, GROUP, entry_id)
            await self.redis.delete(served_key)
        except asyncio.CancelledError:
            raise
        except Exception:  # the entry stays pending and is delivered again after a restart
            log.exception("webhooks: delivering %s failed", event.job_id)
        finally:
            self._in_flight.discard(entry_id)
            self.slots.release()

    async def _deliver(
        self, subscriber: WebhookSubscription, event: Finished, body: bytes, served_key: str
    ) -> None:
        headers = {
            "content-type": "application/json",
            "user-agent": "backfill-webhooks",
            SUBSCRIPTION_HEADER: subscriber.id,
        }
        if subscriber.secret:
            headers[SIGNATURE_HEADER] = sign(subscriber.secret, body)
        posting = self._posting_slots(subscriber.id)
        status: int | None = None
        message = ""
        tries = 0
        while tries < self.max_tries:
            tries += 1
            try:
                async with posting:  # held while posting only, never while backing off
                    response = await self.client.post(subscriber.url, content=body, headers=headers)
                status = response.status_code
                if response.is_success:
                    message = ""
                    break
                message = f"HTTP {status}"
            except httpx.HTTPError as error:
                status, message = None, f"{type(error).__name__}: {error}"[:300]
            if tries < self.max_tries:
                await asyncio.sleep(min(60.0, self.retry_base_s * 2 ** (tries - 1)))
        ok = status is not None and 200 <= status < 300
        if not ok:
            log.warning(
                "webhooks: %s for job %s failed after %d tries: %s",
                subscriber.shown_url, event.job_id, tries, message,
            )  # fmt: skip
        await self.events.emit(
            JobWebhook,
            job_id=event.job_id,
            attempt=event.attempt,
            url=subscriber.shown_url,
            ok=ok,
            status_code=status,
            tries=tries,
            message=message,
            subscription_id=subscriber.id,
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(served_key, subscriber.id)
            pipe.expire(served_key, _SERVED_TTL_S)
            await pipe.execute()

    def _posting_slots(self, subscriber_id: str) -> asyncio.Semaphore:
        if len(self._posting) > 1024:  # subscribers come and go: forget the idle ones
            self._posting = {k: v for k, v in self._posting.items() if v.locked()}
        slots = self._posting.get(subscriber_id)
        if slots is None:
            slots = self._posting[subscriber_id] = asyncio.Semaphore(self.posts_per_subscriber)
        return slots

    async def _projected(self, event: Finished) -> JobView | None:
        """The job as projected once the projector has folded its end (a few ms behind the
        log); after `_PROJECTION_WAIT_S`, whatever the projection has, if anything."""
        deadline = time.monotonic() + _PROJECTION_WAIT_S
        while True:
            async with self.engine.connect() as conn:
                view = await queries.get_job(conn, event.job_id)
            folded = view is not None and view.status == _STATUS[event.type]
            if folded or time.monotonic() >= deadline:
                return view
            await asyncio.sleep(0.05)

    def _payload(self, event_id: str, event: Finished, view: JobView | None) -> dict[str, Any]:
        job = None
        if view is not None:
            job = view.model_dump(mode="json")
            job["status"] = _STATUS[event.type]  # in case the projection was still behind
        return {
            "type": "job.finished",
            "event_id": event_id,
            "job_id": event.job_id,
            "attempt": event.attempt,
            "status": _STATUS[event.type],
            "finished_at": event.ts.astimezone(UTC).isoformat(),
            "outcome": getattr(event, "outcome", None),
            "message": getattr(event, "message", None) or getattr(event, "reason", None),
            "bars": getattr(event, "bars", None),
            "job": job,
            "sent_at": datetime.now(UTC).isoformat(),
        }


def _wanted(subscriptions: list[WebhookSubscription], event: Finished) -> list[WebhookSubscription]:
    """The subscribers this end may concern; the source is known only from the projection, so
    that filter is checked at delivery."""
    status = _STATUS[event.type]
    return [
        s
        for s in subscriptions
        if "job.finished" in s.events and (not s.statuses or status in s.statuses)
    ]


def _finished_event(fields: dict[bytes, bytes]) -> Finished | None:
    body = body_of(fields)
    if not any(ending in body for ending in _ENDING_TYPES):
        return None
    try:
        event: AnyEvent = parse_event(body)
    except (ValidationError, ValueError):
        return None  # not ours to judge: the projector dead-letters what it cannot read
    if isinstance(event, JobSucceeded | JobFailed | JobCancelled):
        return event
    return None

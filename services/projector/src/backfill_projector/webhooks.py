"""Posting finished jobs to webhook subscribers, from the event log, at least once.

The notifier reads `events` through a consumer group of its own (`webhooks`), so however many
projector processes run, each finished job is posted once per subscriber, and one that dies
mid-delivery leaves the entry pending for the next to take over. It acks an entry only after
the delivery succeeded or gave up. Every delivery ends with a `job.webhook` event in the
job's history. A webhook never changes a job: its status is already final when it is posted.
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
from sqlalchemy.ext.asyncio import AsyncEngine

from backfill_bus import (
    SIGNATURE_HEADER,
    EventLog,
    Names,
    WebhookSubscription,
    body_of,
    ensure_group,
    read_webhooks,
    sign,
)
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
# An entry another notifier took and has held this long belongs to a dead process.
_ABANDONED_MS = 60_000
# How long a delivery waits for the projection to show the job's end, for the payload.
_PROJECTION_WAIT_S = 5.0


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
        concurrency: int = 16,
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
        self.slots = asyncio.Semaphore(concurrency)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._next_takeover = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set, riding out Redis outages as the projector does."""
        backoff = Backoff()
        outages = OutageLog(log, "webhooks")
        group_ready = False
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            self.client = client
            cursor = "0"  # first our own pending entries (a restart), then new ones
            while not stop.is_set():
                try:
                    if not group_ready:
                        # From now on: a first deployment does not post every job that ended.
                        await ensure_group(self.redis, self.names.events, GROUP, start="$")
                        group_ready = True
                    cursor = await self._step(cursor)
                except Exception as error:
                    outage = outage_of(error)
                    if outage is None:
                        raise
                    delay = backoff.take()
                    outages.failed(outage, error, delay)
                    group_ready = False  # a restarted Redis may have come back without it
                    await pause(stop, delay)
                else:
                    outages.recovered()
                    backoff.reset()
            for task in list(self._deliveries):
                task.cancel()  # left pending: the next start delivers them
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._deliveries, return_exceptions=True)

    async def _step(self, cursor: str) -> str:
        if cursor == "0" or time.monotonic() >= self._next_takeover:
            self._next_takeover = time.monotonic() + _ABANDONED_MS / 1000
            await self._take_over_abandoned()
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
        for entry_id, fields in entries:
            await self._handle(entry_id, fields)
        return ">" if cursor == ">" else entries[-1][0].decode()

    async def _take_over_abandoned(self) -> None:
        """Entries a dead notifier held: claimed here, then delivered as our own pending."""
        reply: Any = await self.redis.xautoclaim(
            self.names.events, GROUP, self.consumer, _ABANDONED_MS, "0-0", count=100
        )
        for entry_id, fields in reply[1] if reply else []:
            if fields:
                await self._handle(entry_id, fields)

    async def _handle(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        event = _finished_event(fields)
        if event is None:
            await self.redis.xack(self.names.events, GROUP, entry_id)
            return
        subscribers = await read_webhooks(self.redis, self.names)
        if not subscribers:
            await self.redis.xack(self.names.events, GROUP, entry_id)
            return
        await self.slots.acquire()
        task = asyncio.create_task(self._deliver_all(entry_id, event, subscribers))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver_all(
        self, entry_id: bytes, event: Finished, subscribers: list[WebhookSubscription]
    ) -> None:
        try:
            body = json.dumps(await self._payload(entry_id.decode(), event)).encode()
            for subscriber in subscribers:
                await self._deliver(subscriber, event, body)
            await self.redis.xack(self.names.events, GROUP, entry_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # the entry stays pending and is delivered again after a restart
            log.exception("webhooks: delivering %s failed", event.job_id)
        finally:
            self.slots.release()

    async def _deliver(self, subscriber: WebhookSubscription, event: Finished, body: bytes) -> None:
        headers = {"content-type": "application/json", "user-agent": "backfill-webhooks"}
        if subscriber.secret:
            headers[SIGNATURE_HEADER] = sign(subscriber.secret, body)
        status: int | None = None
        message = ""
        tries = 0
        while tries < self.max_tries:
            tries += 1
            try:
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
        )

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

    async def _payload(self, event_id: str, event: Finished) -> dict[str, Any]:
        job = None
        view = await self._projected(event)
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


def _finished_event(fields: dict[bytes, bytes]) -> Finished | None:
    try:
        event: AnyEvent = parse_event(body_of(fields))
    except (ValidationError, ValueError):
        return None  # not ours to judge: the projector dead-letters what it cannot read
    if isinstance(event, JobSucceeded | JobFailed | JobCancelled):
        return event
    return None

"""A worker process: one source, a FastStream consumer on its command stream, heartbeats.

Ack policy: REJECT_ON_ERROR, stated explicitly. The handler returns (and FastStream acks) only
after the job's terminal event is on the log, or after an unusable entry was dead-lettered; an
unexpected exception leaves the entry pending for the crash-recovery claimer.
"""

from __future__ import annotations

import logging
from typing import Any

from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisStreamMessage
from pydantic import ValidationError
from redis.asyncio import Redis

from backfill_bus import (
    EventLog,
    Names,
    dead_letter,
    ensure_command_group,
    ensure_events_group,
    request_cancel,
)
from backfill_contracts import CancelJob, parse_command
from backfill_contracts.errors import describe_validation_error
from backfill_worker.cancel_scanner import CancelScanner
from backfill_worker.heartbeat import Heartbeat
from backfill_worker.retry import RetryPolicy
from backfill_worker.runner import JobRunner
from backfill_worker.settings import WorkerSettings
from backfill_worker.source import Source

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, settings: WorkerSettings, source: Source) -> None:
        self.settings = settings
        self.source = source
        self.names = Names(settings.redis_namespace)
        self.redis: Redis = Redis.from_url(settings.redis_url)
        self.events = EventLog(self.redis, self.names, producer=settings.worker_id)
        self.heartbeat = Heartbeat(
            self.events, settings.worker_id, source.name, settings.heartbeat_interval_s
        )
        self.runner = JobRunner(
            source,
            self.redis,
            self.names,
            self.events,
            settings.worker_id,
            RetryPolicy(
                settings.max_chunk_tries, settings.retry_base_delay_s, settings.retry_max_delay_s
            ),
            CancelScanner(self.redis, self.names, source.name, self.events),
            settings.cancel_poll_interval_s,
        )
        self.broker = self._build_broker()

    @property
    def command_stream(self) -> str:
        return self.names.command_stream(self.source.name)

    def _build_broker(self) -> RedisBroker:
        broker = RedisBroker(self.settings.redis_url, logger=log, log_level=logging.DEBUG)
        subscriber = broker.subscriber(
            stream=StreamSub(
                self.command_stream,
                group=self.names.command_group(self.source.name),
                consumer=self.settings.worker_id,
                # One entry per read: a worker holds only the job it is working on.
                max_records=1,
                polling_interval=self.settings.poll_interval_ms,
            ),
            ack_policy=AckPolicy.REJECT_ON_ERROR,
            title=f"{self.command_stream}:collect",
            description=f"Jobs for the {self.source.name} source: CollectBars and CancelJob.",
        )
        subscriber(self.handle)
        return broker

    async def start(self) -> None:
        # Groups at the start of the stream, so commands sent before any worker ran are not lost.
        await ensure_command_group(self.redis, self.names, self.source.name)
        await ensure_events_group(self.redis, self.names)
        await self.heartbeat.set("starting")
        await self.broker.start()
        self.heartbeat.start()
        await self.heartbeat.set("idle")
        log.info("worker %s consuming %s", self.settings.worker_id, self.command_stream)

    async def stop(self) -> None:
        await self.heartbeat.stop()
        await self.heartbeat.set("stopping", self.heartbeat.current_job)
        await self.broker.stop()
        await self.heartbeat.set("stopped")
        await self.redis.aclose()

    async def handle(self, msg: RedisStreamMessage) -> None:
        raw: Any = msg.raw_message
        entry_id = raw["message_ids"][0]
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            command = parse_command(msg.body)
        except ValidationError as error:
            reason = f"not a valid command: {describe_validation_error(error)}"
            await self._dead_letter(raw["data"], entry_id, reason)
            return
        if isinstance(command, CancelJob):
            await request_cancel(
                self.redis, self.names, self.events, command.job_id, command.reason
            )
            return
        if command.source != self.source.name:
            reason = f"command for source {command.source!r} on {self.command_stream}"
            await self._dead_letter(raw["data"], entry_id, reason)
            return
        await self.heartbeat.set("busy", command.job_id)
        try:
            await self.runner.run(command)
        finally:
            await self.heartbeat.set("idle")

    async def _dead_letter(self, fields: dict[bytes, bytes], entry_id: str, reason: str) -> None:
        await dead_letter(
            self.redis,
            self.names,
            stream=self.command_stream,
            entry_id=entry_id,
            fields=fields,
            reason=reason,
        )

"""Cancels published on the command stream take effect even while they wait behind other entries.

A `cancel_job` sits in the stream after the job it cancels, so the consumer group hands it out
only after that job (or a long backlog) has been taken. A worker therefore also reads the stream
ahead of the group: before it starts a job and between chunks, it reads whatever entries arrived
since its last look and applies the cancels among them. Each worker reads each entry once; when
nothing is new, that is one empty XRANGE.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backfill_bus import EventLog, Names, request_cancel
from backfill_bus.cancellation import PageAfter
from backfill_contracts import CancelJob, parse_command
from backfill_worker.envelope import command_body

_PAGE = 500


class CancelScanner:
    def __init__(self, redis: Redis, names: Names, source: str, events: EventLog) -> None:
        self.redis = redis
        self.names = names
        self.stream = names.command_stream(source)
        self.group = names.command_group(source)
        self.events = events
        self.position: str | None = None

    async def start(self) -> None:
        """Start where the group stands: entries before it were handed to a consumer already."""
        groups: Any = await self.redis.xinfo_groups(self.stream)
        for group in groups:
            if group["name"] in (self.group, self.group.encode()):
                last = group["last-delivered-id"]
                self.position = last.decode() if isinstance(last, bytes) else str(last)
                return
        self.position = "0-0"

    def page_to_read(self) -> PageAfter | None:
        """A sync's first read, for a round trip it shares (take_ownership's); pass the page it
        read to `sync`. None before the first sync, which must find its position first."""
        if self.position is None:
            return None
        return PageAfter(self.stream, self.position, _PAGE)

    def read_on(self, pipe: Pipeline) -> bool:
        """Queue a sync's first read on `pipe`, to share its round trip; pass its reply to `sync`.

        False (nothing queued) before the first sync, which must find its position first.
        """
        if self.position is None:
            return False
        pipe.xrange(self.stream, min=f"({self.position}", count=_PAGE)
        return True

    async def sync(self, first_page: Any = None) -> int:
        """Apply every cancel published since the last sync (`first_page`: see `read_on`);
        returns how many were applied."""
        if self.position is None:
            await self.start()
        page: Any = first_page
        applied = 0
        while True:
            if page is None:
                page = await self.redis.xrange(self.stream, min=f"({self.position}", count=_PAGE)
            for entry_id, fields in page:
                self.position = entry_id.decode()
                body = command_body(fields)
                if b"cancel_job" in body:  # cheap filter: most entries are jobs, not cancels
                    applied += await self._apply(body)
            if len(page) < _PAGE:
                return applied
            page = None

    async def _apply(self, body: bytes) -> int:
        try:
            command = parse_command(body)
        except ValidationError:
            return 0  # the group consumer dead-letters it with the reason
        if not isinstance(command, CancelJob):
            return 0
        await request_cancel(self.redis, self.names, self.events, command.job_id, command.reason)
        return 1

"""A tail of the `events` stream that notes when each event of interest was stamped.

A plain XREAD from the tip (no consumer group: nothing is taken from the projector). Only the
few fields needed are decoded (a chunk's bars are not validated): `ts` is the UTC time its
producer stamped on the event, on this machine's clock; the entry's id gives the time Redis
appended it (milliseconds, on the same machine's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Collection
from datetime import datetime
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names, body_of
from backfill_bus.maintenance import parse_id

Key = tuple[str, str, int]  # (event type, job id, chunk index or -1)
# The envelope and job fields come first in every event's JSON (pydantic keeps the declaration
# order), so they are read from its head: a chunk's 390 bars are never parsed.
HEAD = 512
_FIELD = re.compile(rb'"(type|job_id|ts)":"([^"]*)"|"(chunk)":(\d+)')


class EventWatcher:
    def __init__(self, redis_url: str, names: Names, types: Collection[str]) -> None:
        self.redis: Redis = Redis.from_url(redis_url)
        self.names = names
        self.types = frozenset(types)
        # Epoch seconds of each event's `ts`, and of its entry's id (when it reached the log).
        self.stamped: dict[Key, float] = {}
        self.logged: dict[Key, float] = {}
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventWatcher:
        tip: Any = await self.redis.xrevrange(self.names.events, count=1)
        last = tip[0][0].decode() if tip else "0-0"
        self._task = asyncio.create_task(self._run(last), name="bench-event-watcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Not task.cancel(): a cancelled redis-py read may never return. Ends within a block.
        self._stop.set()
        if self._task is not None:
            await self._task
        await self.redis.aclose()

    def ts(self, event_type: str, job_id: str, chunk: int = -1) -> float | None:
        return self.stamped.get((event_type, job_id, chunk))

    async def wait_for(self, keys: Collection[Key], timeout_s: float) -> None:
        """Until every key was seen; raises TimeoutError naming how many are missing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while missing := [key for key in keys if key not in self.stamped]:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"{len(missing)} events never came, e.g. {missing[0]}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))

    async def _run(self, last: str) -> None:
        while not self._stop.is_set():
            answer: Any = await self.redis.xread({self.names.events: last}, block=200, count=500)
            for _stream, entries in answer or ():
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    self._note(last, fields)
            self._changed.set()

    def _note(self, entry_id: str, fields: dict[bytes, bytes]) -> None:
        head: dict[bytes, bytes] = {}
        for match in _FIELD.finditer(body_of(fields)[:HEAD]):
            name, value, chunk_name, chunk = match.groups()
            if name is not None:
                head.setdefault(name, value)
            else:
                head.setdefault(chunk_name, chunk)
        kind = head.get(b"type", b"").decode()
        if kind not in self.types or b"ts" not in head:
            return
        chunk = int(head[b"chunk"]) if b"chunk" in head else -1
        key = (kind, head.get(b"job_id", b"").decode(), chunk)
        self.stamped[key] = datetime.fromisoformat(head[b"ts"].decode()).timestamp()
        self.logged[key] = parse_id(entry_id)[0] / 1000

"""Keeping, reclaiming and handing back command entries, so a job runs on exactly one live worker.

An entry a worker has read sits in the group's pending list under its name. A live worker
refreshes the idle time of every entry it holds, so a claimer never takes a long job from it.
A dead worker's entries go idle, and after `claim_idle_ms` a live worker takes them over
(XAUTOCLAIM). A stopping worker marks its entry long idle, so the next claimer takes it at once.
Every touch checks ownership first, in one Lua script: a worker never refreshes, hands back or
acks an entry that has meanwhile been claimed by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from backfill_bus.event_log import Ack

log = logging.getLogger(__name__)

# Returns the entry's delivery count, -1 if it is no longer pending, -2 if another consumer has it.
_TOUCH = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return -1 end
if p[1][2] ~= ARGV[3] then return -2 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'IDLE', ARGV[4], 'JUSTID')
return p[1][4]
"""

LOST = -1
TAKEN = -2
# A handed-back entry looks idle for a day: past any threshold, so the next claimer takes it.
_HANDED_BACK_IDLE_MS = 86_400_000


@dataclass(slots=True)
class Held:
    entry_id: str
    lost: bool = False


@dataclass
class ClaimKeeper:
    redis: Redis
    stream: str
    group: str
    consumer: str
    idle_ms: int
    held: dict[str, Held] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def touch(self, entry_id: str, idle_ms: int = 0) -> int:
        """Refresh an entry this worker owns (idle time set to `idle_ms`); see _TOUCH's result."""
        result: Any = await self.redis.eval(
            _TOUCH, 1, self.stream, self.group, entry_id, self.consumer, idle_ms
        )
        return int(result)

    def ack_along(self, entry_id: str) -> Ack:
        """The entry's ack, for the script that logs its job's end (see EventLog.emit_all)."""
        return Ack(self.stream, self.group, entry_id)

    def hold(self, entry_id: str) -> Held:
        return self.held.setdefault(entry_id, Held(entry_id))

    def release(self, entry_id: str) -> None:
        self.held.pop(entry_id, None)

    async def ack(self, entry_id: str) -> None:
        await self.redis.xack(self.stream, self.group, entry_id)
        self.release(entry_id)

    async def hand_back(self, entry_id: str) -> bool:
        """Leave the entry for another worker now, not after the idle threshold."""
        self.release(entry_id)
        return await self.touch(entry_id, idle_ms=max(_HANDED_BACK_IDLE_MS, 2 * self.idle_ms)) >= 0

    async def claim_one(self, start_id: str) -> tuple[str, tuple[str, dict[bytes, bytes]] | None]:
        """Take over one entry idle past the threshold; returns the next cursor and the entry."""
        response: Any = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.idle_ms, start_id=start_id, count=1
        )
        cursor = response[0].decode() if isinstance(response[0], bytes) else str(response[0])
        for entry_id, fields in response[1]:
            ident = entry_id.decode()
            if fields is None:  # deleted or trimmed while pending: nothing left to run
                await self.redis.xack(self.stream, self.group, ident)
                continue
            return cursor, (ident, fields)
        return cursor, None

    async def orphans(self) -> list[tuple[str, dict[bytes, bytes]]]:
        """Entries pending under this worker's name that it no longer works on.

        A handler that failed (Redis went away mid-job) leaves its entry pending; retrying it at
        once beats waiting out the idle threshold for a claimer.
        """
        pending: Any = await self.redis.xpending_range(
            self.stream, self.group, min="-", max="+", count=10, consumername=self.consumer
        )
        found = []
        for item in pending:
            entry_id = item["message_id"]
            entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            if entry_id in self.held:
                continue
            entries: Any = await self.redis.xrange(self.stream, min=entry_id, max=entry_id)
            if not entries:  # trimmed while pending: nothing left to run
                await self.redis.xack(self.stream, self.group, entry_id)
                continue
            found.append((entry_id, entries[0][1]))
        return found

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._refresh_loop(), name=f"claims-{self.consumer}")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _refresh_loop(self) -> None:
        # Three refreshes per threshold: a missed one or two still leaves the claim alive.
        interval = max(0.05, self.idle_ms / 3000)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
                return
            for held in list(self.held.values()):
                try:
                    if await self.touch(held.entry_id) < 0:
                        log.warning("lost the claim on %s %s", self.stream, held.entry_id)
                        held.lost = True
                        self.release(held.entry_id)
                except Exception:  # Redis away for a moment: the next round tries again
                    log.warning("could not refresh the claim on %s", held.entry_id, exc_info=True)

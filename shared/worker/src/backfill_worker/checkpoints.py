"""Per-chunk checkpoints: which chunks of a job are collected, so a rerun resumes after them."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.event_log import Note
from backfill_contracts import ChunkSpec


def _field(chunk: ChunkSpec) -> str:
    # The window is part of the key: a changed plan never skips a chunk it did not collect.
    return f"{chunk.index}:{int(chunk.start.timestamp())}:{int(chunk.end.timestamp())}"


class Checkpoints:
    def __init__(self, redis: Redis, names: Names, job_id: str) -> None:
        self.redis = redis
        self.key = names.job_key(job_id, "chunks_done")

    async def done(
        self, chunks: list[ChunkSpec], read: dict[bytes, bytes] | None = None
    ) -> dict[int, int]:
        """The collected chunks of this plan, with their bar counts (`read`: the hash as read
        already, by StoredData.narrowed)."""
        stored: Any = await self.redis.hgetall(self.key) if read is None else read
        counts = {key.decode(): int(value) for key, value in stored.items()}
        return {c.index: counts[_field(c)] for c in chunks if _field(c) in counts}

    def note(self, chunk: ChunkSpec, bars: int) -> Note:
        """The chunk's checkpoint, set with its `chunk.collected` event (EventLog.emit's note)."""
        return Note(self.key, _field(chunk), bars)

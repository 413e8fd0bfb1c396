"""One fetch for jobs that need the same chunk at the same time: the first leads, others follow.

Two jobs asking one source for the same window of the same series (a universe run beside a
user's own job, two users backfilling one symbol) would pay the source twice, and IB counts
both against its pacing. So each fetch takes a lease in Redis named after what it asks for:

- the first job to set the lease fetches (the leader), renewing the lease while it works.
  Its `chunk.collected` event then goes on the log with, in the same step, a key pointing at
  that entry for `result_ttl_s`, and the lease is dropped (`EventLog.emit_all`'s pointers).
  The bars are on the log already: keeping a second copy cost a ~20 KB write and a round trip
  per chunk (issue #9's A2 and A3 profiles);
- a job that finds the lease held waits (a `job.waiting` with outcome `in_flight`, its
  request clock stopped), then reads the leader's event, and says whose fetch it was;
- a leader that fails drops its lease, and a leader that dies stops renewing it: either way a
  follower takes the lease over and fetches itself, so no job waits on a fetch nobody makes.

Sharing saves requests; it never decides whether a job succeeds. Redis trouble on this path
(a restart, a pointer to an entry trimmed away or that does not decode) makes the job fetch
for itself, and a forced job (`force`) always fetches for itself: it asked for fresh data. A
leader that cannot emit its event (Redis gone) leaves its lease to lapse, as a dead one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from backfill_bus import Names
from backfill_bus.event_log import Pointer
from backfill_contracts import DATA_FIELD, ChunkCollected, ChunkSpec, CollectBars, Outcome
from backfill_worker.resilience import DISCONNECTS
from backfill_worker.source import Fetched, Plan
from backfill_worker.waits import waiting

log = logging.getLogger(__name__)

# Renew only if the lease is still ours: a leader paused past its lease must not extend
# another job's lease, nor drop it.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# One round trip per look: the body of the event a kept pointer names if there is one, else
# the lease if free (or ours, left by this job's earlier delivery on a worker that died
# mid-fetch: waiting for it to lapse would only wait for ourselves), else who holds it. A
# pointer to an entry no longer on the log (trimmed), or not an entry id at all (written by an
# older version), is dropped: this job fetches for itself.
# KEYS: pointer, lease, events. ARGV: job id, lease ms, the entries' data field.
_ASK = """
local kept = redis.call('get', KEYS[1])
if kept then
  if string.match(kept, '^%d+%-%d+$') then
    local entry = redis.call('xrange', KEYS[3], kept, kept)
    if #entry == 1 then
      local fields = entry[1][2]
      for i = 1, #fields, 2 do
        if fields[i] == ARGV[3] then return {'kept', fields[i + 1]} end
      end
    end
  end
  redis.call('del', KEYS[1])
end
local holder = redis.call('get', KEYS[2])
if not holder or holder == ARGV[1] then
  redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[2])
  return {'lead', ARGV[1]}
end
return {'held', holder}
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def _reply(asked: Any) -> tuple[bytes, bytes] | None:
    """An ask's reply as (what, value); None for none, or for the error it met (NOSCRIPT
    after a Redis restart): the fetch then asks again, by the script, which loads itself."""
    if isinstance(asked, list | tuple) and len(asked) == 2:
        return (asked[0], asked[1])
    return None


@dataclass(frozen=True, slots=True)
class SharingSettings:
    # A leader renews its lease every third of this; a dead leader's chunk waits this long.
    lease_ms: int = 10_000
    # How long a fetched chunk stays for jobs that ask for it a moment later (projection lag).
    result_ttl_s: int = 60
    poll_interval_s: float = 0.1


@dataclass(frozen=True, slots=True)
class Shared:
    """A chunk's bars, and the job whose fetch they came from (None: this job's own).

    `pointer`: for a fetch this job led, what its `chunk.collected` event must carry (the
    pointer others read the bars by, and the lease it drops).
    """

    fetched: Fetched
    fetched_by: str | None
    pointer: Pointer | None = None


def fetch_identity(job: CollectBars, plan: Plan, chunk: ChunkSpec) -> str:
    """What a fetch asks the source, as a digest: jobs with equal digests get equal bars."""
    asked = {
        "source": job.source,
        "symbol": job.symbol,
        "bar_size": job.bar_size.value,
        "options": job.options,
        "instrument": plan.instrument,
        "price_type": plan.price_type,
        "start": chunk.start.isoformat(),
        "end": chunk.end.isoformat(),
    }
    text = json.dumps(asked, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SharedFetches:
    def __init__(
        self, redis: Redis, names: Names, source: str, settings: SharingSettings | None = None
    ) -> None:
        self.redis = redis
        self.names = names
        self.source = source
        self.settings = settings or SharingSettings()
        # Sent by digest (EVALSHA) once Redis knows them, as commands.py does: not per call.
        self._ask = redis.register_script(_ASK)
        self._renew_lease = redis.register_script(_RENEW)
        self._release_lease = redis.register_script(_RELEASE)

    def _keys(self, identity: str) -> tuple[str, str]:
        return (
            self.names.source_key(self.source, f"fetch:{identity}:lease"),
            self.names.source_key(self.source, f"fetch:{identity}:result"),
        )

    def ask_on(self, pipe: Pipeline, identity: str, job_id: str) -> None:
        """Queue the first look for this fetch on `pipe` (the event before it goes out in the
        same round trip); pass its reply to `fetch` as `asked`, or to `drop` if the job stops."""
        lease, result = self._keys(identity)
        args: list[str | int] = [job_id, self.settings.lease_ms, DATA_FIELD]
        pipe.evalsha(self._ask.sha, 3, result, lease, self.names.events, *args)

    async def drop(self, identity: str, job_id: str, asked: Any) -> None:
        """Let go of a lease an `ask_on` took, for a fetch the job will not make."""
        if _reply(asked) == (b"lead", job_id.encode()):
            await self._release(self._keys(identity)[0], job_id)

    async def fetch(
        self,
        identity: str,
        job_id: str,
        fetch: Callable[[], Awaitable[Fetched]],
        asked: Any = None,
    ) -> Shared:
        """The chunk's bars: from another job's event, awaited from a fetch under way, or
        fetched by this job (whose event, carrying `Shared.pointer`, then serves the others).
        `asked`: the reply to an `ask_on` (not an error), used as the first look."""
        lease, result = self._keys(identity)
        try:
            leading = await self._lead_or_follow(lease, result, job_id, _reply(asked))
        except DISCONNECTS as error:
            log.warning("fetching chunk %s alone: Redis unreachable (%s)", identity, error)
            return Shared(await fetch(), None)
        if isinstance(leading, Shared):
            return leading
        fetched = await self._led(lease, job_id, fetch)
        return Shared(fetched, None, Pointer(result, self.settings.result_ttl_s, lease, job_id))

    async def _lead_or_follow(
        self, lease: str, result: str, job_id: str, asked: tuple[bytes, bytes] | None
    ) -> Shared | None:
        """The leader's logged chunk, or None once this job holds the lease (after any wait)."""
        async with contextlib.AsyncExitStack() as wait:
            announced = False
            while True:
                if asked is None:
                    asked = await self._ask(
                        keys=[result, lease, self.names.events],
                        args=[job_id, self.settings.lease_ms, DATA_FIELD],
                    )
                (what, value), asked = asked, None
                if what == b"kept":
                    kept = self._decoded(value)
                    if kept is not None:
                        return kept
                    # Not a chunk this version reads: fetch it ourselves, once.
                    await self.redis.delete(result)
                    continue
                if what == b"lead":
                    return None
                if not announced:
                    announced = True
                    holder = value.decode()
                    message = f"job {holder} has it under way; its bars will be used"
                    await wait.enter_async_context(waiting(Outcome.IN_FLIGHT, message))
                await asyncio.sleep(self.settings.poll_interval_s)

    def _decoded(self, raw: bytes) -> Shared | None:
        try:
            event = ChunkCollected.model_validate_json(raw)
        except ValidationError as error:
            log.warning("ignoring a kept chunk that does not decode: %s", error)
            return None
        fetched = Fetched(event.bars, event.actions, event.exchange_tz)
        return Shared(fetched, event.shared_from or event.job_id)

    async def _led(
        self, lease: str, job_id: str, fetch: Callable[[], Awaitable[Fetched]]
    ) -> Fetched:
        """This job's fetch, under its renewed lease. The lease stays held until the chunk's
        event drops it (the runner emits it next), so followers keep waiting for that event."""
        renewer = asyncio.create_task(self._renew(lease, job_id))
        try:
            return await fetch()
        except BaseException:
            await self._release(lease, job_id)
            raise
        finally:
            renewer.cancel()

    async def _renew(self, lease: str, job_id: str) -> None:
        every = self.settings.lease_ms / 3000
        while True:
            await asyncio.sleep(every)
            try:
                await self._renew_lease(keys=[lease], args=[job_id, self.settings.lease_ms])
            except DISCONNECTS as error:  # a follower may take over: a request, not a loss
                log.warning("could not renew a fetch lease: %s", error)

    async def _release(self, lease: str, job_id: str) -> None:
        with contextlib.suppress(*DISCONNECTS):  # unreleased, it lapses on its own
            await self._release_lease(keys=[lease], args=[job_id])

"""The projector: folds the `events` stream into the tables, batch by batch.

Each batch is one transaction that writes the rows and the stream position together, then the
entries are acked. A crash between commit and ack only means the next start re-reads entries the
position already covers, and skips them. An entry that is not a valid event goes to the dlq and
the position moves past it.

An outage (PostgreSQL or SQLite unavailable, Redis down or restarting) pauses the projector: it
logs one warning, retries with capped exponential backoff and catches up when the server is
back. Any other error stops it loudly (its supervisor restarts it), because skipping an event
would leave the tables wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

from pydantic import ValidationError
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backfill_bus import (
    EVENTS_GROUP,
    Names,
    body_of,
    dead_letter,
    ensure_events_group,
    queued_key,
)
from backfill_bus.liveness import Liveness
from backfill_bus.logs import correlation_id_var, job_id_var
from backfill_contracts import (
    AnyEvent,
    ChunkCollected,
    JobEvent,
    JobSubmitted,
    WorkerHeartbeat,
    parse_event,
)
from backfill_contracts.errors import describe_validation_error
from backfill_projector import store
from backfill_projector.faults import Backoff, OutageLog, outage_of, pause
from backfill_projector.fold import fold
from backfill_projector.known import KnownRows, Mark
from backfill_projector.metrics import BatchTally, ProjectorMetrics
from backfill_projector.pg_tables import PgTables
from backfill_projector.rows import Changes
from backfill_projector.store import SqlTables, Tables
from backfill_readmodel.held import HeldConnection

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
CONSUMER = "projector"  # one projector: the single writer of the projections


class Projector:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        names: Names,
        batch_size: int = 500,
        block_ms: int = 500,
        metrics: ProjectorMetrics | None = None,
        liveness: Liveness | None = None,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.names = names
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.metrics = metrics or ProjectorMetrics()
        self.liveness = liveness or Liveness(None)
        self._read_pending_first = True
        self._known = KnownRows()  # the rows of the last commit, for the next batches
        # On PostgreSQL, while `run` runs, the connection every batch runs on (see _transaction).
        self._holding = False
        self._held = HeldConnection(engine)

    @property
    def stream(self) -> str:
        return self.names.events

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set, riding out database and Redis outages."""
        self._holding = True
        try:
            await self._run(stop)
        finally:
            self._holding = False
            await self._held.release()

    async def _run(self, stop: asyncio.Event) -> None:
        log.info("projecting %s", self.stream)
        backoff = Backoff()
        outages = OutageLog(log, "projector")
        group_ready = False
        while not stop.is_set():
            try:
                if not group_ready:
                    await ensure_events_group(self.redis, self.names)
                    group_ready = True
                await self.step()
            except Exception as error:
                outage = outage_of(error)
                if outage is None:
                    raise  # a bug, or data the tables refuse: retrying would fail the same way
                delay = backoff.take()
                outages.failed(outage, error, delay)
                # The batch was read but not acked: read this consumer's pending entries first.
                self._read_pending_first = True
                if outage == "redis":
                    group_ready = False  # a restarted Redis may have come back without it
                await pause(stop, delay)
            else:
                outages.recovered()
                backoff.reset()
                self.liveness.beat()  # a read of the log came back, empty or not

    async def step(self) -> int:
        """Read one batch (waiting up to block_ms), fold it, ack it; returns how many entries."""
        entries = await self._read()
        if not entries:
            return 0
        began = time.monotonic()
        tally = BatchTally()
        try:
            async with self._transaction() as tables:
                await self.apply(
                    tables, entries, dead_letter_invalid=True, tally=tally, known=self._known
                )
        except BaseException:
            self._known.forget()  # folding changed its rows in place, and nothing was written
            raise
        self._known.committed()
        self.metrics.committed(tally, time.monotonic() - began, self.stream)
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xack(self.stream, EVENTS_GROUP, *[entry_id for entry_id, _ in entries])
            if tally.new_jobs:
                # The tables have these jobs now: the API stops answering from their submitted
                # events (which would show a job cleaned up later as queued again).
                pipe.delete(*[queued_key(self.names, job_id) for job_id in tally.new_jobs])
            await pipe.execute()
        return len(entries)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Tables]:
        """One batch's transaction: on PostgreSQL straight on asyncpg (see pg_tables).

        While `run` runs, one connection is held from batch to batch: checking one out of the
        pool, with its pre-ping, cost a batch 0.5 ms of CPU of its 1.55 (issue #9's A4). A
        connection PostgreSQL closed (a restart) is seen closed before it is used, and replaced;
        after any failed batch it is dropped, so the retry starts on a fresh one. A batch outside
        `run` (a test folding the log by hand) gives its connection back to the pool at once.
        """
        if self.engine.dialect.driver != "asyncpg":
            async with self.engine.begin() as conn:
                yield SqlTables(conn)
            return
        driver = await self._held.driver()
        try:
            async with driver.transaction():
                yield PgTables(driver)
        except BaseException:
            await self._held.drop()
            raise
        finally:
            if not self._holding:  # no next batch to hold it for
                await self._held.release()

    async def _read(self) -> list[Entry]:
        # After a restart, entries read but not acked come first (">" would skip them).
        start = "0" if self._read_pending_first else ">"
        block = None if self._read_pending_first else self.block_ms
        response: Any = await self.redis.xreadgroup(
            EVENTS_GROUP, CONSUMER, {self.stream: start}, count=self.batch_size, block=block
        )
        entries: list[Entry] = response[0][1] if response else []
        if self._read_pending_first and not entries:
            self._read_pending_first = False
        return entries

    async def apply(
        self,
        conn: AsyncConnection | Tables,
        entries: Sequence[Entry],
        *,
        dead_letter_invalid: bool,
        tally: BatchTally | None = None,
        known: KnownRows | None = None,
    ) -> None:
        """Fold entries into the tables within the caller's transaction, position included.

        `tally`, when given, counts what was folded (for the metrics, once committed). `known`:
        rows remembered from the last commit, used while the tables are still as it left them;
        what this batch folds is staged in it, for the caller to confirm once committed.
        """
        tables = SqlTables(conn) if isinstance(conn, AsyncConnection) else conn
        position, token = await tables.read_position(self.stream)
        if known is not None:
            known.check(position, token)
        done = store.parse_entry_id(position) if position else (0, 0)
        events: list[tuple[str, AnyEvent]] = []
        last_id = position
        for raw_id, fields in entries:
            entry_id = raw_id.decode()
            if store.parse_entry_id(entry_id) <= done:
                continue  # already folded: a redelivery after a crash, or a rebuild raced us
            last_id = entry_id
            try:
                events.append((entry_id, parse_event(body_of(fields))))
            except ValidationError as error:
                if dead_letter_invalid:
                    await dead_letter(
                        self.redis,
                        self.names,
                        stream=self.stream,
                        entry_id=entry_id,
                        fields=fields,
                        reason=f"not a valid event: {describe_validation_error(error)}",
                    )
                    if tally is not None:
                        tally.dead_letters += 1
        if last_id is None or last_id == position:
            return
        changes = Changes()
        await _load(tables, changes, events, known)
        # Log lines while folding a job's event name the job (and its request, when known).
        # Set per event and reset once per batch: a context manager per event costs more.
        job_token, correlation_token = job_id_var.set(None), correlation_id_var.set(None)
        try:
            for index, (entry_id, event) in enumerate(events):
                _about(changes, event)
                fold(changes, entry_id, event)
                if tally is not None:
                    tally.events[event.type] += 1
                    if isinstance(event, JobSubmitted) and event.attempt == 1:
                        tally.new_jobs.append(event.job_id)
                    if isinstance(event, ChunkCollected):
                        tally.bars[event.source] += len(event.bars)
                if changes.cleanup_before is not None:
                    # In log order: the rows folded so far are written, the cleanup deletes,
                    # and the events after it fold onto what is left.
                    await store.save(tables, changes)
                    changes = Changes()
                    if known is not None:
                        known.forget()  # the cleanup deleted rows it may hold
                    await _load(tables, changes, events[index + 1 :], known)
        finally:
            correlation_id_var.reset(correlation_token)
            job_id_var.reset(job_token)
        await store.save(tables, changes)
        mark = Mark(last_id, uuid4().hex)
        await store.write_position(tables, self.stream, last_id, mark.token)
        if known is not None:
            known.stage(changes, mark)

    async def rebuild(self, page_size: int = 1000) -> int:
        """Rebuild the projections from the retained log, in one transaction; returns entries read.

        Jobs, chunks, job events and workers are emptied and refolded. Bars are kept: refolded
        chunks upsert the same values on the same keys, and the bars of events already trimmed
        from the log (older than the event retention) must not be lost. Cleanup requests on the
        log delete the same jobs again, so the tables come out as the live projector left them.

        Readers see the old tables until the new ones are committed. Invalid entries were
        dead-lettered when first met, so they are skipped here without a second copy.
        """
        count = 0
        async with self.engine.begin() as conn:
            await store.delete_projections(conn)
            start = "-"
            while True:
                page: Any = await self.redis.xrange(self.stream, min=start, count=page_size)
                if not page:
                    break
                await self.apply(conn, page, dead_letter_invalid=False)
                count += len(page)
                start = "(" + page[-1][0].decode()
        log.info("rebuilt projections from %d entries of %s", count, self.stream)
        return count


def _about(changes: Changes, event: AnyEvent) -> None:
    """The job (and request) log lines name from here on: this event's, or none.

    The correlation id is the one the worker logs under too: the job's request's, else its id.
    """
    if not isinstance(event, JobEvent):
        job_id_var.set(None)
        correlation_id_var.set(None)
        return
    if isinstance(event, JobSubmitted):
        correlation = event.correlation_id
    else:
        job = changes.jobs.get(event.job_id)
        correlation = job.correlation_id if job is not None else None
    job_id_var.set(event.job_id)
    correlation_id_var.set(correlation or event.job_id)


async def _load(
    tables: Tables,
    changes: Changes,
    events: Sequence[tuple[str, AnyEvent]],
    known: KnownRows | None,
) -> None:
    """Bring the rows these events touch into `changes`: the known ones, the rest from the
    tables."""
    job_ids, worker_ids = _touched(events)
    if known is not None:
        job_ids = known.lend(changes, job_ids)
    await store.load(tables, changes, job_ids, worker_ids)


def _touched(events: Sequence[tuple[str, AnyEvent]]) -> tuple[set[str], set[str]]:
    """The jobs and workers these events are about: the rows to load before folding them."""
    job_ids = {e.job_id for _, e in events if isinstance(e, JobEvent)}
    worker_ids = {e.worker_id for _, e in events if isinstance(e, WorkerHeartbeat)}
    return job_ids, worker_ids

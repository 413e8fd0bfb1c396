"""The projector: folds the `events` stream into the tables, batch by batch.

Each batch is one transaction that writes the rows and the stream position together, then the
entries are acked. A crash between commit and ack only means the next start re-reads entries the
position already covers, and skips them. An entry that is not a valid event goes to the dlq and
the position moves past it.

While `run` runs on PostgreSQL, a batch commits without waiting for its WAL to reach the disk
(`synchronous_commit = off`: readers see it at once, and the projector goes on to the next
batch), and its entries are acked only once a later commit on the same connection waited for
the disk: when the log goes quiet, or every `FLUSH_EVERY_S` under load. Until then they stay
pending, so a PostgreSQL crash that loses such commits loses no event: the connection breaks,
and the projector reads its pending entries again and folds those the position no longer covers.
Waiting for the disk was 1.2 of a batch's 7.5 ms in issue #9's A4 (a chunk's progress waits on
the batches before it).

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
FLUSH_EVERY_S = 0.1  # under steady load, how long folded entries may wait for the disk


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
        # Commit without waiting for the disk, acking later (see `live`).
        self._defer_acks = False
        self._unflushed = _Unflushed()

    @property
    def stream(self) -> str:
        return self.names.events

    async def run(self, stop: asyncio.Event) -> None:
        """Project until `stop` is set, riding out database and Redis outages."""
        async with self.live():
            await self._run(stop)

    @contextlib.asynccontextmanager
    async def live(self) -> AsyncIterator[None]:
        """Steps taken inside run as `run` runs them: on one held connection and, on
        PostgreSQL, with acks deferred until a commit reached the disk (module docstring)."""
        self._holding = True
        self._defer_acks = self.engine.dialect.driver == "asyncpg"
        try:
            yield
            if self._unflushed:
                with contextlib.suppress(Exception):  # unacked, they are read again next start
                    await self._flush()
        finally:
            self._holding = False
            self._defer_acks = False
            self._unflushed.clear()
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
                # The batch was read but not acked: read this consumer's pending entries first
                # (with those whose commits may not have reached the disk).
                self._read_pending_first = True
                self._unflushed.clear()
                if outage == "redis":
                    group_ready = False  # a restarted Redis may have come back without it
                await pause(stop, delay)
            else:
                outages.recovered()
                backoff.reset()
                self.liveness.beat()  # a read of the log came back, empty or not

    async def step(self) -> int:
        """Read one batch (waiting up to block_ms), fold it, ack it; returns how many entries.

        Inside `live` on PostgreSQL, the ack waits for a later commit that reached the disk (see the
        module's docstring): a read finding nothing flushes at once instead of waiting.
        """
        entries = await self._read(wait=not self._unflushed)
        if not entries:
            if self._unflushed:
                await self._flush()
            return 0
        began = time.monotonic()
        tally = BatchTally()
        durable = not self._defer_acks
        try:
            async with self._transaction(durable=durable) as tables:
                await self.apply(
                    tables, entries, dead_letter_invalid=True, tally=tally, known=self._known
                )
        except _CommitsInDoubt:
            return 0  # nothing written: these entries come again with the pending ones
        except BaseException:
            self._known.forget()  # folding changed its rows in place, and nothing was written
            raise
        self._known.committed()
        self.metrics.committed(tally, time.monotonic() - began, self.stream)
        self._unflushed.add(entries, tally.new_jobs)
        if durable:
            await self._ack_flushed()
        elif self._unflushed.age() >= FLUSH_EVERY_S:
            await self._flush()
        return len(entries)

    async def _flush(self) -> None:
        """Wait for the disk to hold every commit so far, then ack their entries.

        A transaction with an id commits a WAL record, and a synchronous commit returns once the
        WAL up to it is on disk: the earlier commits on this connection's server with it.
        """
        try:
            async with self._transaction(durable=True) as tables:
                assert isinstance(tables, PgTables)  # deferring is for PostgreSQL only
                await tables.driver.fetchval("SELECT pg_current_xact_id()")
        except _CommitsInDoubt:
            return  # their entries are read again
        await self._ack_flushed()

    async def _ack_flushed(self) -> None:
        ids, new_jobs = self._unflushed.take()
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xack(self.stream, EVENTS_GROUP, *ids)
            if new_jobs:
                # The tables have these jobs now: the API stops answering from their submitted
                # events (which would show a job cleaned up later as queued again).
                pipe.delete(*[queued_key(self.names, job_id) for job_id in new_jobs])
            await pipe.execute()

    @contextlib.asynccontextmanager
    async def _transaction(self, *, durable: bool = True) -> AsyncIterator[Tables]:
        """One batch's transaction: on PostgreSQL straight on asyncpg (see pg_tables).

        While `run` runs, one connection is held from batch to batch: checking one out of the
        pool, with its pre-ping, cost a batch 0.5 ms of CPU of its 1.55 (issue #9's A4). A
        connection PostgreSQL closed (a restart) is seen closed before it is used, and replaced;
        after any failed batch it is dropped, so the retry starts on a fresh one. A batch outside
        `run` (a test folding the log by hand) gives its connection back to the pool at once.
        Not `durable`: the commit does not wait for the disk, and the entries it folded wait in
        `_unflushed` (see the module's docstring).
        """
        if self.engine.dialect.driver != "asyncpg":
            async with self.engine.begin() as conn:
                yield SqlTables(conn)
            return
        driver = await self._held.driver()
        if self._unflushed and driver is not self._unflushed.on:
            # The connection those commits ran on broke (a PostgreSQL restart, or a crash that
            # lost them): read every pending entry again, from the position as it stands.
            self._read_pending_first = True
            self._unflushed.clear()
            self._known.forget()
            raise _CommitsInDoubt
        try:
            async with driver.transaction():
                if not durable:
                    await driver.execute("SET LOCAL synchronous_commit = off")
                yield PgTables(driver)
            if not durable:
                self._unflushed.on = driver
        except BaseException:
            await self._held.drop()
            raise
        finally:
            if not self._holding:  # no next batch to hold it for
                await self._held.release()

    async def _read(self, *, wait: bool = True) -> list[Entry]:
        # After a restart, entries read but not acked come first (">" would skip them).
        start = "0" if self._read_pending_first else ">"
        block = self.block_ms if wait and not self._read_pending_first else None
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
            logged = store.parse_entry_id(entry_id)
            if logged <= done:
                continue  # already folded: a redelivery after a crash, or a rebuild raced us
            last_id = entry_id
            if tally is not None:
                tally.logged_ms.append(logged[0])
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


class _CommitsInDoubt(Exception):
    """Commits not yet on disk ran on a connection that broke since: they may be lost."""


class _Unflushed:
    """Entries folded by commits not yet known to be on disk: acked once they are."""

    def __init__(self) -> None:
        self.ids: list[bytes] = []
        self.new_jobs: list[str] = []
        self.since: float | None = None  # when the oldest of them was committed
        self.on: Any = None  # the connection they were committed on

    def __bool__(self) -> bool:
        return bool(self.ids)

    def add(self, entries: Sequence[Entry], new_jobs: list[str]) -> None:
        if self.since is None:
            self.since = time.monotonic()
        self.ids.extend(entry_id for entry_id, _ in entries)
        self.new_jobs.extend(new_jobs)

    def age(self) -> float:
        return 0.0 if self.since is None else time.monotonic() - self.since

    def take(self) -> tuple[list[bytes], list[str]]:
        taken = self.ids, self.new_jobs
        self.clear()
        return taken

    def clear(self) -> None:
        self.ids, self.new_jobs, self.since, self.on = [], [], None, None


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

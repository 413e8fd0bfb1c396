"""A worker process: one source, one job at a time, and every way a command can reach it.

New commands come through a FastStream consumer on the source's command stream. Commands whose
worker died are taken over (XAUTOCLAIM, once idle past `claim_idle_ms`) before any new command
is started, since they are older, and by a timer while the worker is idle. Everything runs under
one slot, so a worker runs one job at a time.

Ack policy: MANUAL, stated explicitly. An entry is acked only after the job's terminal event is
on the log, or with it in one atomic step when the job succeeded (or after an unusable entry was
dead-lettered). A job handed back on shutdown, or whose entry another worker took over, is not
acked: its entry stays pending for the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial
from typing import Any

from faststream import AckPolicy
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.message import RedisStreamMessage
from pydantic import ValidationError
from redis.asyncio import Redis

from backfill_bus import (
    EventLog,
    Names,
    claim_for_command,
    dead_letter,
    ensure_command_group,
    ensure_events_group,
    request_cancel,
)
from backfill_bus.liveness import Liveness
from backfill_bus.logs import job_context
from backfill_bus.metrics import MetricsServer, StreamsCollector, refresh_errors
from backfill_contracts import CancelJob, CollectBars, JobFailed, Outcome, parse_command
from backfill_contracts.errors import describe_validation_error
from backfill_readmodel.engine import create_engine
from backfill_worker.cancel_scanner import CancelScanner
from backfill_worker.claims import ClaimKeeper, Held
from backfill_worker.envelope import command_body
from backfill_worker.heartbeat import Heartbeat
from backfill_worker.metrics import WorkerMetrics
from backfill_worker.resilience import retry_on_disconnect
from backfill_worker.retry import RetryPolicy
from backfill_worker.runner import JobRunner, Limits, RunResult
from backfill_worker.settings import WorkerSettings
from backfill_worker.sharing import SharedFetches, SharingSettings
from backfill_worker.source import HasLifecycle, ReportsStatus, Source
from backfill_worker.stored import StoredData

log = logging.getLogger(__name__)
# Bounded, so a new command held meanwhile waits for at most this many older jobs.
_TAKEOVERS_PER_CHECK = 10
# A job's busy beat goes out this long after it is taken, once the job has (usually) started:
# see Heartbeat.announce. Worker rows show the job that much later, which nobody sees.
_BUSY_BEAT_AFTER_S = 0.02


class Worker:
    def __init__(self, settings: WorkerSettings, source: Source) -> None:
        self.settings = settings
        self.source = source
        self.names = Names(settings.redis_namespace)
        self.redis: Redis = Redis.from_url(settings.redis_url)
        self.engine = None
        if settings.database_url:
            # The worker only reads, a statement at a time (READ COMMITTED gave each its own
            # snapshot anyway): no BEGIN and ROLLBACK around them, and the pool's pre-ping is
            # one round trip instead of three.
            self.engine = create_engine(settings.database_url, isolation_level="AUTOCOMMIT")
        self.events = EventLog(self.redis, self.names, producer=settings.worker_id)
        self.liveness = Liveness(settings.liveness_file)
        self.heartbeat = Heartbeat(
            self.events,
            settings.worker_id,
            source.name,
            settings.heartbeat_interval_s,
            source.status if isinstance(source, ReportsStatus) else None,
            on_beat=self.liveness.beat,
            healthy=self.consuming,
            idle_after_s=settings.idle_heartbeat_delay_s,
        )
        self.stopping = asyncio.Event()
        self.slot = asyncio.Lock()  # one job at a time per worker process
        self.metrics = WorkerMetrics(source.name)
        # Scraped with the worker: its own command stream's backlog, and the dead letters.
        self.stream_metrics = StreamsCollector(
            self.redis,
            [(self.command_stream, f"{source.name} commands"), (self.names.dlq, "dead letters")],
            self.metrics.registry,
            refresh_errors(self.metrics.registry),
        )
        self.metrics_server: MetricsServer | None = None
        if settings.metrics_port:
            self.metrics_server = MetricsServer(
                self.metrics.registry,
                [self.stream_metrics],
                settings.metrics_host,
                settings.metrics_port,
            )
        self.claims = ClaimKeeper(
            self.redis,
            self.command_stream,
            self.names.command_group(source.name),
            settings.worker_id,
            settings.claim_idle_ms,
        )
        self.stored = StoredData(self.engine, self.redis, self.names)
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
            self.stopping,
            Limits(
                settings.job_time_limit_s,
                settings.request_timeout_s,
                settings.cancel_poll_interval_s,
                settings.announce_wait_s,
            ),
            self.metrics,
            self.stored,
            SharedFetches(
                self.redis,
                self.names,
                source.name,
                SharingSettings(settings.fetch_lease_ms, settings.shared_result_ttl_s),
            ),
        )
        self.broker = self._build_broker()
        self._claimer: asyncio.Task[None] | None = None
        self._claim_cursor = "0-0"
        self._last_claim_check = 0.0
        self._stopped = False

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
            ack_policy=AckPolicy.MANUAL,
            title=f"{self.command_stream}:collect",
            description=f"Jobs for the {self.source.name} source: CollectBars and CancelJob.",
        )
        subscriber(self.handle)
        self._subscriber = subscriber
        return broker

    async def start(self) -> None:
        if self.metrics_server is not None:  # first: a taken port fails before any work
            await self.metrics_server.start()
        # Groups at the start of the stream, so commands sent before any worker ran are not lost.
        await ensure_command_group(self.redis, self.names, self.source.name)
        await ensure_events_group(self.redis, self.names)
        await self.heartbeat.set("starting")
        if isinstance(self.source, HasLifecycle):
            await self.source.start()
        self.claims.start()
        await self.broker.start()
        self.heartbeat.start()
        self._claimer = asyncio.create_task(self._claim_loop(), name="claimer")
        await self.heartbeat.set("idle")
        log.info("worker %s consuming %s", self.settings.worker_id, self.command_stream)

    async def stop(self) -> None:
        """Stop taking work, hand the running job back, and close, within `shutdown_grace_s`."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        await self.heartbeat.set("stopping", self.heartbeat.current_job)
        if self._claimer is not None:
            await self._claimer
        # The running job sees `stopping` within a poll and hands itself back; wait for that
        # before the broker stops, so FastStream never cancels a handler halfway.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.shutdown_grace_s):
                async with self.slot:
                    pass
        await self.broker.stop()
        await self.claims.stop()
        if isinstance(self.source, HasLifecycle):
            await self.source.stop()
        await self.heartbeat.stop()
        await self.heartbeat.set("stopped")
        if self.metrics_server is not None:
            await self.metrics_server.stop()
        await self.redis.aclose()
        await self.stored.close()
        if self.engine is not None:
            await self.engine.dispose()

    def consuming(self) -> bool:
        """Whether the command subscriber still reads: FastStream can stop one silently."""
        sub = self._subscriber
        return sub.running and not any(task.done() for task in sub.tasks)

    async def until_subscriber_lost(self) -> None:
        """Return once the command subscriber has not consumed for `subscriber_lost_grace_s`.

        FastStream stops a group subscriber for good (its group was deleted, say) while the
        process and the broker's ping live on, and only a new process subscribes again: the
        caller stops this worker and exits non-zero, so its supervisor restarts it.
        """
        grace = self.settings.subscriber_lost_grace_s
        lost_since: float | None = None
        while True:
            await asyncio.sleep(min(1.0, grace / 4))
            if self.consuming():
                lost_since = None
                continue
            now = time.monotonic()
            if lost_since is None:
                lost_since = now
                log.warning(
                    "the subscriber of %s stopped consuming; exiting in %g s unless it recovers",
                    self.command_stream,
                    grace,
                )
            elif now - lost_since >= grace:
                return

    async def handle(self) -> None:
        """FastStream's handler: the message comes from its context, not from a parameter
        (`msg: RedisStreamMessage`), which fast_depends resolves in a worker thread: measured,
        that thread hop was half of a delivery's time (0.91 ms p50 -> 0.44-0.51 ms)."""
        msg: RedisStreamMessage = self.broker.context.get_local("message")
        raw: Any = msg.raw_message
        entry_id = raw["message_ids"][0]
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        await self.process(entry_id, raw["data"], read_at=time.monotonic())

    async def process(
        self, entry_id: str, fields: dict[bytes, bytes], read_at: float | None = None
    ) -> None:
        """Handle one entry this worker read (at `read_at`, monotonic) under its single job slot."""
        held = self.claims.hold(entry_id)  # kept fresh even while waiting for the slot
        try:
            async with self.slot:
                await self._take_over_abandoned()  # older work first
                await self._process(entry_id, fields, held, read_at)
        finally:
            self.claims.release(entry_id)

    async def _take_over_abandoned(self, force: bool = False) -> None:
        """Run the entries of dead workers and this worker's own orphans; call under the slot.

        Throttled to once per claim interval: each check costs two round trips.
        """
        now = time.monotonic()
        if not force and now - self._last_claim_check < self.settings.claim_interval_ms / 1000:
            return
        self._last_claim_check = now
        for _ in range(_TAKEOVERS_PER_CHECK):
            if self.stopping.is_set():
                return
            try:
                orphans = await self.claims.orphans()
                entry = orphans[0] if orphans else None
                if entry is None:
                    self._claim_cursor, entry = await self.claims.claim_one(self._claim_cursor)
            except Exception:  # Redis away for a moment: the next check tries again
                log.warning("looking for abandoned commands failed", exc_info=True)
                return
            if entry is None:
                return
            log.info("taking over %s %s", self.command_stream, entry[0])
            held = self.claims.hold(entry[0])
            try:
                await self._process(entry[0], entry[1], held)
            finally:
                self.claims.release(entry[0])

    async def _process(
        self, entry_id: str, fields: dict[bytes, bytes], held: Held, read_at: float | None = None
    ) -> None:
        if read_at is not None and time.monotonic() - read_at < self.settings.claim_idle_ms / 2000:
            # Read from the group a moment ago, so first delivered, and still ours: another
            # worker claims an entry only once it idled `claim_idle_ms`. A round trip saved.
            deliveries = 1
        else:
            deliveries = await retry_on_disconnect(
                lambda: self.claims.touch(entry_id), "checking the claim"
            )
        if deliveries < 0 or held.lost:
            log.info("entry %s is no longer ours; leaving it", entry_id)
            return
        try:
            command = parse_command(command_body(fields))
        except ValidationError as error:
            reason = f"not a valid command: {describe_validation_error(error)}"
            await self._dead_letter(entry_id, fields, reason)
            return
        # Every log line about the command, the source's included, names its job and request.
        correlation = command.correlation_id if isinstance(command, CollectBars) else None
        with job_context(command.job_id, correlation or command.job_id):
            await self._dispatch(entry_id, fields, command, deliveries, held)

    async def _dispatch(
        self,
        entry_id: str,
        fields: dict[bytes, bytes],
        command: CollectBars | CancelJob,
        deliveries: int,
        held: Held,
    ) -> None:
        if deliveries > self.settings.max_deliveries:
            await self._poison(entry_id, fields, command, deliveries)
            return
        if isinstance(command, CancelJob):
            await request_cancel(
                self.redis, self.names, self.events, command.job_id, command.reason
            )
            await self.claims.ack(entry_id)
            return
        if command.source != self.source.name:
            reason = f"command for source {command.source!r} on {self.command_stream}"
            await self._dead_letter(entry_id, fields, reason)
            return
        if await self._repeats_another_job(entry_id, fields, command):
            return
        if self.stopping.is_set():
            await self.claims.hand_back(entry_id)
            return
        await self._run_job(entry_id, command, held)

    async def _repeats_another_job(
        self, entry_id: str, fields: dict[bytes, bytes], command: CollectBars
    ) -> bool:
        """A command whose idempotency key names another job is not run: it goes to the dlq.

        Commands from the API claimed their key when they were published; one published straight
        onto the stream claims it here, when a worker first takes it.
        """
        if command.idempotency_key is None:
            return False
        claim = await retry_on_disconnect(
            partial(
                claim_for_command,
                self.redis,
                self.names,
                command,
                self.settings.idempotency_ttl_s,
            ),
            "claiming the idempotency key",
        )
        if claim.job_id == command.job_id:
            return False
        reason = (
            f"idempotency key {command.idempotency_key!r} already names job {claim.job_id}; "
            f"job {command.job_id} was not run"
        )
        await self._dead_letter(entry_id, fields, reason)
        return True

    async def _run_job(self, entry_id: str, command: CollectBars, held: Held) -> None:
        log.info(
            "running job %s: %s %s %s from %s to %s (attempt %d)",
            command.job_id,
            command.source,
            command.symbol,
            command.bar_size.value,
            command.start.isoformat(),
            command.end.isoformat(),
            command.attempt,
        )
        self.heartbeat.announce("busy", command.job_id, after_s=_BUSY_BEAT_AFTER_S)
        self.metrics.busy.set(1)
        try:
            result = await self.runner.run(command, held, self.claims.ack_along(entry_id))
        finally:
            self.metrics.busy.set(0)
            if self.stopping.is_set():
                await self.heartbeat.set("stopping")
            else:
                self.heartbeat.idle_soon()  # said only if no next job starts at once
        # Acked with its success is finished too: the log says so, as operators read it.
        said = RunResult.FINISHED if result is RunResult.ACKED else result
        log.info("job %s left this worker: %s", command.job_id, said.value)
        if result is RunResult.ACKED:
            self.claims.release(entry_id)
        elif result is RunResult.FINISHED:
            await self.claims.ack(entry_id)
        elif result is RunResult.HANDED_BACK:
            await self.claims.hand_back(entry_id)
            log.info("handed job %s back for another worker", command.job_id)

    async def _claim_loop(self) -> None:
        """While idle, take over entries whose worker died (idle past the threshold)."""
        interval = self.settings.claim_interval_ms / 1000
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=interval)
                return
            if self.slot.locked():
                continue
            async with self.slot:
                await self._take_over_abandoned(force=True)

    async def _poison(
        self, entry_id: str, fields: dict[bytes, bytes], command: Any, deliveries: int
    ) -> None:
        """A command delivered too often (its workers keep dying on it) stops being retried."""
        reason = (
            f"delivered {deliveries} times, more than the limit of "
            f"{self.settings.max_deliveries}: its workers kept stopping on it"
        )
        await self._dead_letter(entry_id, fields, reason, ack=False)
        if isinstance(command, CollectBars):
            await self.events.emit(
                JobFailed,
                job_id=command.job_id,
                attempt=command.attempt,
                outcome=Outcome.DEAD_LETTERED,
                message=reason,
            )
            self.metrics.job_finished("failed")
        await self.claims.ack(entry_id)

    async def _dead_letter(
        self, entry_id: str, fields: dict[bytes, bytes], reason: str, *, ack: bool = True
    ) -> None:
        await dead_letter(
            self.redis,
            self.names,
            stream=self.command_stream,
            entry_id=entry_id,
            fields=fields,
            reason=reason,
        )
        self.metrics.dead_letters.labels(self.command_stream).inc()
        if ack:
            await self.claims.ack(entry_id)

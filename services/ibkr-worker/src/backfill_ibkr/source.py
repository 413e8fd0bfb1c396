"""The `ibkr` source: qualified contracts, plans clamped to IB's earliest bar, paced requests.

Every request goes through `_request`: wait until the connection is usable, send, then watch
the answer, the errors IB sends about that request (321 does not end it), and the connection.
A request whose answer can no longer come (the socket dropped, or IB said 1101 "data lost") is
sent again; while IB connectivity is lost (1100) the request waits, not counting its timeout.
A timeout is always reported as a timeout, never as an empty answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from backfill_contracts import CollectBars, IbkrOptions, Outcome, SecType, WhatToShow
from backfill_ibkr.bars import exchange_zone, to_batch
from backfill_ibkr.connection import Connection
from backfill_ibkr.instruments import (
    Instrument,
    choose,
    parse_job_options,
    requested_contract,
)
from backfill_ibkr.library import IbLibrary
from backfill_ibkr.outcomes import classify
from backfill_ibkr.pacing import PacedRequest, PacingGovernor
from backfill_ibkr.planning import IB_BAR_SIZE, duration_for, end_time, plan_chunks
from backfill_ibkr.settings import IbkrSettings
from backfill_worker import Fetched, FetchRequest, Plan, SourceError, waiting

log = logging.getLogger(__name__)
T = TypeVar("T")
_POLL_S = 0.05
_PLAN_TRIES = 3


class _Resend(Exception):
    """The answer to a request in flight was lost with the connection: send it again."""


class IbkrSource:
    def __init__(
        self,
        settings: IbkrSettings,
        library: IbLibrary,
        connection: Connection,
        governor: PacingGovernor,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.library = library
        self.connection = connection
        self.governor = governor
        self.now = now
        self._instruments: dict[str, Instrument] = {}  # qualified once per job

    @property
    def name(self) -> str:
        return "ibkr"

    async def start(self) -> None:
        await self.connection.start()

    async def stop(self) -> None:
        await self.connection.stop()

    def status(self) -> dict[str, Any]:
        return {"ibkr": self.connection.status(), "pacing": dict(self.governor.usage)}

    # --- planning -----------------------------------------------------------------------------

    def series_of(self, job: CollectBars) -> tuple[str, str] | None:
        """Stocks and indices are stored under their symbol; a future or an FX pair under
        what IB qualifies it as (ESH5, EUR.USD), known only by asking."""
        options = parse_job_options(job)
        if options.sec_type in (SecType.STK, SecType.IND):
            return job.symbol, options.price_type
        return None

    async def plan(self, job: CollectBars) -> Plan:
        options = parse_job_options(job)
        instrument = await self._planning_step(lambda: self._qualify(job.symbol, options))
        self._instruments = {job.job_id: instrument}
        head = await self._planning_step(lambda: self._head_timestamp(instrument, options))
        start = max(job.start, head) if head is not None else job.start
        end = min(job.end, self.now())
        chunks = plan_chunks(job.bar_size, start, end) if start < end else []
        return Plan(
            price_type=options.price_type,
            chunks=chunks,
            instrument=instrument.name if instrument.name != job.symbol else None,
        )

    async def _planning_step(self, step: Callable[[], Awaitable[T]]) -> T:
        """Planning requests get a few tries of their own: the runner retries chunks only."""
        for attempt in range(1, _PLAN_TRIES + 1):
            try:
                return await step()
            except SourceError as error:
                if not error.outcome.is_transient or attempt == _PLAN_TRIES:
                    raise
                log.info("planning request failed (%s); trying again", error.message)
                await asyncio.sleep(min(2.0**attempt, 10.0) * self.settings.ibkr_pacing_scale)
        raise AssertionError("unreachable")

    async def _qualify(self, symbol: str, options: IbkrOptions) -> Instrument:
        contract = requested_contract(self.library, symbol, options)
        try:
            details = await self._request(
                lambda ib: ib.reqContractDetailsAsync(contract),
                None,
                self.settings.ibkr_request_timeout_s,
                "contract details",
            )
        except SourceError as error:
            if error.outcome is Outcome.NO_DATA:
                details = []
            else:
                raise
        return choose(symbol, options, list(details))

    async def _head_timestamp(
        self, instrument: Instrument, options: IbkrOptions
    ) -> datetime | None:
        """IB's earliest bar for the contract, or None when IB does not say."""
        try:
            head = await self._request(
                lambda ib: ib.reqHeadTimeStampAsync(
                    instrument.contract, options.what_to_show.value, options.use_rth, 2
                ),
                lambda ib, req_id: ib.client.cancelHeadTimeStamp(req_id),
                self.settings.ibkr_request_timeout_s,
                "head timestamp",
            )
        except SourceError as error:
            if error.outcome is Outcome.NO_DATA:
                return None
            raise
        if not isinstance(head, datetime):
            return None
        return head if head.tzinfo is not None else head.replace(tzinfo=UTC)

    # --- fetching ----------------------------------------------------------------------------

    async def fetch(self, request: FetchRequest) -> Fetched:
        job, chunk = request.job, request.chunk
        options = parse_job_options(job)
        instrument = self._instruments.get(job.job_id)
        if instrument is None:  # never planned here (cannot happen through the runner)
            instrument = await self._qualify(job.symbol, options)
            self._instruments = {job.job_id: instrument}
        bar_size = IB_BAR_SIZE[job.bar_size]
        duration = duration_for(job.bar_size, chunk.start, chunk.end)
        end = end_time(chunk.end)
        what = options.what_to_show.value
        paced = PacedRequest(
            contract_key=f"{instrument.con_id}:{instrument.exchange}:{what}",
            identity=f"{instrument.con_id}|{end}|{duration}|{bar_size}|{what}|{options.use_rth}",
            bar_size=job.bar_size,
            bid_ask=options.what_to_show is WhatToShow.BID_ASK,
        )
        while True:
            await self._pace(paced)
            try:
                bars = await self._historical(instrument, end, duration, bar_size, options)
            except _Resend:
                log.info("answer to chunk %s lost with the connection; fetching it again", chunk)
                continue
            zone = exchange_zone(instrument.time_zone)
            return Fetched(to_batch(bars, chunk.start, chunk.end, zone), [], zone.key)

    async def _historical(
        self, instrument: Instrument, end: str, duration: str, bar_size: str, options: IbkrOptions
    ) -> list[Any]:
        request_id = f"{self.settings.worker_id}:{time.monotonic_ns()}"
        timeout = self.settings.request_timeout_s
        while not await self.governor.open_request(request_id, timeout):
            async with waiting(Outcome.PACING, "waiting: 50 historical requests are open at IB"):
                await asyncio.sleep(0.5)
        try:
            result = await self._request(
                lambda ib: ib.reqHistoricalDataAsync(
                    instrument.contract,
                    endDateTime=end,
                    durationStr=duration,
                    barSizeSetting=bar_size,
                    whatToShow=options.what_to_show.value,
                    useRTH=options.use_rth,
                    formatDate=2,
                    timeout=0,  # ours, below: the library's would look like "no data"
                ),
                lambda ib, req_id: ib.client.cancelHistoricalData(req_id),
                None,  # the runner's request timeout bounds it, pausing while IB is away
                "historical data",
                resend_when_lost=True,
            )
        except SourceError as error:
            if error.outcome is Outcome.NO_DATA:
                return []
            if error.outcome is Outcome.PACING:
                error.retry_after_s = 15 * self.settings.ibkr_pacing_scale
            raise
        finally:
            with contextlib.suppress(Exception):
                await self.governor.close_request(request_id)
        return list(result)

    async def _pace(self, paced: PacedRequest) -> None:
        """Wait for a slot under the pacing rules; a slot woken up late is taken again."""
        while True:
            slot = await self.governor.reserve(paced)
            try:
                delay = slot.at - time.time()
                if delay > 0:
                    message = f"waiting for pacing, next slot in {delay:.0f} s"
                    if slot.binding_rule:
                        message += f" ({slot.binding_rule} rule)"
                    async with waiting(Outcome.PACING, message, slot.at):
                        await asyncio.sleep(delay)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.governor.give_back(slot))
                raise
            if time.time() - slot.at <= self.settings.ibkr_pacing_margin_s / 2:
                return
            await self.governor.give_back(slot)  # the gateway would see it later than planned

    # --- one request, watched ------------------------------------------------------------------

    async def _connected(self) -> Any:
        connection = self.connection
        while not (connection.ready.is_set() and connection.ib is not None):
            if connection.state == "lost":
                message = "IB connectivity lost (1100): waiting for it to return"
            else:
                where = f"{connection.host}:{connection.port}"
                message = f"waiting for the IB Gateway at {where}"
                if connection.last_error:
                    message += f" ({connection.last_error})"
            async with waiting(Outcome.GATEWAY_DOWN, message):
                await connection.ready.wait()
        return connection.ib

    async def _request(
        self,
        send: Callable[[Any], Awaitable[T]],
        cancel: Callable[[Any, int], None] | None,
        timeout_s: float | None,
        what: str,
        resend_when_lost: bool = False,
    ) -> T:
        while True:
            ib = await self._connected()
            generation = self.connection.generation
            # The id the library is about to give this request, so IB's errors about it
            # (321 never ends it) can be told from the rest. Both libraries count the same way.
            req_id = int(ib.client._reqIdSeq)
            errors = self.connection.watch_errors(req_id)
            task = asyncio.ensure_future(send(ib))
            try:
                return await self._answer(task, errors, generation, timeout_s, what)
            except _Resend:
                if not resend_when_lost:
                    continue  # planning requests are simply sent again
                raise
            finally:
                self.connection.unwatch_errors(req_id)
                if not task.done():
                    task.cancel()
                    if cancel is not None and ib.isConnected():
                        with contextlib.suppress(Exception):
                            cancel(ib, req_id)

    async def _answer(
        self,
        task: asyncio.Future[T],
        errors: asyncio.Queue[Any],
        generation: int,
        timeout_s: float | None,
        what: str,
    ) -> T:
        connection = self.connection
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        request_error = self.library.request_error
        while True:
            done, _ = await asyncio.wait({task}, timeout=_POLL_S)
            if done:
                try:
                    return task.result()
                except request_error as error:
                    code, text = int(getattr(error, "code", 0)), str(getattr(error, "message", ""))
                    classified = classify(code, text)
                    raise SourceError(classified.outcome, classified.message) from None
                except ConnectionError as error:
                    raise _Resend from error
            while not errors.empty():
                event = errors.get_nowait()
                if event.code == 321:  # a warning to the library: the request would hang
                    classified = classify(event.code, event.text)
                    raise SourceError(classified.outcome, classified.message)
            if connection.generation != generation:
                raise _Resend
            if connection.state == "lost":
                async with waiting(
                    Outcome.GATEWAY_DOWN, "IB connectivity lost (1100): waiting for it to return"
                ):
                    while connection.state == "lost" and connection.generation == generation:
                        await connection.next_change(timeout_s=1.0)
                if deadline is not None:
                    deadline = time.monotonic() + (timeout_s or 0)
                continue
            if deadline is not None and time.monotonic() >= deadline:
                raise SourceError(
                    Outcome.TIMEOUT, f"IB did not answer the {what} request in {timeout_s:g} s"
                )

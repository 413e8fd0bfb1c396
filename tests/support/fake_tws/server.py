"""The asyncio side of the fake gateway: the listening socket, one `ClientSession` per
connection, and `GatewayCore`, the state they share (contracts, scripted failures, pacing,
connectivity, the request log).

Everything here runs on the gateway's own event loop; `FakeGateway` (gateway.py) marshals the
test's calls onto it. The lists tests read are appended under `GatewayCore.lock`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from tests.support.fake_tws import answers, messages
from tests.support.fake_tws.answers import ACCOUNT, Message
from tests.support.fake_tws.bars import (
    BAR_SIZES,
    SERVED_WHAT_TO_SHOW,
    UNSERVED_WHAT_TO_SHOW,
    BarSize,
    iter_bars,
    parse_duration,
    parse_end,
    too_long,
)
from tests.support.fake_tws.market import FakeContract, default_contracts, resolve
from tests.support.fake_tws.pacing import PacedRequest, PacingMonitor, PacingRule
from tests.support.fake_tws.protocol import (
    ContractQuery,
    Fields,
    FrameProtocol,
    HistoricalRequest,
    In,
    Out,
    ProtocolError,
    encode,
    negotiate,
    parse_contract_details,
    parse_head_timestamp,
    parse_historical,
)
from tests.support.fake_tws.records import Injection, Kind, RequestRecord, Violation

log = logging.getLogger("tests.fake_tws")

HOST = "127.0.0.1"
#: Bars made between two yields to the loop (well under a millisecond of work).
_BARS_PER_SLICE = 32


class Settings(Protocol):
    """What the core reads live from its owner (tests may change these at any time)."""

    latency_s: float
    client_ids_in_use: set[int]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Checked:
    """A historical request that passed validation: what its answer is made of."""

    contract: FakeContract
    bar_size: BarSize
    window: tuple[datetime, datetime]
    too_long: bool
    naive_end: bool


@dataclass
class PendingHistorical:
    """A historical request that is open: accepted, not yet answered."""

    request: HistoricalRequest
    #: None for a hung request: it is never answered.
    checked: Checked | None
    #: Waiting for connectivity to come back.
    held: bool = False
    task: asyncio.Task[None] | None = None


class GatewayCore:
    def __init__(self, settings: Settings, rules: Sequence[PacingRule], scale: float) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.contracts: list[FakeContract] = default_contracts()
        self.injections: list[Injection] = []
        self.pacing = PacingMonitor(rules, scale)
        self.sessions: set[ClientSession] = set()
        self.lost = False
        self.records: list[RequestRecord] = []
        self.violations: list[Violation] = []
        self.errors: list[str] = []
        #: Answers sent, by kind ("historical", "head", "details") or "error <code>".
        self.answers: Counter[str] = Counter()
        self.per_client: Counter[int] = Counter()
        self.client_ids: set[int] = set()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    # ---- listening -----------------------------------------------------------------------

    async def listen(self, port: int) -> int:
        if self.server is None:
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(
                lambda: FrameProtocol(self._on_connect), HOST, port
            )
            self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    def stop_listening(self) -> None:
        """Close the listening socket; established sessions stay up."""
        if self.server is not None:
            self.server.close()
            self.server = None

    def _on_connect(self, wire: FrameProtocol) -> None:
        session = ClientSession(self, wire)
        self.sessions.add(session)
        task = asyncio.get_running_loop().create_task(session.run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.stop_listening()
        self.drop_connections()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)

    # ---- control (called on the loop by FakeGateway) -------------------------------------

    def drop_connections(self) -> None:
        for session in list(self.sessions):
            session.abort()

    def reset(self, rules: Sequence[PacingRule], scale: float) -> None:
        self.drop_connections()
        self.contracts = default_contracts()
        self.injections.clear()
        self.pacing = PacingMonitor(rules, scale)
        self.lost = False
        with self.lock:
            self.records.clear()
            self.violations.clear()
            self.errors.clear()
            self.answers.clear()
            self.per_client.clear()

    def broadcast(self, message: Message) -> None:
        for session in list(self.sessions):
            if session.client_id is not None:
                session.send(message)

    def connectivity_lost(self) -> None:
        self.lost = True
        self.broadcast(answers.error(-1, 1100))

    def connectivity_restored(self, data_lost: bool) -> None:
        self.lost = False
        self.broadcast(answers.error(-1, 1101 if data_lost else 1102))
        for session in list(self.sessions):
            for pending in list(session.pending.values()):
                if data_lost:
                    session.finish(pending)
                elif pending.held:
                    session.schedule_answer(pending, 0.0)

    # ---- bookkeeping ---------------------------------------------------------------------

    def record(self, record: RequestRecord) -> RequestRecord:
        with self.lock:
            self.records.append(record)
            self.per_client[record.client_id] += 1
        return record

    def count_answer(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1

    def violation(self, rule: PacingRule, record: RequestRecord) -> None:
        with self.lock:
            self.violations.append(Violation(rule.name, record.time, record))

    def bug(self, where: str) -> None:
        """An exception in the fake itself: logged, kept for the fixture to fail the test."""
        text = f"{where}:\n{traceback.format_exc()}"
        log.error("fake TWS bug in %s", text)
        with self.lock:
            self.errors.append(text)

    def take_injection(self, kind: Kind, symbol: str) -> Injection | None:
        for injection in self.injections:
            if injection.matches(kind, symbol):
                injection.remaining -= 1
                if injection.remaining <= 0:
                    self.injections.remove(injection)
                return injection
        return None

    def register(self, session: ClientSession, client_id: int) -> bool:
        """Claim a client id; False if it is taken (by a live session or by the test)."""
        if client_id in self.settings.client_ids_in_use or any(
            other.client_id == client_id for other in self.sessions if other is not session
        ):
            return False
        session.client_id = client_id
        with self.lock:
            self.client_ids.add(client_id)
        return True

    def unregister(self, session: ClientSession) -> None:
        self.sessions.discard(session)
        if session.client_id is not None:
            with self.lock:
                self.client_ids.discard(session.client_id)


class ClientSession:
    def __init__(self, core: GatewayCore, wire: FrameProtocol) -> None:
        self.core = core
        self.wire = wire
        self.client_id: int | None = None
        self.server_version = 0
        self.pending: dict[int, PendingHistorical] = {}
        self.closing = False
        self._next_order_id = 1
        self._handlers: dict[int, Callable[[Fields, float], None]] = {
            In.START_API: self.on_start_api,
            In.REQ_HISTORICAL_DATA: self.on_historical,
            In.CANCEL_HISTORICAL_DATA: self.on_cancel_historical,
            In.REQ_HEAD_TIMESTAMP: self.on_head_timestamp,
            In.REQ_CONTRACT_DETAILS: self.on_contract_details,
            In.REQ_POSITIONS: self.reply([Out.POSITION_END, 1]),
            In.REQ_OPEN_ORDERS: self.reply([Out.OPEN_ORDER_END, 1]),
            In.REQ_ALL_OPEN_ORDERS: self.reply([Out.OPEN_ORDER_END, 1]),
            In.REQ_COMPLETED_ORDERS: self.reply([Out.COMPLETED_ORDERS_END]),
            In.REQ_ACCOUNT_UPDATES: self.on_account_updates,
            In.REQ_ACCOUNT_UPDATES_MULTI: self.on_account_updates_multi,
            In.REQ_ACCOUNT_SUMMARY: self.on_account_summary,
            In.REQ_EXECUTIONS: self.on_executions,
            In.REQ_IDS: self.on_req_ids,
            In.REQ_MANAGED_ACCTS: self.reply([Out.MANAGED_ACCTS, 1, ACCOUNT]),
            In.REQ_CURRENT_TIME: lambda _f, _t: self.send(answers.current_time(utcnow())),
            # Acknowledged by silence, as TWS does.
            In.REQ_MARKET_DATA_TYPE: self.ignore,
            In.REQ_AUTO_OPEN_ORDERS: self.ignore,
            In.CANCEL_ACCOUNT_SUMMARY: self.ignore,
            In.CANCEL_POSITIONS: self.ignore,
            In.CANCEL_ACCOUNT_UPDATES_MULTI: self.ignore,
            In.CANCEL_HEAD_TIMESTAMP: self.ignore,
        }

    # ---- the connection ------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self.closing:
                incoming = await self.wire.inbox.get()
                if incoming.versions is not None:
                    self.server_version = negotiate(*incoming.versions)
                    self.send([self.server_version, answers.connection_time(utcnow())])
                elif incoming.fields is not None:
                    if incoming.fields:
                        self.dispatch(incoming.fields, incoming.received)
                else:
                    log.debug("session of client %s ends: %s", self.client_id, incoming.reason)
                    break
        except ProtocolError as exc:
            log.info("dropping a client that does not speak TWS: %s", exc)
        except Exception:
            self.core.bug(f"session of client {self.client_id}")
        finally:
            self.abort()

    def dispatch(self, fields: list[str], received: float) -> None:
        try:
            msg_id = int(fields[0])
        except ValueError:
            log.warning("client %s sent a message without an id: %r", self.client_id, fields)
            return
        log.debug("client %s sent %s", self.client_id, fields)
        handler = self._handlers.get(msg_id)
        if handler is None:
            log.info("ignoring message %d from client %s: %r", msg_id, self.client_id, fields)
            return
        try:
            handler(Fields(fields), received)
        except Exception:
            self.core.bug(f"message {fields!r} from client {self.client_id}")

    def send(self, message: Message) -> None:
        if not self.closing:
            self.wire.write(encode(message))

    def close_after_flush(self) -> None:
        """Close as TWS does after refusing a client: what was written still goes out."""
        self.closing = True
        self.wire.close()
        self.core.unregister(self)

    def abort(self) -> None:
        """Drop the connection now; its open requests are forgotten."""
        if not self.closing:
            self.closing = True
            self.wire.abort()
        for pending in list(self.pending.values()):
            self.finish(pending)
        self.core.unregister(self)

    # ---- small handlers ------------------------------------------------------------------

    def reply(self, message: Message) -> Callable[[Fields, float], None]:
        return lambda _fields, _received: self.send(message)

    def ignore(self, _fields: Fields, _received: float) -> None:
        pass

    def on_start_api(self, fields: Fields, _received: float) -> None:
        if self.client_id is not None:
            return  # a second startApi changes nothing
        fields.skip(2)
        client_id = fields.integer()
        if not self.core.register(self, client_id):
            self.send(answers.error(-1, 326))
            self.close_after_flush()
            return
        for message in answers.startup(ACCOUNT, self._next_order_id):
            self.send(message)
        if self.core.lost:
            self.send(answers.error(-1, 1100))

    def on_account_updates(self, fields: Fields, _received: float) -> None:
        fields.skip(2)
        subscribe = fields.flag()
        account = fields.text() or ACCOUNT
        if subscribe:
            for message in answers.account_updates(account, utcnow()):
                self.send(message)

    def on_account_updates_multi(self, fields: Fields, _received: float) -> None:
        fields.skip(2)
        req_id = fields.integer()
        account = fields.text() or ACCOUNT
        model_code = fields.text()
        for message in answers.account_updates_multi(req_id, account, model_code):
            self.send(message)

    def on_account_summary(self, fields: Fields, _received: float) -> None:
        fields.skip(2)
        for message in answers.account_summary(fields.integer(), ACCOUNT):
            self.send(message)

    def on_executions(self, fields: Fields, _received: float) -> None:
        fields.skip(2)
        self.send([Out.EXECUTION_DATA_END, 1, fields.integer()])

    def on_req_ids(self, _fields: Fields, _received: float) -> None:
        self.send([Out.NEXT_VALID_ID, 1, self._next_order_id])

    # ---- contract details and head timestamps --------------------------------------------

    def _record(
        self,
        received: float,
        kind: Kind,
        request: tuple[int, ContractQuery],
        contract: FakeContract | None,
        *,
        what_to_show: str = "",
        bar_size: str = "",
        duration: str = "",
        end_datetime: str = "",
        use_rth: bool = False,
        format_date: int = 0,
    ) -> RequestRecord:
        req_id, query = request
        return self.core.record(
            RequestRecord(
                time=received,
                client_id=self.client_id if self.client_id is not None else -1,
                kind=kind,
                req_id=req_id,
                con_id=contract.con_id if contract else query.con_id,
                symbol=contract.symbol if contract else query.symbol,
                sec_type=contract.sec_type if contract else query.sec_type,
                exchange=query.exchange,
                what_to_show=what_to_show,
                bar_size=bar_size,
                duration=duration,
                end_datetime=end_datetime,
                use_rth=use_rth,
                format_date=format_date,
            )
        )

    def _injected(self, kind: Kind, record: RequestRecord) -> Injection | None:
        """Send the scripted error, if one matches; a hang sends nothing."""
        injection = self.core.take_injection(kind, record.symbol)
        if injection is not None and injection.code is not None:
            text = messages.text_for(
                injection.code,
                injection.text,
                req_id=record.req_id,
                symbol=record.symbol,
                exchange=record.exchange or "SMART",
                sec_type=record.sec_type or "STK",
                what_to_show=record.what_to_show,
            )
            self.send_error(record.req_id, injection.code, text)
        return injection

    def send_error(self, req_id: int, code: int, text: str | None = None) -> None:
        self.send(answers.error(req_id, code, text))
        self.core.count_answer(f"error {code}")

    def _unresolved(self, req_id: int, query: ContractQuery, found: int) -> None:
        text = messages.ambiguous(query.symbol) if found > 1 else None
        self.send_error(req_id, 200, text)

    def on_contract_details(self, fields: Fields, received: float) -> None:
        request = parse_contract_details(fields)
        found = resolve(self.core.contracts, request.contract)
        single = found[0] if len(found) == 1 else None
        record = self._record(received, "details", (request.req_id, request.contract), single)
        if self._injected("details", record):
            return
        if not found:
            self.send_error(request.req_id, 200)
            return
        now = utcnow()
        for contract in found:
            self.send(answers.contract_details(request.req_id, contract, now))
        self.send([Out.CONTRACT_DATA_END, 1, request.req_id])
        self.core.count_answer("details")

    def on_head_timestamp(self, fields: Fields, received: float) -> None:
        request = parse_head_timestamp(fields)
        found = resolve(self.core.contracts, request.contract)
        single = found[0] if len(found) == 1 else None
        record = self._record(
            received,
            "head",
            (request.req_id, request.contract),
            single,
            what_to_show=request.what_to_show,
            use_rth=request.use_rth,
            format_date=request.format_date,
        )
        if self._injected("head", record):
            return
        if single is None:
            self._unresolved(request.req_id, request.contract, len(found))
            return
        if request.what_to_show not in SERVED_WHAT_TO_SHOW:
            self.send_error(
                request.req_id,
                321,
                messages.invalid_request(f"Invalid whatToShow: {request.what_to_show}"),
            )
            return
        self.send(
            answers.head_timestamp(request.req_id, single.head_timestamp, request.format_date)
        )
        self.core.count_answer("head")

    # ---- historical data -----------------------------------------------------------------

    def on_historical(self, fields: Fields, received: float) -> None:
        request = parse_historical(fields)
        found = resolve(self.core.contracts, request.contract)
        single = found[0] if len(found) == 1 else None
        record = self._record(
            received,
            "historical",
            (request.req_id, request.contract),
            single,
            what_to_show=request.what_to_show,
            bar_size=request.bar_size,
            duration=request.duration,
            end_datetime=request.end_datetime,
            use_rth=request.use_rth,
            format_date=request.format_date,
        )
        injection = self._injected("historical", record)
        if injection is not None:
            if injection.code is None:
                self._open(PendingHistorical(request, None))
            return
        checked = self._check(request, found)
        if checked is None:
            return
        if checked.naive_end:
            self.send_error(request.req_id, 2174)
        paced = PacedRequest(
            con_id=checked.contract.con_id,
            exchange=request.contract.exchange,
            what_to_show=request.what_to_show,
            end_datetime=request.end_datetime,
            duration=request.duration,
            bar_size=request.bar_size,
            use_rth=request.use_rth,
            bar_seconds=checked.bar_size.nominal_seconds,
        )
        broken = self.core.pacing.check(paced, received)
        if broken is not None:
            self.core.violation(broken, record)
            self.send_error(request.req_id, 162, messages.PACING)
            return
        if checked.too_long:
            self.send_error(request.req_id, 162, messages.TOO_LONG)
            return
        pending = PendingHistorical(request, checked)
        self._open(pending)
        self.schedule_answer(pending, self.core.settings.latency_s)

    def _check(self, request: HistoricalRequest, found: list[FakeContract]) -> Checked | None:
        """IB's validation of a historical request; sends the error and returns None if it
        fails (the contract: 200; bar size, whatToShow, duration: 321; end time: 10314)."""
        req_id = request.req_id
        if len(found) != 1:
            self._unresolved(req_id, request.contract, len(found))
            return None
        bar_size = BAR_SIZES.get(request.bar_size)
        if bar_size is None:
            self.send_error(req_id, 321, messages.bar_size_invalid())
            return None
        if request.what_to_show not in SERVED_WHAT_TO_SHOW:
            served = request.what_to_show in UNSERVED_WHAT_TO_SHOW
            cause = (
                f"{request.what_to_show} bars are not served by the fake TWS"
                if served
                else f"Invalid whatToShow: {request.what_to_show}"
            )
            self.send_error(req_id, 321, messages.invalid_request(cause))
            return None
        duration = parse_duration(request.duration)
        if duration is None:
            cause = f"Historical data duration format is invalid: {request.duration!r}"
            self.send_error(req_id, 321, messages.invalid_request(cause))
            return None
        end = parse_end(request.end_datetime, utcnow())
        if end is None:
            self.send_error(req_id, 10314)
            return None
        window = (duration.before(end.when), end.when)
        return Checked(found[0], bar_size, window, too_long(bar_size, duration), end.naive)

    def _open(self, pending: PendingHistorical) -> None:
        old = self.pending.pop(pending.request.req_id, None)
        if old is not None:
            self.finish(old)
        self.pending[pending.request.req_id] = pending
        self.core.pacing.opened()

    def finish(self, pending: PendingHistorical) -> None:
        """The request is no longer open (answered, cancelled or dropped)."""
        if self.pending.get(pending.request.req_id) is pending:
            del self.pending[pending.request.req_id]
            self.core.pacing.closed()
        if pending.task is not None and pending.task is not asyncio.current_task():
            pending.task.cancel()

    def schedule_answer(self, pending: PendingHistorical, delay: float) -> None:
        """Answer in a task: the loop keeps reading (and time-stamping) other requests while
        the bars are made."""
        if pending.checked is None:
            return  # hung
        if self.core.lost:
            pending.held = True
            return
        pending.held = False
        pending.task = asyncio.get_running_loop().create_task(self._answer(pending, delay))

    def _is_open(self, pending: PendingHistorical) -> bool:
        return not self.closing and self.pending.get(pending.request.req_id) is pending

    async def _answer(self, pending: PendingHistorical, delay: float) -> None:
        try:
            # Even without latency, let the loop read what has already arrived first.
            await asyncio.sleep(delay)
            if not self._is_open(pending):
                return
            if self.core.lost:
                pending.held = True
                return
            request, checked = pending.request, pending.checked
            if checked is None:
                return
            message = await self._historical_message(request, checked)
            if not self._is_open(pending):
                return  # cancelled or dropped while the bars were made
            self.finish(pending)
            if message is None:
                contract = checked.contract
                exchange = request.contract.exchange or contract.exchange
                symbol = contract.effective_local_symbol
                text = messages.no_data(symbol, exchange, request.what_to_show)
                self.send_error(request.req_id, 162, text)
                return
            self.send(message)
            self.core.count_answer("historical")
        except asyncio.CancelledError:
            raise
        except Exception:
            self.core.bug(f"answering request {pending.request.req_id}")

    @staticmethod
    async def _historical_message(request: HistoricalRequest, checked: Checked) -> Message | None:
        """The historicalData message, or None if the window holds no bars (IB: no data)."""
        contract = checked.contract
        fields: Message = []
        count = 0
        bars = iter_bars(
            contract,
            checked.bar_size,
            request.what_to_show,
            request.use_rth,
            checked.window,
            utcnow(),
        )
        for bar in bars:
            fields += answers.bar_fields(bar, request.format_date, contract.time_zone)
            count += 1
            if count % _BARS_PER_SLICE == 0:
                await asyncio.sleep(0)
        if count == 0:
            return None
        header = answers.historical_header(request.req_id, contract, count, checked.window)
        return header + fields

    def on_cancel_historical(self, fields: Fields, _received: float) -> None:
        fields.skip(2)
        req_id = fields.integer()
        pending = self.pending.get(req_id)
        if pending is None:
            self.send_error(req_id, 366, messages.no_query_found(req_id))
            return
        self.finish(pending)
        self.send_error(req_id, 162, messages.query_cancelled(req_id))

"""The TWS socket protocol as the fake speaks it: framing, message ids, request parsing.

Wire format (both directions, after the handshake): a 4-byte big-endian length, then the
message: fields as text, each terminated by NUL. The client opens with `API\\0` followed by one
length-prefixed `v<min>..<max>[ <options>]`; the server answers with exactly two fields (the
server version and the connection time), which is how the client tells the handshake apart.

Field orders follow ib_async's and ib_insync's `client.py` (what they send) and `decoder.py`
(what they parse) for server versions 164..178: no version field on contractDetails, an
`advancedOrderRejectJson` field on errors (>= 166; ib_insync fails to unpack an error
without it), historical bars and their end in one message (< 196).
"""

from __future__ import annotations

import asyncio
import re
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

#: The highest version the fake negotiates (ib_async asks for 157..178, ib_insync 157..176).
MAX_SERVER_VERSION = 178
MIN_SERVER_VERSION = 157
#: A frame longer than this is a client bug (or not a TWS client at all): drop the connection.
MAX_FRAME = 16 * 1024 * 1024

_HEADER = struct.Struct(">I")
_VERSION_RANGE = re.compile(rb"v(\d+)(?:\.\.(\d+))?")


class In:
    """Ids of client -> server messages the fake handles."""

    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_ALL_OPEN_ORDERS = 16
    REQ_MANAGED_ACCTS = 17
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    REQ_ACCOUNT_SUMMARY = 62
    CANCEL_ACCOUNT_SUMMARY = 63
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_COMPLETED_ORDERS = 99


class Out:
    """Ids of server -> client messages the fake sends."""

    ERR_MSG = 4
    ACCT_VALUE = 6
    ACCT_UPDATE_TIME = 8
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCTS = 15
    HISTORICAL_DATA = 17
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    POSITION_END = 62
    ACCOUNT_SUMMARY = 63
    ACCOUNT_SUMMARY_END = 64
    ACCOUNT_UPDATE_MULTI = 73
    ACCOUNT_UPDATE_MULTI_END = 74
    HEAD_TIMESTAMP = 88
    COMPLETED_ORDERS_END = 102


class ProtocolError(Exception):
    """The peer broke the framing or the handshake: the session is closed."""


def encode(fields: Sequence[object]) -> bytes:
    """One framed message. bool -> "1"/"0", None -> "", anything else -> str()."""
    parts = []
    for field in fields:
        if field is None:
            parts.append("")
        elif isinstance(field, bool):
            parts.append("1" if field else "0")
        else:
            parts.append(str(field))
    payload = "".join(part + "\0" for part in parts).encode()
    return _HEADER.pack(len(payload)) + payload


def frame(payload: bytes) -> bytes:
    """A raw length-prefixed payload (the handshake's version string is one)."""
    return _HEADER.pack(len(payload)) + payload


def split_fields(payload: bytes) -> list[str]:
    """The NUL-terminated fields of a payload (the terminator of the last one dropped)."""
    fields = payload.decode(errors="backslashreplace").split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


def parse_version_range(payload: bytes) -> tuple[int, int]:
    """`v<min>..<max>[ <options>]` -> (min, max)."""
    match = _VERSION_RANGE.match(payload)
    if not match:
        raise ProtocolError(f"bad version range {payload!r}")
    low = int(match.group(1))
    return low, int(match.group(2) or low)


@dataclass(frozen=True)
class Incoming:
    """One unit read from a client, stamped with time.monotonic() of the bytes' arrival."""

    received: float
    #: The client's (min, max) versions: the handshake.
    versions: tuple[int, int] | None = None
    #: A message's fields.
    fields: list[str] | None = None
    #: Neither: the connection is gone (`reason` says why).
    reason: str = ""


class FrameProtocol(asyncio.Protocol):
    """Cuts a client's byte stream into the handshake and messages.

    Framing happens in data_received, so each message is stamped with the time its bytes
    arrived, not the time the session got round to it: a burst of requests keeps its spacing
    even while the gateway is busy computing the answer to the first one.
    """

    def __init__(self, on_connect: Callable[[FrameProtocol], None]) -> None:
        self._on_connect = on_connect
        self.inbox: asyncio.Queue[Incoming] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._greeted = False
        self._done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self._done:
            return
        now = time.monotonic()
        self._buffer += data
        try:
            self._parse(now)
        except ProtocolError as exc:
            self._finish(now, str(exc))
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool | None:
        self._finish(time.monotonic(), "EOF")
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(time.monotonic(), repr(exc) if exc else "closed")

    def _finish(self, now: float, reason: str) -> None:
        if not self._done:
            self._done = True
            self.inbox.put_nowait(Incoming(now, reason=reason))

    def _parse(self, now: float) -> None:
        if not self._greeted:
            if len(self._buffer) < 4:
                return
            if bytes(self._buffer[:4]) != b"API\0":
                raise ProtocolError(f"bad handshake prefix {bytes(self._buffer[:4])!r}")
            payload = self._take_frame(offset=4)
            if payload is None:
                return
            self._greeted = True
            self.inbox.put_nowait(Incoming(now, versions=parse_version_range(payload)))
        while (payload := self._take_frame()) is not None:
            self.inbox.put_nowait(Incoming(now, fields=split_fields(payload)))

    def _take_frame(self, offset: int = 0) -> bytes | None:
        if len(self._buffer) < offset + _HEADER.size:
            return None
        (length,) = _HEADER.unpack_from(self._buffer, offset)
        if length > MAX_FRAME:
            raise ProtocolError(f"frame of {length} bytes")
        end = offset + _HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[offset + _HEADER.size : end])
        del self._buffer[:end]
        return payload

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Close once what was written is sent."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


def negotiate(client_min: int, client_max: int) -> int:
    """The server version: the client's max, capped at what the fake implements."""
    version = min(client_max, MAX_SERVER_VERSION)
    if version < max(client_min, MIN_SERVER_VERSION):
        raise ProtocolError(f"no common version with v{client_min}..{client_max}")
    return version


class Fields:
    """A cursor over a request's fields; missing trailing fields read as ""."""

    def __init__(self, fields: Sequence[str]) -> None:
        self._fields = list(fields)
        self._pos = 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields[self._pos :])

    def text(self) -> str:
        value = self._fields[self._pos] if self._pos < len(self._fields) else ""
        self._pos += 1
        return value

    def integer(self, default: int = 0) -> int:
        value = self.text()
        try:
            return int(value) if value else default
        except ValueError:
            return int(float(value))

    def flag(self) -> bool:
        return self.integer() != 0

    def skip(self, count: int = 1) -> None:
        self._pos += count


@dataclass(frozen=True)
class ContractQuery:
    """The 12 contract fields every request carries, as the client sent them."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade_date: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str

    @classmethod
    def read(cls, fields: Fields) -> ContractQuery:
        return cls(
            con_id=fields.integer(),
            symbol=fields.text(),
            sec_type=fields.text(),
            last_trade_date=fields.text(),
            strike=fields.text(),
            right=fields.text(),
            multiplier=fields.text(),
            exchange=fields.text(),
            primary_exchange=fields.text(),
            currency=fields.text(),
            local_symbol=fields.text(),
            trading_class=fields.text(),
        )


@dataclass(frozen=True)
class HistoricalRequest:
    req_id: int
    contract: ContractQuery
    end_datetime: str
    bar_size: str
    duration: str
    use_rth: bool
    what_to_show: str
    format_date: int
    keep_up_to_date: bool


def parse_historical(fields: Fields) -> HistoricalRequest:
    """reqHistoricalData: 20, reqId, contract, includeExpired, end, barSize, duration, useRTH,
    whatToShow, formatDate, [BAG legs], keepUpToDate, chartOptions (no version field)."""
    fields.skip()  # message id
    req_id = fields.integer()
    contract = ContractQuery.read(fields)
    fields.skip()  # includeExpired
    end = fields.text()
    bar_size = fields.text()
    duration = fields.text()
    use_rth = fields.flag()
    what = fields.text()
    format_date = fields.integer(default=1)
    if contract.sec_type == "BAG":
        for _ in range(fields.integer()):
            fields.skip(4)
    keep_up_to_date = fields.flag()
    return HistoricalRequest(
        req_id, contract, end, bar_size, duration, use_rth, what, format_date, keep_up_to_date
    )


@dataclass(frozen=True)
class HeadTimestampRequest:
    req_id: int
    contract: ContractQuery
    use_rth: bool
    what_to_show: str
    format_date: int


def parse_head_timestamp(fields: Fields) -> HeadTimestampRequest:
    """reqHeadTimeStamp: 87, reqId, contract, includeExpired, useRTH, whatToShow, formatDate."""
    fields.skip()
    req_id = fields.integer()
    contract = ContractQuery.read(fields)
    fields.skip()  # includeExpired
    use_rth = fields.flag()
    what = fields.text()
    format_date = fields.integer(default=1)
    return HeadTimestampRequest(req_id, contract, use_rth, what, format_date)


@dataclass(frozen=True)
class ContractDetailsRequest:
    req_id: int
    contract: ContractQuery


def parse_contract_details(fields: Fields) -> ContractDetailsRequest:
    """reqContractDetails: 9, 8, reqId, contract, includeExpired, secIdType, secId[, issuerId]."""
    fields.skip(2)  # message id, version
    req_id = fields.integer()
    return ContractDetailsRequest(req_id, ContractQuery.read(fields))


def error_fields(req_id: int, code: int, text: str) -> list[object]:
    """error: 4, version 2, reqId, code, text, advancedOrderRejectJson."""
    return [Out.ERR_MSG, 2, req_id, code, text, ""]

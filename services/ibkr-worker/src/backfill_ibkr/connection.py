"""One IB API connection per worker process, kept up, with its state in plain sight.

- Connects with a client id leased in Redis (client_ids.py); on error 326 takes another.
- Reconnects with capped exponential backoff and full jitter after any drop.
- Gates the first requests on the historical-data farm's OK message (2106, 2107), for at most
  `ibkr_farm_wait_s`: a gateway that says nothing about its farms is not waited on forever.
- On 1100 (IB connectivity lost) requests pause, not fail, until 1101 or 1102; 1101 (data lost)
  bumps `generation`, which tells an in-flight request that its answer will never come.
- Watches the endpoint the console may set at run time (backfill_bus.gateway) and moves to it.
Everything the heartbeat shows (state, account, server version, last error) is kept here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from backfill_bus import Names, read_gateway_endpoint
from backfill_ibkr.client_ids import ClientIdLeases, NoClientIdError
from backfill_ibkr.library import IbLibrary
from backfill_ibkr.outcomes import (
    CLIENT_ID_IN_USE,
    CONNECTIVITY_LOST,
    FARM_OK,
    HMDS_BROKEN,
    HMDS_OK,
    RESTORED_DATA_KEPT,
    RESTORED_DATA_LOST,
)
from backfill_ibkr.settings import IbkrSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RequestErrorEvent:
    req_id: int
    code: int
    text: str


class Connection:
    def __init__(self, settings: IbkrSettings, redis: Redis, library: IbLibrary) -> None:
        self.settings = settings
        self.redis = redis
        self.library = library
        self.names = Names(settings.redis_namespace)
        self.leases = ClientIdLeases(
            redis,
            self.names.source_key("ibkr", f"client-id:{settings.login}"),
            settings.worker_id,
            settings.ibkr_client_id_min,
            settings.ibkr_client_id_max,
            settings.ibkr_client_id_ttl_s,
        )
        self.ib: Any = None
        self.host = settings.ibkr_host
        self.port = settings.ibkr_port
        self.state = "disconnected"  # connecting, connected, lost (1100), disconnected
        self.client_id: int | None = None
        self.account: str | None = None
        self.server_version: int | None = None
        self.last_error: str | None = None
        self.since = datetime.now(UTC)
        # Bumped whenever answers to requests in flight are lost: 1101, a dropped socket.
        self.generation = 0
        self.ready = asyncio.Event()  # connected, farm OK, IB connectivity up
        self._changes = asyncio.Event()  # replaced on every change; see next_change
        self._hmds_ok = asyncio.Event()
        self._dropped = asyncio.Event()
        self._request_errors: dict[int, asyncio.Queue[RequestErrorEvent]] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._codes_while_connecting: set[int] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        endpoint = await self._endpoint()
        self.host, self.port = endpoint
        self._task = asyncio.create_task(self._keep_connected(), name="ibkr-connection")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._disconnect()
        with contextlib.suppress(Exception):
            await self.leases.release()
        self._set_state("disconnected")

    async def _keep_connected(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                await self._connect_once()
                failures = 0
                await self._stay_connected()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # every failure is retried: the gateway may come back
                failures += 1
                self.last_error = _describe(error)
                log.warning("IB connection to %s:%s: %s", self.host, self.port, self.last_error)
            self._disconnect()
            self._set_state("disconnected")
            delay = _backoff(
                failures, self.settings.ibkr_reconnect_min_s, self.settings.ibkr_reconnect_max_s
            )
            if await self._endpoint_changed_within(delay):
                failures = 0  # a new gateway: try it now, from the shortest delay

    async def _endpoint_changed_within(self, delay: float) -> bool:
        """Wait out a reconnect delay, but not past a stop or a new endpoint from the console."""
        deadline = time.monotonic() + delay
        while (remaining := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                wait = min(remaining, self.settings.ibkr_endpoint_poll_s)
                await asyncio.wait_for(self._stop.wait(), timeout=wait)
            if await self._endpoint() != (self.host, self.port):
                return True
        return False

    async def _connect_once(self) -> None:
        self.host, self.port = await self._endpoint()
        try:
            client_id = await self.leases.acquire()
        except NoClientIdError as error:
            raise ConnectionError(str(error)) from None
        self._set_state("connecting")
        ib = self.library.new_ib()
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        self.ib = ib
        self._hmds_ok.clear()
        self._dropped.clear()
        self._codes_while_connecting = set()
        try:
            await ib.connectAsync(
                self.host,
                self.port,
                clientId=client_id,
                timeout=self.settings.ibkr_connect_timeout_s,
                readonly=True,
                account=self.settings.ibkr_account,
                **self.library.connect_options(),
            )
        except Exception:
            if CLIENT_ID_IN_USE in self._codes_while_connecting:
                taken = await self.leases.in_use_elsewhere()
                raise ConnectionError(
                    f"client id {taken} is in use at the gateway (326); taking another"
                ) from None
            raise
        self.client_id = client_id
        self.server_version = ib.client.serverVersion()
        accounts = ib.managedAccounts()
        self.account = self.settings.ibkr_account or (accounts[0] if accounts else None)
        log.info(
            "connected to IB at %s:%s as client %s (server version %s, %s %s)",
            self.host, self.port, client_id, self.server_version,
            self.library.name, self.library.version,
        )  # fmt: skip
        await self._wait_for_farm()
        self._set_state("connected")

    async def _wait_for_farm(self) -> None:
        try:
            await asyncio.wait_for(self._hmds_ok.wait(), timeout=self.settings.ibkr_farm_wait_s)
        except TimeoutError:
            log.warning(
                "no historical-data farm OK (2106) within %.0f s; going on",
                self.settings.ibkr_farm_wait_s,
            )

    async def _stay_connected(self) -> None:
        """Until the socket drops, the endpoint changes or the worker stops; renews the lease."""
        renew_every = self.settings.ibkr_client_id_ttl_s / 3
        poll = min(renew_every, self.settings.ibkr_endpoint_poll_s)
        next_renewal = time.monotonic() + renew_every
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dropped.wait(), timeout=poll)
            if self._dropped.is_set():
                raise ConnectionError("the gateway closed the connection")
            if time.monotonic() >= next_renewal:
                next_renewal = time.monotonic() + renew_every
                if not await self.leases.renew():
                    raise ConnectionError("the client id lease was lost; reconnecting")
            endpoint = await self._endpoint()
            if endpoint != (self.host, self.port):
                log.info("gateway endpoint changed to %s:%s; reconnecting", *endpoint)
                self.last_error = None
                return

    async def _endpoint(self) -> tuple[str, int]:
        try:
            override = await read_gateway_endpoint(self.redis, self.names)
        except Exception:  # Redis away: keep what we have
            return self.host, self.port
        if override is None:
            return self.settings.ibkr_host, self.settings.ibkr_port
        return override.host, override.port

    def _disconnect(self) -> None:
        ib, self.ib = self.ib, None
        if ib is None:
            return
        ib.errorEvent -= self._on_error
        ib.disconnectedEvent -= self._on_disconnected
        with contextlib.suppress(Exception):
            ib.disconnect()
        self.generation += 1
        self.ready.clear()

    # --- events from the library --------------------------------------------------------------

    def _on_error(self, req_id: int, code: int, text: str, *_: Any) -> None:
        if self.state == "connecting":
            self._codes_while_connecting.add(code)
        if code in HMDS_OK:
            self._hmds_ok.set()
        elif code == HMDS_BROKEN:
            self._hmds_ok.clear()
        if code == CONNECTIVITY_LOST:
            self.last_error = f"{code}: {text}"
            self._set_state("lost")
        elif code in (RESTORED_DATA_LOST, RESTORED_DATA_KEPT):
            if code == RESTORED_DATA_LOST:
                self.generation += 1
            self.last_error = f"{code}: {text}"
            self._set_state("connected")
        elif code not in FARM_OK and req_id == -1:
            self.last_error = f"{code}: {text}"
        queue = self._request_errors.get(req_id)
        if queue is not None:
            queue.put_nowait(RequestErrorEvent(req_id, code, text))

    def _on_disconnected(self) -> None:
        self._dropped.set()
        self.generation += 1
        self.ready.clear()
        self._notify()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = datetime.now(UTC)
        if state == "connected":
            self.ready.set()
        else:
            self.ready.clear()
        self._notify()

    def _notify(self) -> None:
        changes, self._changes = self._changes, asyncio.Event()
        changes.set()

    async def next_change(self, timeout_s: float) -> None:
        """Return on the next change of state (or after `timeout_s`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changes.wait(), timeout=timeout_s)

    # --- for requests ----------------------------------------------------------------------

    def watch_errors(self, req_id: int) -> asyncio.Queue[RequestErrorEvent]:
        """Errors the gateway sends about one request (some, like 321, do not end it)."""
        queue: asyncio.Queue[RequestErrorEvent] = asyncio.Queue()
        self._request_errors[req_id] = queue
        return queue

    def unwatch_errors(self, req_id: int) -> None:
        self._request_errors.pop(req_id, None)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since.isoformat(timespec="seconds"),
            "host": self.host,
            "port": self.port,
            "client_id": self.client_id,
            "account": self.account,
            "server_version": self.server_version,
            "library": f"{self.library.name} {self.library.version}",
            "last_error": self.last_error,
        }


def _backoff(failures: int, low: float, high: float) -> float:
    """Full jitter: a random delay up to the doubled step, so replicas don't retry in step."""
    if failures <= 0:
        return low
    return random.uniform(low, min(high, low * 2**failures))


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return f"no answer from the gateway in time ({text})"
    if isinstance(error, ConnectionRefusedError | OSError):
        return f"cannot reach the gateway: {text}"
    return text

"""`FakeGateway`: a fake TWS / IB Gateway on 127.0.0.1, run in its own thread.

The asyncio server has its own event loop in its own thread so that whatever the test (or a
worker under test) does on its loop cannot delay the gateway's answers or distort the pacing
clock. Control methods are called from the test's thread and run on the gateway's loop; the
properties return copies taken under the core's lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from tests.support.fake_tws.market import FakeContract
from tests.support.fake_tws.pacing import DEFAULT_RULES, PacingRule
from tests.support.fake_tws.records import KINDS, Injection, Kind, RequestRecord, Violation
from tests.support.fake_tws.server import GatewayCore

T = TypeVar("T")

#: How long a control call may wait for the gateway's loop.
_CONTROL_TIMEOUT_S = 10.0


class FakeGateway:
    def __init__(
        self,
        pacing_scale: float = 1.0,
        *,
        rules: Sequence[PacingRule] = DEFAULT_RULES,
        port: int = 0,
    ) -> None:
        self._default_scale = pacing_scale
        self._default_rules = tuple(rules)
        #: Multiplies every pacing window; may be changed, takes effect at the next reset().
        self.pacing_scale = pacing_scale
        #: The pacing rules; may be changed, takes effect at the next reset().
        self.rules: tuple[PacingRule, ...] = tuple(rules)
        #: Seconds before each historical answer.
        self.latency_s = 0.0
        #: Client ids taken by someone else: connecting with one gets error 326.
        self.client_ids_in_use: set[int] = set()
        self._requested_port = port
        self._core = GatewayCore(self, self.rules, pacing_scale)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> int:
        """Start the thread and listen; returns the port."""
        if self._thread is not None:
            return self.port
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-tws", daemon=True)
        self._loop = loop
        self._thread.start()
        ready.wait()
        return self._run(self._core.listen(self._requested_port))

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._run(self._core.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=_CONTROL_TIMEOUT_S)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeGateway:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._core.port

    def reset(self) -> None:
        """Defaults back: contracts, no injections, empty logs, connectivity up, no latency,
        no foreign client ids, no client connected (all dropped), listening."""
        self.latency_s = 0.0
        self.client_ids_in_use.clear()
        self.pacing_scale = self._default_scale
        self.rules = self._default_rules
        self._call(self._core.reset, self.rules, self.pacing_scale)
        self.accept_connections()

    # ---- scripting -----------------------------------------------------------------------

    def add_contract(self, contract: FakeContract) -> None:
        self._call(self._core.contracts.append, contract)

    def inject(
        self,
        code: int,
        *,
        kind: str = "historical",
        symbol: str | None = None,
        times: int = 1,
        text: str | None = None,
    ) -> None:
        """The next `times` matching requests get error `code` instead of an answer."""
        self._script(Injection(_kind(kind), symbol, times, code, text))

    def hang(self, *, kind: str = "historical", symbol: str | None = None, times: int = 1) -> None:
        """The next `times` matching requests get no answer at all."""
        self._script(Injection(_kind(kind), symbol, times, None))

    def _script(self, injection: Injection) -> None:
        self._call(self._core.injections.append, injection)

    def connectivity_lost(self) -> None:
        self._call(self._core.connectivity_lost)

    def connectivity_restored(self, data_lost: bool) -> None:
        self._call(self._core.connectivity_restored, data_lost)

    def drop_connections(self) -> None:
        self._call(self._core.drop_connections)

    def refuse_connections(self) -> None:
        self._call(self._core.stop_listening)

    def accept_connections(self) -> None:
        self._run(self._core.listen(self.port))

    # ---- what happened -------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._core.lock:
            return list(self._core.records)

    @property
    def violations(self) -> list[Violation]:
        with self._core.lock:
            return list(self._core.violations)

    @property
    def errors(self) -> list[str]:
        with self._core.lock:
            return list(self._core.errors)

    @property
    def connected_client_ids(self) -> set[int]:
        with self._core.lock:
            return set(self._core.client_ids)

    @property
    def max_open_seen(self) -> int:
        return self._core.pacing.max_open_seen

    @property
    def open_requests(self) -> int:
        """Historical requests accepted and not yet answered (hung ones included)."""
        return self._core.pacing.open_count

    def stats(self) -> dict[str, Any]:
        """A JSON-able summary (what `python -m tests.support.fake_tws` prints at exit)."""
        with self._core.lock:
            answers = dict(self._core.answers)
            per_client = {str(k): v for k, v in sorted(self._core.per_client.items())}
            violations = list(self._core.violations)
            requests = len(self._core.records)
        return {
            "requests": requests,
            "served": {kind: answers.get(kind, 0) for kind in KINDS},
            "answers": answers,
            "violations": len(violations),
            "violation_details": [
                {"rule": v.rule, "time": v.time, "request": dataclasses.asdict(v.request)}
                for v in violations
            ],
            "max_open_seen": self.max_open_seen,
            "per_client_requests": per_client,
        }

    # ---- marshalling onto the gateway's loop ---------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the fake gateway is not started")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(_CONTROL_TIMEOUT_S)

    def _call(self, function: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return function(*args)

        if self._loop is None:
            # Not started: nothing runs concurrently, so call directly (e.g. add_contract
            # before start()).
            return function(*args)
        return self._run(call())


def _kind(kind: str) -> Kind:
    for known in KINDS:
        if kind == known:
            return known
    raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

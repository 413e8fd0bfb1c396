"""Run services as child processes the way compose does: prefixed logs, restarts, ordered stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from backfill_cli.logs import LinePrinter
from backfill_cli.processes import describe_exit, signal_group, spawn

# A second SIGINT sooner than this after the first is an echo of it, not a second Ctrl-C.
_ECHO_S = 1.0


@dataclass(frozen=True)
class ServiceSpec:
    """A service (or one-shot task): the name its log lines carry and the command that runs it."""

    name: str
    argv: Sequence[str]
    # Added to the supervisor's environment for this service alone (e.g. its metrics port).
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RestartPolicy:
    """Backoff between restarts: doubling from `first_delay` up to `max_delay`.

    A service that stayed up `reset_after` seconds was healthy, so its next crash starts the
    backoff over instead of waiting the cap because of crashes long ago.
    """

    first_delay: float = 1.0
    max_delay: float = 30.0
    reset_after: float = 60.0

    def next_delay(self, previous: float | None, uptime: float) -> float:
        if previous is None or uptime >= self.reset_after:
            return self.first_delay
        return min(previous * 2, self.max_delay)


async def wait_event(event: asyncio.Event, within_s: float) -> bool:
    """Wait for `event` at most `within_s` seconds; True if it was set."""
    try:
        await asyncio.wait_for(event.wait(), within_s)
    except TimeoutError:
        return False
    return True


class Supervisor:
    """Starts services in order, restarts the ones that die, and stops them in reverse order."""

    def __init__(
        self,
        printer: LinePrinter,
        env: dict[str, str] | None = None,
        policy: RestartPolicy | None = None,
        stop_timeout: float = 10.0,
    ) -> None:
        self.printer = printer
        self.env = env
        self.policy = policy or RestartPolicy()
        self.stop_timeout = stop_timeout
        # Set on the first stop request (or by shutdown): from then on nothing is (re)started.
        self.stop_requested = asyncio.Event()
        # Set on a second stop request: stop waiting for graceful exits and kill.
        self.hurry = asyncio.Event()
        self._stop_asked_at = 0.0
        self._runners: list[_Runner] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    def request_stop(self, *, escalate: bool = False) -> None:
        """Begin an orderly stop; asked again with `escalate`, kill instead of waiting.

        A repeat within _ECHO_S of the first request is the same key press: `uv run` (how
        ./scripts/dev starts us) passes a Ctrl-C on to its child about 200 ms after the
        terminal already did, which killed every service at once.
        """
        now = time.monotonic()
        if not self.stop_requested.is_set():
            self.printer.say("stopping (Ctrl-C again to kill at once)")
            self.stop_requested.set()
            self._stop_asked_at = now
        elif escalate and not self.hurry.is_set() and now - self._stop_asked_at >= _ECHO_S:
            self.printer.say("asked again: killing what is still running")
            self.hurry.set()

    def stop_on_signals(self) -> None:
        """Ctrl-C, SIGTERM and a closed terminal (SIGHUP) all mean an orderly stop.

        The children sit in their own process groups, so nothing else forwards these signals
        to them: an orphaned service would keep its port and break the next `backfill dev`.
        Only a second Ctrl-C (a person in a hurry) escalates to killing: tools such as
        `timeout` send SIGTERM twice, and must not cost Redis its last AOF write.
        """
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: self.request_stop(escalate=True))
        for sig in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.request_stop)

    async def start(self, spec: ServiceSpec) -> None:
        """Start a long-running service now and restart it whenever it exits."""
        runner = _Runner(spec, self, restart=True)
        self._runners.append(runner)
        await runner.launch()

    async def run_once(self, spec: ServiceSpec) -> int | None:
        """Run a one-shot task to its end; its exit code, or None if a stop came first."""
        runner = _Runner(spec, self, restart=False)
        self._runners.append(runner)
        await runner.launch()
        finished = asyncio.ensure_future(runner.finished())
        stopping = asyncio.ensure_future(self.stop_requested.wait())
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not finished.done():
            finished.cancel()  # shutdown() stops the task itself, in order with the others
            return None
        return runner.exit_code

    async def shutdown(self) -> None:
        """Stop everything, last started first, each with SIGTERM and then SIGKILL."""
        self.stop_requested.set()
        for runner in reversed(self._runners):
            await runner.stop()
        self._runners.clear()


class _Runner:
    """One service: its current process, the task that restarts it, and its log pump."""

    def __init__(self, spec: ServiceSpec, supervisor: Supervisor, *, restart: bool) -> None:
        self.spec = spec
        self.exit_code: int | None = None
        self._sup = supervisor
        self._restart = restart
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        # Held while spawning, so stop() never misses a process that is just being started.
        self._lock = asyncio.Lock()

    async def launch(self) -> None:
        first = await self._spawn()
        self._task = asyncio.create_task(self._supervise(first), name=f"supervise {self.spec.name}")

    async def finished(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _spawn(self) -> asyncio.subprocess.Process | None:
        name = self.spec.name
        async with self._lock:
            if self._sup.stop_requested.is_set():
                return None
            try:
                proc = await spawn(self.spec.argv, self._env())
            except OSError as exc:
                self._sup.printer.say(f"cannot start {name} ({self.spec.argv[0]}): {exc}")
                return None
            self._proc = proc
            assert proc.stdout is not None  # spawn() always pipes stdout
            self._pump = asyncio.create_task(_pump_lines(proc.stdout, self._emit))
            self._sup.printer.say(f"started {name} (pid {proc.pid})")
            return proc

    def _env(self) -> dict[str, str] | None:
        if not self.spec.env:
            return self._sup.env
        return {**(os.environ if self._sup.env is None else self._sup.env), **self.spec.env}

    def _emit(self, text: str) -> None:
        self._sup.printer.line(self.spec.name, text)

    async def _supervise(self, proc: asyncio.subprocess.Process | None) -> None:
        loop = asyncio.get_running_loop()
        delay: float | None = None
        stop = self._sup.stop_requested
        while True:
            started = loop.time()
            code: int | None = None
            if proc is not None:
                code = await proc.wait()
                await self._drain()
            # 127 is the shell's "command not found": a task that could not start has failed.
            self.exit_code = 127 if code is None else code
            if stop.is_set() or not self._restart:
                return
            delay = self._sup.policy.next_delay(delay, loop.time() - started)
            self._sup.printer.say(
                f"{self.spec.name} {describe_exit(code)}; restarting in {delay:g} s"
            )
            if await wait_event(stop, delay):
                return
            proc = await self._spawn()

    async def _drain(self) -> None:
        """Let the pump print a dead process's last lines (its traceback, usually).

        Bounded: a grandchild that inherited the pipe could keep it open forever.
        """
        if self._pump is None:
            return
        done, _ = await asyncio.wait({self._pump}, timeout=2.0)
        if not done:
            self._pump.cancel()

    async def stop(self) -> None:
        async with self._lock:
            proc = self._proc
        if proc is not None and proc.returncode is None:
            name = self.spec.name
            self._sup.printer.say(f"stopping {name}")
            signal_group(proc, signal.SIGTERM)
            if not await self._exited_within(proc, self._sup.stop_timeout):
                self._sup.printer.say(f"{name} still running; killing it")
                signal_group(proc, signal.SIGKILL)
                await proc.wait()
            code = proc.returncode
            # Dying of the SIGTERM we sent is how many servers (uvicorn) end a clean stop.
            clean = code in (0, -signal.SIGTERM)
            self._sup.printer.say(f"{name} stopped" + ("" if clean else f": {describe_exit(code)}"))
        if self._task is not None:
            await self._task

    async def _exited_within(self, proc: asyncio.subprocess.Process, within_s: float) -> bool:
        exited = asyncio.ensure_future(proc.wait())
        hurry = asyncio.ensure_future(self._sup.hurry.wait())
        await asyncio.wait({exited, hurry}, timeout=within_s, return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        if not exited.done():
            exited.cancel()
            return False
        return True


async def _pump_lines(stream: asyncio.StreamReader, emit: Callable[[str], None]) -> None:
    # Chunks rather than readline(): readline() fails on a line over its 64 KiB limit, and one
    # huge log line must not stop a service's logs.
    pending = b""
    while chunk := await stream.read(1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        for raw in lines:
            emit(_decode(raw))
    if pending:
        emit(_decode(pending))


def _decode(raw: bytes) -> str:
    return raw.rstrip(b"\r").decode(errors="replace")

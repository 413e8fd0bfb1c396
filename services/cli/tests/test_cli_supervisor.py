"""The supervisor on stand-in services (`python -c` scripts): logs, restarts, ordered stop."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from backfill_cli.logs import LinePrinter
from backfill_cli.supervisor import RestartPolicy, ServiceSpec, Supervisor

WAIT_S = 15.0
FAST = RestartPolicy(first_delay=0.05, max_delay=0.2, reset_after=60.0)


def stand_in(name: str, code: str) -> ServiceSpec:
    return ServiceSpec(name, [sys.executable, "-c", code])


class Capture(io.StringIO):
    """The supervisor's output, with an event to wait on instead of polling."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)

    async def wait_for(self, pattern: str, count: int = 1) -> None:
        async with asyncio.timeout(WAIT_S):
            while len(re.findall(pattern, self.getvalue(), re.MULTILINE)) < count:
                self.written.clear()
                await self.written.wait()


def test_backoff_doubles_to_the_cap_and_resets_after_a_good_run() -> None:
    policy = RestartPolicy()
    delays: list[float] = []
    delay = None
    for _ in range(8):
        delay = policy.next_delay(delay, uptime=0.5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert policy.next_delay(30, uptime=61) == 1  # up a minute: healthy, start over


async def test_lines_are_prefixed_with_time_and_a_fixed_width_name() -> None:
    out = Capture()
    printer = LinePrinter(["api", "sim-worker"], stream=out, colour=False)
    async with Supervisor(printer) as sup:
        await sup.start(
            stand_in("api", "import time; print('hello'); print('world'); time.sleep(60)")
        )
        await out.wait_for(r"world$")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d api        \| hello", lines[1]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d api        \| world", lines[2]), lines
    assert re.fullmatch(r"\d\d:\d\d:\d\d backfill   \| started api \(pid \d+\)", lines[0])
    assert "api stopped" in lines[-1]


def test_colour_only_when_asked_for() -> None:
    out = Capture()
    LinePrinter(["api"], stream=out, colour=True).line("api", "x")
    LinePrinter(["api"], stream=out).line("api", "y")  # a StringIO is not a terminal
    coloured, plain = out.getvalue().splitlines()
    assert "\x1b[36mapi     \x1b[0m | x" in coloured
    assert "\x1b[" not in plain


async def test_a_service_that_exits_is_restarted_with_its_exit_code_logged() -> None:
    out = Capture()
    printer = LinePrinter(["flaky"], stream=out, colour=False)
    async with Supervisor(printer, policy=FAST) as sup:
        await sup.start(stand_in("flaky", "import sys; print('up'); sys.exit(3)"))
        await out.wait_for(r"flaky +\| up$", count=3)
    text = out.getvalue()
    assert "flaky exited with code 3; restarting in 0.05 s" in text
    assert "flaky exited with code 3; restarting in 0.1 s" in text  # the backoff doubles


async def test_a_service_that_cannot_start_is_retried_not_fatal() -> None:
    out = Capture()
    async with Supervisor(LinePrinter(["ghost"], stream=out, colour=False), policy=FAST) as sup:
        await sup.start(ServiceSpec("ghost", ["/nonexistent/backfill-service"]))
        await out.wait_for(r"ghost could not be started; restarting", count=2)
    assert "cannot start ghost (/nonexistent/backfill-service)" in out.getvalue()


async def test_run_once_returns_the_exit_code_and_prints_the_output() -> None:
    out = Capture()
    async with Supervisor(LinePrinter(["migrate"], stream=out, colour=False)) as sup:
        code = await sup.run_once(
            stand_in("migrate", "import sys; print('migrating'); sys.exit(4)")
        )
    assert code == 4
    assert "migrate  | migrating" in out.getvalue()  # as wide as "backfill", its own name
    assert "restarting" not in out.getvalue()


async def test_a_service_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    out = Capture()
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        " print('ready'); time.sleep(60)"
    )
    sup = Supervisor(LinePrinter(["stubborn"], stream=out, colour=False), stop_timeout=0.5)
    await sup.start(stand_in("stubborn", stubborn))
    await out.wait_for(r"ready$")
    async with asyncio.timeout(WAIT_S):
        await sup.shutdown()
    assert "stubborn still running; killing it" in out.getvalue()
    assert "stubborn stopped: was killed by SIGKILL" in out.getvalue()


# The signal test runs the supervisor in a process of its own, as `backfill dev` does, and
# signals it from outside. Each stand-in records its pid so the test can see it is gone.
SUPERVISED = """
import asyncio, sys
from backfill_cli.logs import LinePrinter
from backfill_cli.supervisor import ServiceSpec, Supervisor

def stand_in(name, code):
    return ServiceSpec(name, [sys.executable, "-c", code])

SERVICE = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(60)"
STUBBORN = "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + SERVICE[10:]

async def main():
    printer = LinePrinter(["first", "second", "stubborn"], colour=False)
    async with Supervisor(printer, stop_timeout=1.0) as sup:
        sup.stop_on_signals()
        for name, code in [("first", SERVICE), ("second", SERVICE), ("stubborn", STUBBORN)]:
            await sup.start(stand_in(name, code))
        printer.say("all started")
        await sup.stop_requested.wait()
    printer.say("done")

asyncio.run(main())
"""


def _pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"\| pid (\d+)", output)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_with(sig: signal.Signals, spawn: Callable[..., Any], until: Callable[..., None]) -> str:
    child = spawn([sys.executable, "-c", SUPERVISED])
    child.wait_for_line("all started")
    until(lambda: len(_pids(child.output)) == 3)
    pids = _pids(child.output)
    child.proc.send_signal(sig)
    assert child.wait(within_s=8) == 0, child.output
    assert not any(_alive(pid) for pid in pids)
    output: str = child.output
    return output


def test_sigterm_stops_everything_in_reverse_order_and_exits_0(
    spawn: Callable[..., Any], until: Callable[..., None]
) -> None:
    output = _stop_with(signal.SIGTERM, spawn, until)
    stops = re.findall(r"\| stopping (\w+)", output)
    assert stops == ["stubborn", "second", "first"]
    assert "stubborn still running; killing it" in output
    assert "Traceback" not in output
    assert output.rstrip().endswith("| done")


def test_ctrl_c_is_an_orderly_stop_too(
    spawn: Callable[..., Any], until: Callable[..., None]
) -> None:
    output = _stop_with(signal.SIGINT, spawn, until)
    assert re.findall(r"\| stopping (\w+)", output) == ["stubborn", "second", "first"]
    assert "KeyboardInterrupt" not in output


def test_a_ctrl_c_passed_on_again_by_uv_run_is_still_an_orderly_stop(
    spawn: Callable[..., Any], until: Callable[..., None]
) -> None:
    """`uv run` sends its child a second SIGINT about 200 ms after the terminal's: one key
    press, so the services still get their grace period instead of SIGKILL."""
    child = spawn([sys.executable, "-c", SUPERVISED])
    child.wait_for_line("all started")
    until(lambda: len(_pids(child.output)) == 3)
    child.proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    child.proc.send_signal(signal.SIGINT)
    assert child.wait(within_s=8) == 0, child.output
    assert "asked again" not in child.output
    assert "first still running" not in child.output
    assert re.findall(r"\| (\w+) stopped", child.output)[-2:] == ["second", "first"]

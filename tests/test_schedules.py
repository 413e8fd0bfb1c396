"""Schedules: a universe's top-up at every tick of a cron expression, exactly once per tick.

The tick arithmetic runs on real time zones (a DST change included); the firing runs against
real Redis with three schedulers at once, as three projector replicas would; the end to end
test keeps an open universe current through the real API, projector and sim workers, with the
schedulers' clock moved by hand so ticks of days come in seconds.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from redis.asyncio import Redis

from backfill_bus import Names
from backfill_bus.schedules import (
    Schedule,
    ScheduleState,
    ScheduleStore,
    due_tick,
    latest_tick,
    next_tick,
    run_id_for,
    tick_lease_key,
)
from backfill_bus.universes import Universe, UniverseStore
from backfill_cli.main import main
from backfill_projector.scheduler import Scheduler
from tests.support.api_server import served_api
from tests.support.stack import ADMIN_TOKEN, SUBMIT_TOKEN, Stack, running_stack, wait_until

NY = ZoneInfo("America/New_York")
AFTER_CLOSE = "30 16 * * 1-5"  # every weekday, 30 minutes after the NYSE close


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NY)


def daily(**overrides: Any) -> Schedule:
    fields: dict[str, Any] = {
        "name": "close",
        "universe": "u",
        "cron": AFTER_CLOSE,
        "timezone": "America/New_York",
        **overrides,
    }
    return Schedule(**fields)


# --- ticks ----------------------------------------------------------------------------------


def test_ticks_follow_the_local_clock_across_a_dst_change() -> None:
    schedule = daily()
    # Friday 6 March 2026 is EST (UTC-5); Monday 9 March is EDT (UTC-4): 16:30 local each day.
    assert next_tick(schedule, ny(2026, 3, 6, 17, 0)) == datetime(2026, 3, 9, 20, 30, tzinfo=UTC)
    assert latest_tick(schedule, ny(2026, 3, 9, 12, 0)) == datetime(2026, 3, 6, 21, 30, tzinfo=UTC)
    # A tick is due at its own minute, not only after it.
    assert latest_tick(schedule, ny(2026, 3, 9, 16, 30)) == ny(2026, 3, 9, 16, 30)


def test_missed_ticks_give_one_due_tick_and_pauses_are_not_caught_up() -> None:
    schedule = daily()
    since = ny(2026, 3, 2, 12, 0)  # created on Monday at noon
    assert due_tick(schedule, ScheduleState(since=since), ny(2026, 3, 2, 16, 0)) is None
    # Down from Monday noon to Thursday evening: four ticks missed, one run, for the latest.
    state = ScheduleState(since=since)
    assert due_tick(schedule, state, ny(2026, 3, 5, 18, 0)) == ny(2026, 3, 5, 16, 30)
    fired = ScheduleState(since=since, last_tick=ny(2026, 3, 5, 16, 30))
    assert due_tick(schedule, fired, ny(2026, 3, 5, 23, 0)) is None
    assert due_tick(schedule, ScheduleState(paused=True), ny(2026, 3, 5, 18, 0)) is None
    resumed = ScheduleState(since=ny(2026, 3, 5, 18, 0), last_tick=ny(2026, 3, 2, 16, 30))
    assert due_tick(schedule, resumed, ny(2026, 3, 5, 19, 0)) is None  # Thursday's was paused
    assert due_tick(schedule, resumed, ny(2026, 3, 6, 16, 31)) == ny(2026, 3, 6, 16, 30)


def test_a_schedule_is_checked_when_defined() -> None:
    for bad, message in (
        ({"cron": "61 * * * *"}, "not a cron expression"),
        ({"cron": "* * * *"}, "five fields"),
        ({"timezone": "Mars/Olympus"}, "unknown timezone"),
        ({"cron": "0 0 30 2 *"}, "Bad day-of-month"),  # 30 February never comes
        ({"name": "a" * 41}, "should match pattern"),
    ):
        with pytest.raises(ValueError, match=message):
            daily(**bad)
    assert daily(cron="30  16 * *   1-5").cron == AFTER_CLOSE
    assert daily().explain() == "At 16:30 on Monday through Friday (America/New_York)"


# --- firing against Redis -------------------------------------------------------------------


OPEN_UNIVERSE = Universe(
    name="u", source="sim", symbols=["SCHA", "SCHB", "SCHC"], bar_sizes=["1d"], start="2026-01-01"
)


async def commands_queued(redis: Redis, names: Names) -> int:
    length: int = await redis.xlen(names.command_stream("sim"))
    return length


async def test_three_schedulers_fire_each_tick_once_and_catch_up_once(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    universes, schedules = UniverseStore(redis, names), ScheduleStore(redis, names)
    await universes.put(OPEN_UNIVERSE)
    await schedules.put(daily(), now=ny(2026, 3, 2, 12, 0))
    replicas = [Scheduler(redis, names, producer=f"projector-{i}") for i in range(3)]

    async def all_at(moment: datetime) -> list[str]:
        fired = await asyncio.gather(*(r.run_once(moment) for r in replicas))
        return [f.run_id for each in fired for f in each]

    assert await all_at(ny(2026, 3, 2, 16, 0)) == []  # before Monday's tick
    monday = run_id_for("close", ny(2026, 3, 2, 16, 30))
    assert await all_at(ny(2026, 3, 2, 16, 30, 5)) == [monday]
    assert await all_at(ny(2026, 3, 2, 16, 45)) == []
    assert await commands_queued(redis, names) == 3  # one job per symbol, once

    # Down until Thursday evening: Tuesday's, Wednesday's and Thursday's ticks were missed.
    thursday = run_id_for("close", ny(2026, 3, 5, 16, 30))
    assert await all_at(ny(2026, 3, 5, 19, 0)) == [thursday]
    assert await all_at(ny(2026, 3, 5, 19, 15)) == []
    runs = await universes.runs("u")
    assert [r.run_id for r in runs] == [thursday, monday]
    assert runs[0].as_of == ny(2026, 3, 5, 16, 30)  # its jobs end at the tick
    assert await commands_queued(redis, names) == 6
    state = await schedules.state("close")
    assert (state.last_tick, state.last_run_id) == (ny(2026, 3, 5, 16, 30), thursday)

    # Paused over Friday's tick; resumed after it: Friday is not caught up, Monday fires.
    await schedules.pause("close")
    assert await all_at(ny(2026, 3, 6, 16, 31)) == []
    await schedules.resume("close", now=ny(2026, 3, 6, 18, 0))
    assert await all_at(ny(2026, 3, 6, 18, 1)) == []
    next_monday = run_id_for("close", ny(2026, 3, 9, 16, 30))
    assert await all_at(ny(2026, 3, 9, 16, 31)) == [next_monday]
    assert await commands_queued(redis, names) == 9


async def test_a_scheduler_dying_with_the_tick_leaves_it_to_another(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    universes, schedules = UniverseStore(redis, names), ScheduleStore(redis, names)
    await universes.put(OPEN_UNIVERSE)
    await schedules.put(daily(), now=ny(2026, 3, 2, 12, 0))
    tick = ny(2026, 3, 2, 16, 30)
    # A scheduler took the tick's lease and died before submitting anything.
    assert await schedules.take_tick("close", tick)
    survivor = Scheduler(redis, names, producer="projector-2")
    assert await survivor.run_once(ny(2026, 3, 2, 16, 31)) == []  # its lease still holds
    await redis.pexpire(tick_lease_key(names, "close", tick), 1)  # ... until it expires
    await asyncio.sleep(0.01)
    fired = await survivor.run_once(ny(2026, 3, 2, 16, 32))
    assert [f.run_id for f in fired] == [run_id_for("close", tick)]
    assert fired[0].submitted.created == 3


async def test_a_schedule_whose_universe_is_gone_says_so_and_fires_later(
    redis: Redis, namespace: str
) -> None:
    names = Names(namespace)
    universes, schedules = UniverseStore(redis, names), ScheduleStore(redis, names)
    await schedules.put(daily(), now=ny(2026, 3, 2, 12, 0))
    scheduler = Scheduler(redis, names, producer="projector-1")
    assert await scheduler.run_once(ny(2026, 3, 2, 16, 31)) == []
    state = await schedules.state("close")
    assert state.last_error == "universe u is not defined"
    assert state.last_tick is None  # the tick stays due
    await universes.put(OPEN_UNIVERSE)
    await redis.delete(tick_lease_key(names, "close", ny(2026, 3, 2, 16, 30)))
    fired = await scheduler.run_once(ny(2026, 3, 2, 16, 40))
    assert [f.run_id for f in fired] == [run_id_for("close", ny(2026, 3, 2, 16, 30))]
    assert (await schedules.state("close")).last_error is None


# --- through the API, the CLI and the workers -----------------------------------------------

UNIVERSE_BODY: dict[str, Any] = {
    "name": "kept",
    "source": "sim",
    "symbols": ["KEPA", "KEPB"],
    "bar_sizes": ["1d"],
    "start": "2024-01-01",
}
SCHEDULE_BODY: dict[str, Any] = {
    "name": "kept-daily",
    "universe": "kept",
    "cron": "0 22 * * 1-5",
    "timezone": "UTC",
}


async def run_view(stack: Stack, run_id: str) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        answer = await stack.api.get(f"/api/v1/universes/kept/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body if body["finished"] else None

    view: dict[str, Any] = await wait_until(finished, 60, f"run {run_id} finished")
    return view


async def test_a_schedule_keeps_an_open_universe_current(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace) as stack:
        universe = await stack.api.put("/api/v1/universes/kept", json=UNIVERSE_BODY)
        assert universe.status_code == 201, universe.text
        created = await stack.api.put("/api/v1/schedules/kept-daily", json=SCHEDULE_BODY)
        assert created.status_code == 201, created.text
        assert created.json()["mode"] == "top_up"
        # Ticks in early 2024, by the schedulers' clock: the schedule counts from before them.
        store = ScheduleStore(stack.redis, stack.names)
        await store.resume("kept-daily", now=datetime(2024, 1, 31, tzinfo=UTC))
        scheduler = Scheduler(stack.redis, stack.names, producer="projector-t")

        first = await scheduler.run_once(datetime(2024, 2, 1, 22, 5, tzinfo=UTC))
        assert [f.run_id for f in first] == ["sched.kept-daily.20240201T2200Z"]
        view = await run_view(stack, first[0].run_id)
        assert view["by_status"] == {"succeeded": 2}
        # January 2024 has 23 weekdays, plus Thursday 1 February: 24 daily sim bars a symbol.
        assert view["bars_stored"] == 2 * 24

        # Friday's tick tops up one day: only the new bar is asked for and stored.
        second = await scheduler.run_once(datetime(2024, 2, 2, 22, 1, tzinfo=UTC))
        view = await run_view(stack, second[0].run_id)
        assert view["by_status"] == {"succeeded": 2}
        assert view["bars_stored"] == 2
        coverage = await stack.api.get(
            "/api/v1/coverage", params={"source": "sim", "symbol": "KEPA", "bar_size": "1d"}
        )
        body = coverage.json()
        assert body["count"] == 25
        assert body["last"].startswith("2024-02-02")
        assert [g for g in body["gaps"] if g["kind"] != "never_requested"] == []

        listed = (await stack.api.get("/api/v1/schedules")).json()
        assert [(s["name"], s["last_run_id"]) for s in listed] == [
            ("kept-daily", "sched.kept-daily.20240202T2200Z")
        ]


async def test_schedules_through_the_api_with_their_checks_and_scopes(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        api = stack.api
        missing_universe = await api.put("/api/v1/schedules/kept-daily", json=SCHEDULE_BODY)
        assert missing_universe.status_code == 409
        assert "no universe kept" in missing_universe.text
        assert (await api.put("/api/v1/universes/kept", json=UNIVERSE_BODY)).is_success
        for bad in ({"cron": "every day"}, {"timezone": "Nowhere/Land"}, {"mode": "sometimes"}):
            answer = await api.put("/api/v1/schedules/kept-daily", json={**SCHEDULE_BODY, **bad})
            assert answer.status_code == 422, bad
        mismatch = await api.put("/api/v1/schedules/other", json=SCHEDULE_BODY)
        assert mismatch.status_code == 422

        async with stack.client(SUBMIT_TOKEN) as submitter:
            refused = await submitter.put("/api/v1/schedules/kept-daily", json=SCHEDULE_BODY)
            assert refused.status_code == 403  # configuration: admin
            created = await api.put("/api/v1/schedules/kept-daily", json=SCHEDULE_BODY)
            assert created.status_code == 201
            view = created.json()
            assert view["explained"] == "At 22:00 on Monday through Friday (UTC)"
            assert view["next_tick"] is not None
            assert not view["paused"]

            paused = (await api.post("/api/v1/schedules/kept-daily/pause")).json()
            assert paused["paused"]
            assert paused["next_tick"] is None
            # Running it now is a submit, and works on a paused schedule.
            triggered = await submitter.post("/api/v1/schedules/kept-daily/trigger")
            assert triggered.status_code == 202, triggered.text
            run = triggered.json()
            assert run["created"] == 2
            assert run["run_id"].startswith("sched.kept-daily.now.")
        runs = (await api.get("/api/v1/universes/kept/runs")).json()
        assert [r["run_id"] for r in runs] == [run["run_id"]]
        shown = (await api.get("/api/v1/schedules/kept-daily")).json()
        assert (shown["last_run_id"], shown["last_tick"]) == (run["run_id"], None)
        resumed = (await api.post("/api/v1/schedules/kept-daily/resume")).json()
        assert not resumed["paused"]
        assert (await api.delete("/api/v1/schedules/kept-daily")).status_code == 204
        assert (await api.get("/api/v1/schedules/kept-daily")).status_code == 404
        assert (await api.post("/api/v1/schedules/kept-daily/trigger")).status_code == 404


async def test_the_cli_creates_lists_pauses_triggers_and_deletes(
    redis_url: str,
    database_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKFILL_API_TOKEN", ADMIN_TOKEN)
    async with (
        running_stack(redis_url, database_url, namespace, with_worker=False) as stack,
        served_api(stack) as url,
    ):

        async def cli(*argv: str) -> tuple[int, str]:
            code = await asyncio.to_thread(main, [*argv, "--api-url", url])
            return code, capsys.readouterr().out

        assert (await stack.api.put("/api/v1/universes/kept", json=UNIVERSE_BODY)).is_success
        code, out = await cli(
            "schedule", "create", "nightly", "--universe", "kept", "--cron", "0 22 * * 1-5",
        )  # fmt: skip
        assert code == 0
        assert out.startswith("nightly  universe kept  '0 22 * * 1-5' UTC  top_up  next 20")
        code, out = await cli("schedule", "pause", "nightly")
        assert out == "nightly  universe kept  '0 22 * * 1-5' UTC  top_up  paused\n"
        code, out = await cli("schedule", "list")
        assert out == "nightly  universe kept  '0 22 * * 1-5' UTC  top_up  paused\n"
        code, out = await cli("schedule", "trigger", "nightly")
        assert code == 0
        assert out.startswith("run sched.nightly.now.")
        assert ": 2 jobs submitted" in out
        code, out = await cli("schedule", "show", "nightly")
        assert "  At 22:00 on Monday through Friday (UTC), mode top_up\n" in out
        assert "  last run:  sched.nightly.now." in out
        code, out = await cli("schedule", "resume", "nightly")
        assert "  next 20" in out
        code, out = await cli("schedule", "delete", "nightly")
        assert (code, out) == (0, "schedule nightly deleted (the runs it made stay)\n")
        code, _ = await cli("schedule", "show", "nightly")
        assert code == 1

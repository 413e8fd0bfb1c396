"""The client's schedule calls against the real stack: the API over HTTP, Redis, the projector."""

from __future__ import annotations

import pytest

from backfill_client import BackfillClient, InvalidRequest, ScheduleNotFound
from backfill_client.errors import ApiError
from tests.support.api_server import bearer_token, served_api
from tests.support.stack import running_stack


async def test_define_pause_trigger_and_delete_a_schedule(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with (
        running_stack(redis_url, database_url, namespace) as stack,
        served_api(stack) as api_url,
        BackfillClient(api_url, token=bearer_token(stack)) as client,
    ):
        with pytest.raises(ApiError) as missing_universe:
            await client.define_schedule("nightly", "open-pair", "0 22 * * 1-5")
        assert missing_universe.value.status == 409
        await client.define_universe("open-pair", "sim", ["SCLA", "SCLB"], ["1d"], "2024-01-01")
        assert (await client.universe("open-pair")).end is None  # open: up to each run

        defined = await client.define_schedule(
            "nightly", "open-pair", "30 16 * * 1-5", timezone="America/New_York"
        )
        assert (defined.mode, defined.paused) == ("top_up", False)
        assert defined.explained == "At 16:30 on Monday through Friday (America/New_York)"
        assert defined.next_tick is not None
        assert [s.name for s in await client.schedules()] == ["nightly"]
        with pytest.raises(InvalidRequest):
            await client.define_schedule("nightly", "open-pair", "30 16 * *")

        paused = await client.pause_schedule("nightly")
        assert (paused.paused, paused.next_tick) == (True, None)
        fired = await client.trigger_schedule("nightly")
        assert (fired.universe, fired.created) == ("open-pair", 2)
        done = await client.wait_run("open-pair", fired.run_id, timeout=60)
        assert done.by_status == {"succeeded": 2}
        assert (await client.schedule("nightly")).last_run_id == fired.run_id
        assert not (await client.resume_schedule("nightly")).paused

        await client.delete_schedule("nightly")
        with pytest.raises(ScheduleNotFound):
            await client.schedule("nightly")
        with pytest.raises(ScheduleNotFound):
            await client.trigger_schedule("nightly")

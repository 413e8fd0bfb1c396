"""Schedules in the console: defined (a bad one refused with its reasons, nothing typed lost),
shown with the next tick, paused, resumed, run now and deleted."""

from __future__ import annotations

from nicegui.testing import User

from services.ui.tests.console import eventually, log_in, set_values, texts
from tests.support.stack import Stack, wait_until

UNIVERSE = {
    "name": "ui-s",
    "source": "sim",
    "symbols": ["UISA", "UISB"],
    "bar_sizes": ["1d"],
    "start": "2024-01-01",
}


async def test_a_schedule_is_defined_paused_run_and_deleted(user: User, stack: Stack) -> None:
    assert (await stack.api.put("/api/v1/universes/ui-s", json=UNIVERSE)).status_code == 201
    await log_in(user)
    await user.open("/schedules")
    await user.should_see(marker="no-schedules")

    # A bad cron and an unknown zone: both said, the fields keep what was typed.
    set_values(user, name="ui-daily", universe="ui-s", cron="30 16 * *", timezone="Mars/Base")
    user.find(marker="save").click()

    def refused() -> None:
        said = " | ".join(texts(user, "problems"))
        assert "cron: a cron expression has five fields" in said, said
        assert "timezone: unknown timezone 'Mars/Base'" in said, said

    await eventually(refused, what="the form's reasons")
    with user:
        assert user.find(marker="cron").elements.pop().value == "30 16 * *"  # type: ignore[attr-defined]
    assert (await stack.api.get("/api/v1/schedules")).json() == []

    set_values(user, cron="30 16 * * 1-5", timezone="America/New_York")
    user.find(marker="save").click()

    def shown() -> None:
        assert texts(user, "when-ui-daily") == [
            "At 16:30 on Monday through Friday (America/New_York) · cron '30 16 * * 1-5'"
        ]
        state = texts(user, "state-ui-daily")[0]
        assert state.startswith("next tick: 20"), state
        assert "last run: none yet" in state, state

    await eventually(shown, what="the new schedule")
    stored = (await stack.api.get("/api/v1/schedules/ui-daily")).json()
    assert (stored["universe"], stored["mode"], stored["paused"]) == ("ui-s", "top_up", False)

    user.find(marker="pause-ui-daily").click()
    await user.should_see(marker="paused-ui-daily", retries=40)
    assert (await stack.api.get("/api/v1/schedules/ui-daily")).json()["paused"] is True

    user.find(marker="trigger-ui-daily").click()  # runs even when paused

    async def one_run() -> list[dict[str, object]]:
        found: list[dict[str, object]] = (await stack.api.get("/api/v1/universes/ui-s/runs")).json()
        return found

    runs = await wait_until(one_run, message="the run the console triggered")
    assert runs[0]["jobs"] == 2
    assert str(runs[0]["run_id"]).startswith("sched.ui-daily.now.")

    user.find(marker="resume-ui-daily").click()
    await user.should_see(marker="pause-ui-daily", retries=40)
    user.find(marker="delete-ui-daily").click()
    await user.should_see(marker="no-schedules", retries=40)
    assert (await stack.api.get("/api/v1/schedules/ui-daily")).status_code == 404

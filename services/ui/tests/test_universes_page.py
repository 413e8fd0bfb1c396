"""Universes in the console: a universe defined through the API is run, watched and cancelled."""

from __future__ import annotations

from nicegui.testing import User

from services.ui.tests.console import eventually, log_in, texts
from tests.support.stack import Stack, wait_until

UNIVERSE = {
    "name": "ui-u",
    "source": "sim",
    "symbols": ["UIA", "UIB"],
    "bar_sizes": ["1d"],
    "start": "2024-01-01",
    "end": "2024-02-01",
}


async def test_a_universe_is_run_and_its_progress_summed(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/universes")
    await user.should_see(marker="no-universes")
    assert (await stack.api.put("/api/v1/universes/ui-u", json=UNIVERSE)).status_code == 201
    await user.should_see(marker="universe-ui-u", retries=40)
    assert "sim · 2 symbols x 1d · 2024-01-01 to 2024-02-01" in texts(user, "universe-ui-u")

    user.find(marker="run-ui-u").click()

    async def one_run() -> list[dict[str, object]]:
        found: list[dict[str, object]] = (await stack.api.get("/api/v1/universes/ui-u/runs")).json()
        return found

    runs = await wait_until(one_run, message="the run submitted by the console")
    assert len(runs) == 1
    assert runs[0]["jobs"] == 2
    run_id = runs[0]["run_id"]

    def summed() -> None:
        line = texts(user, f"run-ui-u-{run_id}")
        assert line == [f"run {run_id}: 100%  ·  2 jobs (2 succeeded)  ·  46 bars"], line

    await eventually(summed, within=30, what="the run's totals")


async def test_a_run_is_cancelled_from_the_console(user: User, stack: Stack) -> None:
    for worker in stack.workers:  # no worker: the run's jobs stay queued until cancelled
        await worker.stop()
    assert (await stack.api.put("/api/v1/universes/ui-u", json=UNIVERSE)).status_code == 201
    run = await stack.api.post("/api/v1/universes/ui-u/runs", json={"run_id": "q1"})
    assert run.status_code == 202
    await log_in(user)
    await user.open("/universes")
    await user.should_see(marker="cancel-ui-u-q1", retries=40)
    user.find(marker="cancel-ui-u-q1").click()

    def cancelled() -> None:
        line = texts(user, "run-ui-u-q1")
        assert line == ["run q1: 100%  ·  2 jobs (2 cancelled)  ·  0 bars"], line

    await eventually(cancelled, within=30, what="the run cancelled")

"""Universes in the console: a universe defined through the API is run, watched and cancelled."""

from __future__ import annotations

from nicegui.elements.mixins.value_element import ValueElement
from nicegui.testing import User

from services.ui.tests.console import eventually, log_in, set_values, texts
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


def problems(user: User) -> list[str]:
    return texts(user, "universe-problems")


async def test_a_universe_is_defined_refused_edited_and_deleted(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/universes")
    await user.should_see(marker="universe-form")
    typed = {
        "universe-name": "bad name",
        "universe-source": "nowhere",
        "universe-symbols": "FRMA, FRMB\nFRMC",
        "universe-bar_sizes": ["1d", "1h"],
        "universe-start": "2024-03-01",
        "universe-end": "2024-02-01",
    }
    set_values(user, **typed)
    user.find(marker="universe-save").click()
    await eventually(lambda: _has(problems(user), "Name: 1 to 64"), what="the name refused")
    shown = problems(user)
    assert any(p.startswith("Source: unknown source 'nowhere'") for p in shown), shown
    assert "End: must be after the start (the end is exclusive)" in shown
    assert (await stack.api.get("/api/v1/universes")).json() == []
    assert {marker: value_of(user, marker) for marker in typed} == typed  # nothing typed is lost

    set_values(user, **{"universe-symbols": " ,\n"})
    user.find(marker="universe-save").click()
    await eventually(lambda: _has(problems(user), "Symbols: enter at least one symbol"))

    set_values(
        user,
        **{
            "universe-name": "formed",
            "universe-source": "sim",
            "universe-symbols": "FRMA, FRMB\nFRMC",
            "universe-start": "2024-01-01",
            "universe-description": "made in the console",
        },
    )
    user.find(marker="universe-save").click()
    await user.should_see(marker="universe-formed", retries=40)
    assert problems(user) == []
    stored = (await stack.api.get("/api/v1/universes/formed")).json()
    assert stored["symbols"] == ["FRMA", "FRMB", "FRMC"]
    assert (stored["bar_sizes"], stored["description"]) == (["1d", "1h"], "made in the console")
    assert "sim · 3 symbols x 1d, 1h · 2024-01-01 to 2024-02-01" in texts(user, "universe-formed")

    # Edited: its options (not on the form) stay; a new symbol list replaces the old.
    with_options = {**stored, "options": {"latency_ms": 7}}
    assert (await stack.api.put("/api/v1/universes/formed", json=with_options)).status_code == 200
    user.find(marker="edit-formed").click()
    await eventually(lambda: _equal(value_of(user, "universe-symbols"), "FRMA FRMB FRMC"))
    assert texts(user, "universe-form-heading")[0].startswith("Edit universe formed")
    set_values(user, **{"universe-symbols": "FRMA FRMD", "universe-bar_sizes": ["1d"]})
    user.find(marker="universe-save").click()

    async def edited() -> bool:
        found = (await stack.api.get("/api/v1/universes/formed")).json()
        return bool(found["symbols"] == ["FRMA", "FRMD"] and found["bar_sizes"] == ["1d"])

    await wait_until(edited, message="the edit saved")
    stored = (await stack.api.get("/api/v1/universes/formed")).json()
    assert stored["options"] == {"latency_ms": 7}

    user.find(marker="delete-formed").click()
    await user.should_see("Delete universe formed and the record of its runs?")
    user.find(marker="delete-keep").click()
    assert (await stack.api.get("/api/v1/universes/formed")).status_code == 200
    user.find(marker="delete-formed").click()
    user.find(marker="delete-confirm").click()

    async def gone() -> bool:
        return (await stack.api.get("/api/v1/universes/formed")).status_code == 404

    await wait_until(gone, message="the universe deleted")
    await user.should_see(marker="no-universes", retries=40)


def value_of(user: User, marker: str) -> object:
    with user:
        element = user.find(marker=marker).elements.pop()
        assert isinstance(element, ValueElement), element
        return element.value


def _equal(found: object, expected: object) -> None:
    assert found == expected, found


def _has(shown: list[str], start: str) -> None:
    assert any(line.startswith(start) for line in shown), shown

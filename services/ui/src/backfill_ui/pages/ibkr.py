"""IBKR connection (`/ibkr`): the gateway as the workers see it, and where they should connect.

The endpoint written here is a Redis key every ibkr-worker watches: they reconnect to it without
a restart. Clearing it sends them back to their own settings (BACKFILL_IBKR_HOST/PORT).
"""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui
from redis.exceptions import RedisError

from backfill_bus import clear_gateway_endpoint, read_gateway_endpoint, write_gateway_endpoint
from backfill_readmodel import queries
from backfill_ui import words
from backfill_ui.components.worker_info import ib_lines, pacing_lines, show_lines
from backfill_ui.feed import Feed
from backfill_ui.frame import Console, frame
from backfill_ui.live import RESYNC, LiveEvent

DEFAULT_PORT = 4002  # IB Gateway's paper-trading port (live: 4001; TWS: 7497 and 7496)


def register(console: Console) -> None:
    @ui.page("/ibkr")
    async def ibkr_page() -> None:
        with frame(console, "IBKR connection"):
            page = IbkrPage(console)
            await page.show_endpoint()
            await page.show_workers()


class IbkrPage:
    def __init__(self, console: Console) -> None:
        self.console = console
        with ui.card().classes("w-full max-w-3xl q-pa-md"):
            ui.label("Gateway endpoint").classes("text-subtitle1")
            self.endpoint = ui.label().mark("endpoint")
            with ui.row().classes("items-start gap-4"):
                self.host = ui.input("Host", placeholder="127.0.0.1").classes("w-64").mark("host")
                self.port = (
                    ui.number("Port", value=DEFAULT_PORT, min=1, max=65535, format="%d")
                    .classes("w-32")
                    .mark("port")
                )
                ui.button("Connect the workers here", icon="link", on_click=self.apply).mark(
                    "apply-endpoint"
                )
                ui.button("Use the workers' settings", icon="link_off", on_click=self.clear).props(
                    "flat"
                ).mark("clear-endpoint")
            self.problem = ui.label().classes("text-negative").mark("endpoint-problem")
        ui.label("Workers").classes("text-h6")
        self.workers = ui.column().classes("w-full gap-2").mark("ibkr-workers")
        Feed(
            console.services.tail,
            self.on_events,
            accept=lambda event: event.type == "worker.heartbeat",
        )

    async def show_endpoint(self) -> None:
        services = self.console.services
        try:
            endpoint = await read_gateway_endpoint(services.redis, services.names)
        except (RedisError, OSError):
            self.endpoint.set_text("Redis is unavailable: the endpoint cannot be read now.")
            return
        if endpoint is None:
            self.endpoint.set_text(
                "Not set: every ibkr-worker connects where its own settings say "
                "(BACKFILL_IBKR_HOST, BACKFILL_IBKR_PORT)."
            )
            return
        self.endpoint.set_text(
            f"{endpoint.address}, set by {endpoint.changed_by or 'unknown'} "
            f"at {endpoint.changed_at or 'an unknown time'}"
        )
        if not self.host.value:
            self.host.set_value(endpoint.host)
            self.port.set_value(endpoint.port)

    async def apply(self) -> None:
        services = self.console.services
        port = self.port.value
        try:
            endpoint = await write_gateway_endpoint(
                services.redis,
                services.names,
                self.host.value or "",
                int(port) if port is not None else 0,
                changed_by=services.producer,
            )
        except ValueError as error:  # GatewayEndpoint says what is wrong, in plain words
            self.problem.set_text(str(error))
            return
        except (RedisError, OSError):
            self.problem.set_text("Redis is unavailable: nothing was changed; try again.")
            return
        self.problem.set_text("")
        ui.notify(f"ibkr-workers will reconnect to {endpoint.address}", type="positive")
        await self.show_endpoint()

    async def clear(self) -> None:
        services = self.console.services
        try:
            await clear_gateway_endpoint(services.redis, services.names)
        except (RedisError, OSError):
            self.problem.set_text("Redis is unavailable: nothing was changed; try again.")
            return
        self.problem.set_text("")
        ui.notify("ibkr-workers go back to their own settings", type="positive")
        await self.show_endpoint()

    async def on_events(self, events: list[LiveEvent]) -> bool:
        if any(e.type in ("worker.heartbeat", RESYNC) for e in events):
            await self.show_workers()
        return False

    async def show_workers(self) -> None:
        now = datetime.now(UTC)
        timeout = self.console.services.settings.worker_timeout_s
        async with self.console.services.connect() as conn:
            found = await queries.list_workers(conn, now, timeout, source="ibkr")
        self.workers.clear()
        with self.workers:
            if not found:
                ui.label("No ibkr-worker has sent a heartbeat yet.").classes("text-grey-7")
            for worker in found:
                with ui.card().classes("w-full q-pa-sm").mark(f"ibkr-worker-{worker.worker_id}"):
                    with ui.row().classes("items-center gap-3"):
                        ui.badge(
                            "alive" if worker.alive else "silent",
                            color="positive" if worker.alive else "grey",
                        )
                        ui.label(worker.worker_id).classes("text-bold")
                        ui.label(f"{worker.host} · state {worker.state}").classes("text-grey-8")
                        ui.label(f"last heartbeat {words.ago(worker.last_heartbeat, now)}").classes(
                            "text-caption text-grey-7"
                        )
                    lines = ib_lines(worker.info.get("ibkr")) + pacing_lines(
                        worker.info.get("pacing")
                    )
                    if not lines:
                        ui.label("Its heartbeat says nothing about the gateway.").classes(
                            "text-caption text-grey-7"
                        )
                    show_lines(lines)

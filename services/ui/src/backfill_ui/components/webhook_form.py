"""Notify a webhook when jobs finish: the console's own subscription, beside the API's.

Kept in Redis (backfill_bus.webhooks) under the id `console`, so every console and projector
replica sees the same one; subscriptions made through the API (`/api/v1/webhooks`) are counted
here but managed there. The secret signs each POST (X-Backfill-Signature: sha256=...); it is
never shown again, except one generated for a webhook saved without a secret, shown once.
"""

from __future__ import annotations

from nicegui import ui
from redis.exceptions import RedisError

from backfill_bus import (
    CONSOLE_WEBHOOK_ID,
    clear_console_webhook,
    read_webhooks,
    write_console_webhook,
)
from backfill_ui.services import Services


class WebhookForm:
    def __init__(self, services: Services) -> None:
        self.services = services
        with (
            ui.expansion("Notify a webhook when jobs finish", icon="notifications")
            .classes("w-full")
            .mark("webhook")
        ):
            self.current = ui.label().classes("text-grey-8").mark("webhook-current")
            with ui.row().classes("items-start gap-4"):
                self.url = (
                    ui.input("URL", placeholder="https://hooks.example.com/backfill")
                    .classes("w-96")
                    .mark("webhook-url")
                )
                self.secret = (
                    ui.input("Secret (signs each POST)", password=True)
                    .classes("w-64")
                    .mark("webhook-secret")
                )
                ui.button("Save", icon="save", on_click=self.save).mark("webhook-save")
                ui.button("Remove", icon="delete", on_click=self.remove).props("flat").mark(
                    "webhook-remove"
                )
            self.problem = ui.label().classes("text-negative").mark("webhook-problem")
            self.generated = ui.label().classes("font-mono").mark("webhook-generated-secret")

    async def show(self) -> None:
        try:
            subscribers = await read_webhooks(self.services.redis, self.services.names)
        except (RedisError, OSError):
            self.current.set_text("Redis is unavailable: the webhook cannot be read now.")
            return
        own = next((s for s in subscribers if s.id == CONSOLE_WEBHOOK_ID), None)
        others = len(subscribers) - (own is not None)
        also = f" {others} more set through the API." if others else ""
        if own is None:
            self.current.set_text(f"No webhook: finished jobs are only shown here.{also}")
            return
        signed = "signed" if own.secret else "not signed"
        self.current.set_text(
            f"Every finished job is POSTed to {own.shown_url} ({signed}), "
            f"retried with backoff; each delivery shows in the job's timeline.{also}"
        )

    async def save(self) -> None:
        given = self.secret.value or ""
        try:
            secret = await write_console_webhook(
                self.services.redis, self.services.names, self.url.value or "", given
            )
        except ValueError as error:  # the URL check says what is wrong, in plain words
            self.problem.set_text(str(error))
            return
        except (RedisError, OSError):
            self.problem.set_text("Redis is unavailable: nothing was changed; try again.")
            return
        self.problem.set_text("")
        self.secret.set_value("")
        self.generated.set_text(
            "" if given else f"Generated secret, shown this once (it signs each POST): {secret}"
        )
        ui.notify("finished jobs will be posted to the webhook", type="positive")
        await self.show()

    async def remove(self) -> None:
        try:
            await clear_console_webhook(self.services.redis, self.services.names)
        except (RedisError, OSError):
            self.problem.set_text("Redis is unavailable: nothing was changed; try again.")
            return
        self.problem.set_text("")
        self.generated.set_text("")
        ui.notify("the webhook is removed", type="positive")
        await self.show()

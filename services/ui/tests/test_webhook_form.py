"""The Jobs page's webhook for finished jobs: checked, saved in Redis, removed."""

from __future__ import annotations

from nicegui.testing import User

from backfill_bus import add_webhook, read_webhooks
from services.ui.tests.console import eventually_async, log_in, set_values
from tests.support.stack import Stack


async def test_the_webhook_is_checked_saved_and_removed(user: User, stack: Stack) -> None:
    await log_in(user)
    await user.open("/jobs")
    await user.should_see("No webhook: finished jobs are only shown here.")

    set_values(user, **{"webhook-url": "ftp://nowhere"})
    user.find(marker="webhook-save").click()
    await user.should_see("a webhook URL starts with http:// or https:// and names a host")
    assert await read_webhooks(stack.redis, stack.names) == []

    set_values(user, **{"webhook-url": "https://hooks.example.com/b", "webhook-secret": "k"})
    user.find(marker="webhook-save").click()

    async def saved() -> None:
        found = await read_webhooks(stack.redis, stack.names)
        assert [(s.url, s.secret) for s in found] == [("https://hooks.example.com/b", "k")]

    await eventually_async(saved)
    await user.should_see("https://hooks.example.com/b (signed)")

    user.find(marker="webhook-remove").click()

    async def removed() -> None:
        assert await read_webhooks(stack.redis, stack.names) == []

    await eventually_async(removed)


async def test_subscriptions_made_through_the_api_are_counted_and_left_alone(
    user: User, stack: Stack
) -> None:
    other = await add_webhook(stack.redis, stack.names, "https://other.example/h")
    await log_in(user)
    await user.open("/jobs")
    await user.should_see(
        "No webhook: finished jobs are only shown here. 1 more set through the API."
    )

    set_values(user, **{"webhook-url": "https://hooks.example.com/b"})
    user.find(marker="webhook-save").click()
    # Saved without a secret: one is generated, shown once, and signs every POST.
    await user.should_see("https://hooks.example.com/b (signed)")
    own = next(s for s in await read_webhooks(stack.redis, stack.names) if s.id != other.id)
    assert len(own.secret) >= 32
    await user.should_see(f"Generated secret, shown this once (it signs each POST): {own.secret}")

    user.find(marker="webhook-remove").click()

    async def only_the_api_one_left() -> None:
        assert [s.id for s in await read_webhooks(stack.redis, stack.names)] == [other.id]

    await eventually_async(only_the_api_one_left)

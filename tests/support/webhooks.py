"""The test pipeline with the projector's webhook notifier running beside it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from backfill_projector.webhooks import WebhookNotifier
from tests.support.stack import Stack, running_stack


@contextlib.asynccontextmanager
async def notifying_stack(
    redis_url: str, database_url: str, namespace: str, *, max_tries: int = 3
) -> AsyncIterator[Stack]:
    """`running_stack`, plus a notifier with short retries and reads, stopped at the end."""
    async with running_stack(redis_url, database_url, namespace) as stack:
        notifier = WebhookNotifier(
            stack.engine, stack.redis, stack.names, "test-notifier", max_tries=max_tries,
            retry_base_s=0.05, block_ms=50,
        )  # fmt: skip
        stop = asyncio.Event()
        task = asyncio.create_task(notifier.run(stop))
        yield stack
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=5)


async def notifier_idle(stack: Stack) -> bool:
    """The notifier has read and acked everything on the log: nothing more is on its way."""
    stream = await stack.redis.xinfo_stream(stack.names.events)
    for group in await stack.redis.xinfo_groups(stack.names.events):
        if group["name"] in (b"webhooks", "webhooks"):
            caught_up = group["last-delivered-id"] == stream["last-generated-id"]
            return bool(caught_up and group["pending"] == 0)
    return False

"""Riding out a Redis restart: retry an operation on a lost connection instead of dropping a job."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

log = logging.getLogger(__name__)
T = TypeVar("T")
DISCONNECTS = (ConnectionError, TimeoutError, BusyLoadingError, OSError)


async def retry_on_disconnect(
    operation: Callable[[], Awaitable[T]], what: str, give_up_after_s: float = 120.0
) -> T:
    """Run `operation`, retrying with backoff while Redis is unreachable or loading its AOF.

    An event appended twice because the first reply was lost is harmless: the projector folds
    by key and by per-chunk sequence. Past `give_up_after_s` the error propagates, the entry
    stays pending, and crash recovery takes over.
    """
    deadline = time.monotonic() + give_up_after_s
    delay = 0.1
    while True:
        try:
            return await operation()
        except DISCONNECTS:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("Redis unreachable during %s; retrying in %.1f s", what, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

"""The stack's API served over real HTTP (uvicorn on a free port), for clients outside the test.

It serves the very app the stack built (its lifespan already running), so every setting the
stack uses, credentials included, holds for curl, the client library and any other HTTP caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from tests.support.servers import free_port
from tests.support.stack import Stack, wait_until


def bearer_token(stack: Stack) -> str | None:
    """The token the stack's own API client sends, if the API wants one."""
    value = stack.api.headers.get("authorization", "")
    return value.removeprefix("Bearer ") if value.startswith("Bearer ") else None


@asynccontextmanager
async def served_api(stack: Stack) -> AsyncIterator[str]:
    """Yield the base URL (`http://127.0.0.1:<port>`) of the stack's API over real HTTP."""
    transport = stack.transport
    assert isinstance(transport, httpx.ASGITransport)
    app: Any = transport.app
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        if task.done():
            task.result()  # raises why it could not start
        return server.started

    await wait_until(started, timeout=20, message="uvicorn serving the API")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)

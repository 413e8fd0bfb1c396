"""The API application: `create_app(settings)` is its composition root."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backfill_api.dependencies import Services
from backfill_api.routes import bars, jobs, maintenance, system, workers
from backfill_api.settings import ApiSettings
from backfill_bus import CommandBus, Names
from backfill_readmodel.engine import create_engine

API_PREFIX = "/api/v1"


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url)
        engine = create_engine(settings.database_url)
        producer = f"api@{socket.gethostname()}"
        app.state.services = Services(
            redis=redis,
            engine=engine,
            commands=CommandBus(redis, Names(settings.redis_namespace), producer),
            settings=settings,
        )
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    app = FastAPI(
        title="Backfill",
        version="0.1.0",
        summary="Historical market data collection that survives anything.",
        lifespan=lifespan,
    )
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, _redis_unavailable)
    for module in (jobs, bars, system, workers):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(maintenance.router_for(settings), prefix=API_PREFIX)
    return app


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    """422 with each reason as `loc` + `msg`, never echoing the (maybe huge) input back.

    Even `loc` can carry client text (an unknown key's name), so each part is cut short.
    """
    assert isinstance(error, RequestValidationError)
    detail: list[dict[str, Any]] = [
        {
            "loc": [_short(part) for part in item.get("loc", ())][:10],
            "msg": _short(item.get("msg", ""), 500),
            "type": item.get("type", ""),
        }
        for item in error.errors()[:50]
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _redis_unavailable(_request: Request, error: Exception) -> JSONResponse:
    """Redis is down or restarting: nothing was accepted, so the client should try again."""
    return JSONResponse(
        {"detail": f"Redis is unavailable ({type(error).__name__}); nothing was accepted, retry"},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def _short(value: Any, limit: int = 100) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + "..."
    return value

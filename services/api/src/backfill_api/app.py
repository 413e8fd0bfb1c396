"""The API application: `create_app(settings)` is its composition root."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backfill_api.auth import authorization, document_security, refusal_of
from backfill_api.dependencies import Services
from backfill_api.guards import refuse_nul_characters
from backfill_api.observability import ApiMetrics, CorrelationMiddleware, RequestMetricsMiddleware
from backfill_api.routes import (
    bars,
    coverage,
    jobs,
    maintenance,
    schedules,
    system,
    universes,
    webhooks,
    workers,
)
from backfill_api.settings import ApiSettings
from backfill_bus import CommandBus, Names
from backfill_readmodel.engine import create_engine

API_PREFIX = "/api/v1"


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = Redis.from_url(settings.redis_url)
        engine = create_engine(settings.database_url)
        producer = f"api@{socket.gethostname()}"
        app.state.services = Services(
            redis=redis,
            engine=engine,
            commands=CommandBus(
                redis, Names(settings.redis_namespace), producer, settings.idempotency_ttl_s
            ),
            settings=settings,
        )
        metrics.watch(redis, engine, Names(settings.redis_namespace))
        try:
            yield
        finally:
            await redis.aclose()
            await engine.dispose()

    authorize = authorization(settings)
    app = FastAPI(
        title="Backfill",
        version="0.1.0",
        summary="Historical market data collection that survives anything.",
        lifespan=lifespan,
        # Every route, including those added later, needs a token of the scope auth.py says,
        # and refuses what no column could store.
        dependencies=[Depends(authorize), Depends(refuse_nul_characters)],
    )
    app.state.authorize = authorize  # also asked by the validation handler: 401 before 422
    document_security(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RedisError, _redis_unavailable)
    # Added inner first: the request metrics read the route the router sets on the scope that
    # the correlation middleware passes in.
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(CorrelationMiddleware)
    app.include_router(metrics.router())  # /metrics at the root, where Prometheus looks
    for module in (jobs, bars, coverage, system, workers, webhooks, universes, schedules):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(maintenance.router_for(settings), prefix=API_PREFIX)
    return app


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 with each reason as `loc` + `msg`, never echoing the (maybe huge) input back.

    Even `loc` can carry client text (an unknown key's name), so each part is cut short. A
    caller without the route's scope gets its 401 or 403 instead: the token comes first.
    """
    assert isinstance(error, RequestValidationError)
    refused = await refusal_of(request)
    if refused is not None:
        return JSONResponse(
            {"detail": refused.detail}, status_code=refused.status_code, headers=refused.headers
        )
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

"""Statistics and health."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel
from sqlalchemy import text

from backfill_api.dependencies import ConnectionDep, ServicesDep
from backfill_readmodel import queries
from backfill_readmodel.views import Stats

router = APIRouter(tags=["system"])


@router.get("/stats", response_model=Stats)
async def get_stats(conn: ConnectionDep) -> Stats:
    """Counts by status and source, success rate (succeeded vs failed), mean duration, bars."""
    return await queries.stats(conn)


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str]


@router.get("/health", response_model=Health)
async def health(services: ServicesDep, response: Response) -> Health:
    """Readiness: 200 when Redis and the database answer, else 503 with what failed."""
    checks: dict[str, str] = {}
    try:
        await services.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:  # any failure means not ready; say which
        checks["redis"] = f"error: {error}"
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:
        checks["database"] = f"error: {error}"
    healthy = all(value == "ok" for value in checks.values())
    if not healthy:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(status="ok" if healthy else "unavailable", checks=checks)


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}

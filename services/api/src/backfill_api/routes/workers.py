"""The workers, as their heartbeats describe them."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from backfill_api.dependencies import ConnectionDep, ServicesDep
from backfill_readmodel import queries
from backfill_readmodel.views import WorkerView

router = APIRouter(tags=["workers"])


@router.get("/workers", response_model=list[WorkerView])
async def list_workers(
    conn: ConnectionDep, services: ServicesDep, source: str | None = None
) -> list[WorkerView]:
    """Every worker seen, newest heartbeat first; `alive` when heard from recently."""
    return await queries.list_workers(
        conn, datetime.now(UTC), services.settings.worker_timeout_s, source=source
    )

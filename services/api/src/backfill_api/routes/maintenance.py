"""Maintenance: ask the projector to delete finished jobs older than some days (bars stay)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, status
from pydantic import BaseModel

from backfill_api.dependencies import ServicesDep
from backfill_bus import RetentionSettings, request_cleanup

MAX_DAYS = 36_500  # a century: further back than any bar, and within datetime's range


class CleanupAccepted(BaseModel):
    finished_before: datetime


def router_for(settings: RetentionSettings) -> APIRouter:
    """The maintenance routes, with this deployment's retention as the default."""
    router = APIRouter(prefix="/maintenance", tags=["maintenance"])

    @router.post("/cleanup", status_code=status.HTTP_202_ACCEPTED, response_model=CleanupAccepted)
    async def cleanup(
        services: ServicesDep,
        days: int | None = Query(
            default=None,
            ge=0,
            le=MAX_DAYS,
            description="keep jobs that finished in the last N days"
            f" (default: the deployment's retention, {settings.job_retention_days})",
        ),
    ) -> CleanupAccepted:
        """Delete succeeded, failed and cancelled jobs that finished more than `days` days ago,
        with their chunks and history, and workers silent as long. Bars are never deleted.

        The request goes on the event log; the projector deletes when it folds it.
        """
        event = await request_cleanup(
            services.redis,
            services.commands.names,
            keep_days=settings.job_retention_days if days is None else days,
            requested_by="api",
            producer=services.commands.producer,
        )
        return CleanupAccepted(finished_before=event.finished_before)

    return router

"""The worker runtime shared by every source: consume commands, plan, fetch, publish events."""

from backfill_worker.source import FetchRequest, Plan, Source, SourceError

__all__ = ["FetchRequest", "Plan", "Source", "SourceError"]

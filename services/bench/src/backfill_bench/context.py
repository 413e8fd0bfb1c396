"""What every workload is handed: the running stack, the sizes, and ways in."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from backfill_bench.sizes import Sizes
from backfill_bench.stack import BenchStack
from backfill_client import BackfillClient


@dataclass
class Context:
    stack: BenchStack
    sizes: Sizes
    db: asyncpg.Connection  # the bench's own reader of the projection (waits and checks)

    def client(self, *, via_redis: bool) -> BackfillClient:
        """The client library: submits on Redis directly, or through `POST /api/v1/jobs`."""
        return BackfillClient(
            self.stack.api_url,
            token=self.stack.api_token,
            redis_url=self.stack.redis_url if via_redis else None,
        )

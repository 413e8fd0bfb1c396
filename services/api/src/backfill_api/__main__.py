"""`python -m backfill_api` (also installed as `backfill-api`): serve the API with uvicorn."""

from __future__ import annotations

import uvicorn

from backfill_api.app import create_app
from backfill_api.settings import ApiSettings


def main() -> None:
    settings = ApiSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level="info",
        # The access log of every poll would drown the useful lines in `backfill dev`.
        access_log=False,
    )


if __name__ == "__main__":
    main()

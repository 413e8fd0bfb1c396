"""`python -m backfill_api` (also installed as `backfill-api`): serve the API with uvicorn."""

from __future__ import annotations

import gc

import uvicorn

from backfill_api.app import create_app
from backfill_api.settings import ApiSettings
from backfill_bus.logs import configure_logging


def main() -> None:
    log_settings = configure_logging("api")
    settings = ApiSettings()
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: frozen out of the
    # cyclic GC, which otherwise rescans it while a long `GET /bars` allocates rows (measured:
    # half the time of a 98,000-bar response).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        # None: uvicorn keeps the handler configure_logging set (JSON lines in json mode).
        log_config=None,
        log_level=log_settings.log_level.lower(),
        # The access log of every poll would drown the useful lines in `backfill dev`.
        access_log=False,
    )


if __name__ == "__main__":
    main()

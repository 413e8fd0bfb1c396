"""Yahoo worker settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from backfill_worker import WorkerSettings


class YahooSettings(WorkerSettings):
    state_dir: Path = Path(".backfill")
    # Where yfinance keeps its timezone cache: persistent, so a restart costs no extra requests.
    yahoo_cache_dir: Path | None = None
    yahoo_proxy_url: str | None = None  # e.g. http://proxy.corp:3128, applied to every request
    yahoo_ca_bundle: Path | None = None  # a PEM bundle to trust (a corporate TLS-inspecting proxy)
    yahoo_requests_per_s: float = Field(default=1.0, gt=0)
    yahoo_burst: int = Field(default=2, ge=1)
    yahoo_min_requests_per_s: float = Field(default=0.05, gt=0)
    yahoo_max_pause_s: float = Field(default=300.0, gt=0)

    @property
    def cache_dir(self) -> Path:
        return self.yahoo_cache_dir or self.state_dir / "yahoo-cache"

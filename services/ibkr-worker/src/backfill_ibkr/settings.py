"""IBKR worker settings; every field is an environment variable prefixed BACKFILL_."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from backfill_ibkr.library import LibraryName
from backfill_worker import WorkerSettings


class IbkrSettings(WorkerSettings):
    ibkr_host: str = "127.0.0.1"
    ibkr_port: int = Field(default=4002, ge=1, le=65535)  # IB Gateway, paper trading
    # Each replica leases one id of this range in Redis; 0 is IB's "master" client: never used.
    ibkr_client_id_min: int = Field(default=10, ge=1)
    ibkr_client_id_max: int = Field(default=41, ge=1)
    ibkr_client_id_ttl_s: float = Field(default=30.0, gt=0)
    ibkr_account: str = ""
    ibkr_library: LibraryName = "auto"
    ibkr_connect_timeout_s: float = Field(default=10.0, gt=0)
    # Contract details and head timestamps have no timeout of their own in the library.
    ibkr_request_timeout_s: float = Field(default=30.0, gt=0)
    ibkr_farm_wait_s: float = Field(default=10.0, ge=0)
    ibkr_reconnect_min_s: float = Field(default=0.5, gt=0)
    ibkr_reconnect_max_s: float = Field(default=60.0, gt=0)
    ibkr_endpoint_poll_s: float = Field(default=2.0, gt=0)
    # The pacing budget is per IB login: replicas on the same login share it. Default: the
    # gateway's address, which is one login in any sane deployment.
    ibkr_login: str = ""
    ibkr_pacing_scale: float = Field(default=1.0, gt=0, le=1.0)
    ibkr_pacing_rules: str = ""  # JSON list of rules replacing the defaults (README: IBKR)
    ibkr_pacing_margin_s: float = Field(default=0.25, ge=0)
    ibkr_max_open_requests: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _client_id_range(self) -> Self:
        if self.ibkr_client_id_max < self.ibkr_client_id_min:
            raise ValueError("BACKFILL_IBKR_CLIENT_ID_MAX is below BACKFILL_IBKR_CLIENT_ID_MIN")
        return self

    @property
    def login(self) -> str:
        return self.ibkr_login or f"{self.ibkr_host}:{self.ibkr_port}"

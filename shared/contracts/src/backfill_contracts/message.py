"""The envelope every message on every stream shares.

Wire format: a stream entry with one field, `__data__`, holding the message as UTF-8 JSON. The
`type` field tells which message it is and `v` its schema version. Messages change only by adding
optional fields, so a newer producer never breaks an older consumer: consumers ignore fields they do
not know.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
DATA_FIELD = "__data__"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: int = SCHEMA_VERSION
    message_id: str = Field(default_factory=lambda: uuid4().hex)
    ts: AwareDatetime = Field(default_factory=utc_now)
    producer: str = "unknown"

"""The wire format: one stream field, `__data__`, holding the message as JSON.

This is also what FastStream's Redis subscriber reads from a plain `XADD`, so FastStream workers,
our own publishers and a `redis-cli` user all speak the same format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from backfill_contracts import DATA_FIELD, Message

_DATA_KEY = DATA_FIELD.encode()


def encode(message: Message) -> dict[str | bytes, bytes]:
    return {DATA_FIELD: message.model_dump_json().encode()}


def body_of(fields: Mapping[bytes, bytes]) -> bytes:
    """The JSON body of an entry: `__data__` if present, else the flat fields as a JSON object."""
    data = fields.get(_DATA_KEY)
    if data is not None:
        return data
    return json.dumps(
        {key.decode(errors="replace"): value.decode(errors="replace") for key, value in fields.items()}
    ).encode()

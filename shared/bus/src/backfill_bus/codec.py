"""The wire format: one stream field, `__data__`, holding the message as JSON.

This is also what FastStream's Redis subscriber reads from a plain `XADD`, so FastStream workers,
our own publishers and a `redis-cli` user all speak the same format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from redis.typing import EncodableT, FieldT

from backfill_contracts import DATA_FIELD, Message

_DATA_KEY = DATA_FIELD.encode()

Fields = dict[FieldT, EncodableT]


def encode(message: Message) -> Fields:
    return {DATA_FIELD: message.model_dump_json().encode()}


def text(value: bytes | str) -> str:
    """Redis answers bytes (we never set decode_responses); ids and names are ASCII text."""
    return value.decode() if isinstance(value, bytes) else value


def body_of(fields: Mapping[bytes, bytes]) -> bytes:
    """The JSON body of an entry: `__data__` if present, else the flat fields as a JSON object."""
    data = fields.get(_DATA_KEY)
    if data is not None:
        return data
    return json.dumps(
        {
            key.decode(errors="replace"): value.decode(errors="replace")
            for key, value in fields.items()
        }
    ).encode()

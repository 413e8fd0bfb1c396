"""The body of a command entry, decoded exactly as FastStream's Redis subscriber decodes it.

Entries reach a worker both through FastStream (new ones) and through the claimer (reclaimed
ones); both must read the same forms: plain JSON in `__data__` (our documented format),
FastStream's binary envelope and its legacy `{"data", "headers"}` JSON envelope, or flat fields.
"""

from __future__ import annotations

from collections.abc import Mapping

from faststream.redis.parser.binary import BinaryMessageFormatV1

from backfill_bus import body_of

_DATA = b"__data__"


def command_body(fields: Mapping[bytes, bytes]) -> bytes:
    data = fields.get(_DATA)
    if data is None:
        return body_of(fields)
    body, _headers = BinaryMessageFormatV1.parse(data)
    return body

"""Checks every route runs before its own: input no database column could hold."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

NUL = "\x00"


async def refuse_nul_characters(request: Request) -> None:
    """422 for a NUL character in a query or path parameter.

    PostgreSQL's text cannot hold one, so such a filter would fail the query with a 500
    (found by the API fuzz); no symbol, source, status or id contains one.
    """
    errors: list[dict[str, Any]] = [
        {
            "loc": (where, name.replace(NUL, "")),
            "msg": "must not contain a NUL character (\\u0000)",
            "type": "value_error",
        }
        for where, items in (
            ("query", request.query_params.multi_items()),
            ("path", request.path_params.items()),
        )
        for name, value in items
        if NUL in name or NUL in str(value)
    ]
    if errors:
        raise RequestValidationError(errors)

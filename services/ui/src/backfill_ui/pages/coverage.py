"""Coverage (`/coverage`): every series with what it holds, and one series in detail.

The detail (`/coverage/series?source=…&symbol=…&bar_size=…&price_type=…`) shows the first and
last bar, the count, a calendar heatmap of stored bars per session, and each gap with its
reason, all from the read model's coverage queries, the same as `GET /api/v1/coverage`.
"""

from __future__ import annotations

from urllib.parse import urlencode

from nicegui import ui

from backfill_contracts import BarSize
from backfill_readmodel.coverage import (
    RangeTooLargeError,
    Series,
    UnknownCalendarError,
    coverage,
    list_series,
)
from backfill_ui.components.heatmap import heatmap_height, heatmap_options
from backfill_ui.frame import Console, frame

REASONS = {
    "never_requested": "never requested",
    "no_data": "source had no data",
    "partial": "partial",
    "failed": "failed",
}


def series_path(series: Series) -> str:
    query = {
        "source": series.source,
        "symbol": series.symbol,
        "bar_size": series.bar_size.value,
        "price_type": series.price_type,
    }
    return f"/coverage/series?{urlencode(query)}"


def register(console: Console) -> None:
    @ui.page("/coverage")
    async def coverage_page() -> None:
        with frame(console, "Coverage"):
            async with console.services.connect() as conn:
                found = await list_series(conn)
            with ui.column().classes("w-full gap-1").mark("series-list"):
                if not found:
                    ui.label("No bars stored yet.").mark("no-series")
                for series, held in found:
                    with ui.row().classes("items-center gap-4"):
                        name = f"{series.source} · {series.symbol} · {series.bar_size.value}"
                        ui.link(f"{name} · {series.price_type}", series_path(series))
                        ui.label(
                            f"{held.count:,} bars, {_day(held.first)} to {_day(held.last)}"
                        ).classes("text-caption")

    @ui.page("/coverage/series")
    async def series_page(
        source: str, symbol: str, bar_size: str, price_type: str = "trades"
    ) -> None:
        with frame(console, f"Coverage of {symbol}"):
            if bar_size not in BarSize.__members__.values():
                ui.label(f"unknown bar size {bar_size!r}").mark("coverage-error")
                return
            series = Series(source, symbol, BarSize(bar_size), price_type)
            try:
                async with console.services.connect() as conn:
                    view = await coverage(conn, series, with_days=True)
            except (UnknownCalendarError, RangeTooLargeError) as error:
                ui.label(str(error)).mark("coverage-error")
                return
            ui.link("All series", "/coverage")
            with ui.column().classes("gap-0").mark("coverage-summary"):
                ui.label(f"{source} · {symbol} · {bar_size} · {price_type}")
                ui.label(f"{view.count:,} bars, {_day(view.first)} to {_day(view.last)}")
                share = f"{100 * view.held / view.expected:.1f} %" if view.expected else "-"
                ui.label(
                    f"{view.held:,} of {view.expected:,} expected bars ({share}), "
                    f"calendar {view.calendar}"
                )
            days = view.days or []
            chart = ui.echart(heatmap_options(days)).classes("w-full")
            chart.style(f"height: {heatmap_height(days)}px").mark("coverage-heatmap")
            ui.label(f"Gaps ({len(view.gaps)})").classes("text-h6")
            with ui.column().classes("w-full gap-0").mark("gaps"):
                if not view.gaps:
                    ui.label("none: every expected bar is stored")
                for gap in view.gaps:
                    ui.label(
                        f"{gap.start:%Y-%m-%d %H:%M} to {gap.end:%Y-%m-%d %H:%M} UTC · "
                        f"{gap.bars:,} bars · {REASONS.get(gap.kind, gap.kind)}"
                    )


def _day(moment: object) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M}"

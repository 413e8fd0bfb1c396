"""What a worker's heartbeat `info` says, line by line: whatever is there, missing keys tolerated.

ibkr workers send `{"ibkr": {"state", "host", "port", "client_id", "account", "server_version",
"last_error"}, "pacing": {rule: {"used", "limit", "window_s"}}}`; yahoo workers send
`{"yahoo": "ok" | "paused", "paused_until": iso, ...}`. Unknown keys are shown as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nicegui import ui

IB_TONES = {"connected": "positive", "connecting": "warning", "lost": "negative"}
YAHOO_TONES = {"ok": "positive", "paused": "warning"}


@dataclass(frozen=True, slots=True)
class InfoLine:
    label: str
    text: str
    tone: str = ""  # a Quasar colour name, or "" for plain
    used: float | None = None  # a budget: used of limit
    limit: float | None = None


def ib_lines(ibkr: Any) -> list[InfoLine]:
    if not isinstance(ibkr, dict):
        return [] if ibkr is None else [InfoLine("IB Gateway", str(ibkr))]
    state = str(ibkr.get("state", "unknown"))
    where = ""
    if ibkr.get("host") is not None or ibkr.get("port") is not None:
        where = f" to {ibkr.get('host', '?')}:{ibkr.get('port', '?')}"
    lines = [InfoLine("IB Gateway", f"{state}{where}", IB_TONES.get(state, "grey-7"))]
    details = [
        f"{label} {ibkr[key]}"
        for key, label in (
            ("client_id", "client id"),
            ("account", "account"),
            ("server_version", "server version"),
        )
        if ibkr.get(key) not in (None, "")
    ]
    if details:
        lines.append(InfoLine("IB session", ", ".join(details)))
    if ibkr.get("last_error"):
        lines.append(InfoLine("IB last error", str(ibkr["last_error"]), "negative"))
    return lines


def pacing_lines(pacing: Any) -> list[InfoLine]:
    if not isinstance(pacing, dict):
        return []
    lines = []
    for rule, budget in sorted(pacing.items()):
        if not isinstance(budget, dict):
            lines.append(InfoLine(f"pacing {rule}", str(budget)))
            continue
        used, limit, window = budget.get("used"), budget.get("limit"), budget.get("window_s")
        per = f" per {window:g} s" if isinstance(window, int | float) else ""
        text = f"{used} of {limit}{per}"
        if isinstance(used, int | float) and isinstance(limit, int | float) and limit > 0:
            tone = "negative" if used >= limit else ""
            lines.append(InfoLine(f"pacing {rule}", text, tone, float(used), float(limit)))
        else:
            lines.append(InfoLine(f"pacing {rule}", text))
    return lines


def info_lines(info: dict[str, Any]) -> list[InfoLine]:
    lines = ib_lines(info.get("ibkr"))
    if "yahoo" in info:
        state = str(info["yahoo"])
        until = info.get("paused_until")
        text = f"{state} until {until}" if state == "paused" and until else state
        lines.append(InfoLine("Yahoo", text, YAHOO_TONES.get(state, "grey-7")))
        budget = info.get("budget")
        if isinstance(budget, dict):
            rate, configured = budget.get("rate_per_s"), budget.get("configured_rate_per_s")
            tone = "warning" if rate != configured else ""
            text = f"{rate} of {configured} requests/s (burst {budget.get('burst')})"
            lines.append(InfoLine("Yahoo budget", text, tone))
    lines += pacing_lines(info.get("pacing"))
    for key, value in sorted(info.items()):
        if key in ("ibkr", "yahoo", "paused_until", "pacing", "budget"):
            continue
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(InfoLine(key.replace("_", " "), shown))
    return lines


def show_lines(lines: list[InfoLine]) -> None:
    for line in lines:
        with ui.row().classes("gap-2 items-center no-wrap"):
            ui.label(line.label).classes("text-caption text-grey-7")
            text = ui.label(line.text).classes("text-caption")
            if line.tone:
                text.classes(f"text-{line.tone}")
            if line.used is not None and line.limit:
                ui.linear_progress(
                    value=min(1.0, line.used / line.limit), show_value=False
                ).classes("w-24").props(
                    f"color={'negative' if line.used >= line.limit else 'primary'}"
                )

"""`backfill schedule ...`: a universe's run at every tick of a cron expression.

create (or replace), list, show, pause, resume, trigger, delete: each one call to
/api/v1/schedules, printed as plain lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO
from urllib.parse import quote

from backfill_cli.api_client import ApiClient

PATH = "/api/v1/schedules"


def _path(*parts: str) -> str:
    return "/".join([PATH, *(quote(part, safe="") for part in parts)])


def create(
    client: ApiClient,
    name: str,
    *,
    universe: str,
    cron: str,
    timezone: str,
    mode: str,
    description: str | None,
    out: TextIO,
) -> int:
    body: dict[str, Any] = {
        "name": name,
        "universe": universe,
        "cron": cron,
        "timezone": timezone,
        "mode": mode,
    }
    if description:
        body["description"] = description
    view = client.call("PUT", _path(name), 200, 201, json=body)
    out.write(f"{summary(view)}\n")
    return 0


def show_all(client: ApiClient, out: TextIO) -> int:
    schedules = client.call("GET", PATH, 200)
    if not schedules:
        out.write("no schedules\n")
    for view in schedules:
        out.write(f"{summary(view)}\n")
    return 0


def show(client: ApiClient, name: str, out: TextIO) -> int:
    view = client.call("GET", _path(name), 200)
    out.write(f"{summary(view)}\n")
    out.write(f"  {view['explained']}, mode {view['mode']}\n")
    out.write(f"  last tick: {view['last_tick'] or 'none yet'}\n")
    if view["last_run_id"]:
        out.write(f"  last run:  {view['last_run_id']} at {view['last_fired_at']}\n")
    if view["last_error"]:
        out.write(f"  error:     {view['last_error']}\n")
    if view.get("description"):
        out.write(f"  {view['description']}\n")
    return 0


def pause(client: ApiClient, name: str, out: TextIO) -> int:
    view = client.call("POST", _path(name, "pause"), 200)
    out.write(f"{summary(view)}\n")
    return 0


def resume(client: ApiClient, name: str, out: TextIO) -> int:
    view = client.call("POST", _path(name, "resume"), 200)
    out.write(f"{summary(view)}\n")
    return 0


def trigger(client: ApiClient, name: str, out: TextIO) -> int:
    answer = client.call("POST", _path(name, "trigger"), 202)
    out.write(
        f"run {answer['run_id']} of universe {answer['universe']}: "
        f"{answer['created']} jobs submitted (follow it: backfill universe status "
        f"{answer['universe']} {answer['run_id']})\n"
    )
    return 0


def delete(client: ApiClient, name: str, out: TextIO) -> int:
    client.call("DELETE", _path(name), 204)
    out.write(f"schedule {name} deleted (the runs it made stay)\n")
    return 0


def summary(view: Mapping[str, Any]) -> str:
    when = "paused" if view["paused"] else f"next {view['next_tick'] or 'never'}"
    return (
        f"{view['name']}  universe {view['universe']}  '{view['cron']}' {view['timezone']}"
        f"  {view['mode']}  {when}"
    )

"""`backfill universe ...`: named lists of instruments, submitted as one run of jobs.

create (or replace), list, show, delete, run (submit and follow), status, cancel: each one call
to /api/v1/universes, printed as plain lines.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO
from urllib.parse import quote

from backfill_cli.api_client import ApiClient

PATH = "/api/v1/universes"
FOLLOW_INTERVAL_S = 1.0


def _path(*parts: str) -> str:
    return "/".join([PATH, *(quote(part, safe="") for part in parts)])


def create(
    client: ApiClient,
    name: str,
    *,
    source: str,
    symbols: Sequence[str],
    bar_sizes: Sequence[str],
    start: str,
    end: str | None,
    options: Mapping[str, object],
    description: str | None,
    out: TextIO,
) -> int:
    body: dict[str, Any] = {
        "name": name,
        "source": source,
        "symbols": list(symbols),
        "bar_sizes": list(bar_sizes),
        "start": start,
        "options": dict(options),
    }
    if end:
        body["end"] = end
    if description:
        body["description"] = description
    client.call("PUT", _path(name), 200, 201, json=body)
    series = len(dict.fromkeys(symbols)) * len(dict.fromkeys(bar_sizes))
    out.write(f"universe {name}: {source}, {series} series (one job each per run)\n")
    return 0


def show_all(client: ApiClient, out: TextIO) -> int:
    universes = client.call("GET", PATH, 200)
    if not universes:
        out.write("no universes\n")
    for u in universes:
        out.write(f"{_summary(u)}\n")
    return 0


def show(client: ApiClient, name: str, out: TextIO) -> int:
    u = client.call("GET", _path(name), 200)
    out.write(f"{_summary(u)}\n")
    out.write(f"  symbols: {' '.join(u['symbols'])}\n")
    if u.get("options"):
        out.write(f"  options: {u['options']}\n")
    if u.get("description"):
        out.write(f"  {u['description']}\n")
    for run in client.call("GET", _path(name, "runs"), 200):
        out.write(f"  run {run['run_id']}  {run['submitted_at']}  {run['jobs']} jobs\n")
    return 0


def delete(client: ApiClient, name: str, out: TextIO) -> int:
    client.call("DELETE", _path(name), 204)
    out.write(f"universe {name} deleted (its jobs and bars stay)\n")
    return 0


def run(
    client: ApiClient,
    name: str,
    run_id: str | None,
    *,
    follow: bool,
    out: TextIO,
    err: TextIO,
    mode: str = "full",
) -> int:
    body: dict[str, str] = {} if run_id is None else {"run_id": run_id}
    if mode != "full":
        body["mode"] = mode
    answer = client.call("POST", _path(name, "runs"), 202, json=body)
    out.write(
        f"run {answer['run_id']} of {name}: {answer['created']} jobs submitted"
        f", {answer['replayed']} already submitted by this run\n"
    )
    if not follow:
        return 0
    return _follow(client, name, answer["run_id"], out, err)


def _follow(client: ApiClient, name: str, run_id: str, out: TextIO, err: TextIO) -> int:
    last = ""
    while True:
        view = client.call("GET", _path(name, "runs", run_id), 200)
        line = progress_line(view)
        if line != last:
            err.write(line + "\n")
            last = line
        if view["finished"]:
            break
        time.sleep(FOLLOW_INTERVAL_S)
    out.write(line + "\n")
    return 0 if set(view["by_status"]) == {"succeeded"} else 1


def status(client: ApiClient, name: str, run_id: str, out: TextIO) -> int:
    view = client.call("GET", _path(name, "runs", run_id), 200)
    out.write(progress_line(view) + "\n")
    for job in view["jobs"]:
        p = job["progress"]
        out.write(
            f"  {job['symbol']:<10} {job['bar_size']:<4} {job['status']:<10}"
            f" {p['chunks_done']}/{p['chunks_total']} chunks  {p['bars_stored']:,} bars"
            f"  job {job['job_id']}\n"
        )
    return 0


def cancel(client: ApiClient, name: str, run_id: str, out: TextIO) -> int:
    answer = client.call("POST", _path(name, "runs", run_id, "cancel"), 202)
    out.write(
        f"run {run_id} of {name}: {answer['cancelled']} cancelled, {answer['cancelling']}"
        f" stopping between chunks, {answer['already_ended']} had already ended\n"
    )
    return 0


def progress_line(view: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(view["by_status"].items()))
    return (
        f"{view['universe']} run {view['run_id']}: {view['percent']:.0f}%"
        f"  {view['jobs_total']} jobs ({counts})  {view['bars_stored']:,} bars"
    )


def _summary(u: Mapping[str, Any]) -> str:
    return (
        f"{u['name']}  {u['source']}  {len(u['symbols'])} symbols x {','.join(u['bar_sizes'])}"
        f"  {u['start'][:10]} to {(u.get('end') or 'now (open)')[:10]}"
    )

"""Chaos: 1,000 malformed entries on `cmd.sim`, interleaved with 50 valid commands.

Random bytes, wrong schemas, wrong types, unknown types, flat fields, broken envelopes and huge
payloads (100 kB to 1 MB). Every malformed entry lands in `dlq` with a reason, every valid job
succeeds with exact bars, and every worker keeps consuming.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from backfill_bus.codec import Fields
from tests.chaos.harness import (
    BARS_PER_DAY,
    Cluster,
    ClusterConfig,
    outcome,
    running_cluster,
    text_of,
    weekdays_end,
)

pytestmark = [pytest.mark.chaos, pytest.mark.postgres, pytest.mark.timeout(240)]

CONFIG = ClusterConfig(workers=3, claim_idle_ms=2500, claim_interval_ms=250)
MALFORMED = 1000
HUGE = 40  # of the malformed entries, payloads of 100 kB to 1 MB
VALID = 50
VALID_CHUNKS = 2
START = date(2024, 1, 1)
END = weekdays_end(START, VALID_CHUNKS)

BASE = {
    "type": "collect_bars",
    "source": "sim",
    "symbol": "IBM",
    "bar_size": "1m",
    "start": START.isoformat(),
    "end": END.isoformat(),
}


def _command(**changes: Any) -> dict[str, Any]:
    body = {**BASE, "job_id": f"junk-{random.getrandbits(40):x}", **changes}
    return {k: v for k, v in body.items() if v is not ...}


def _data(value: Any) -> Fields:
    return {"__data__": value if isinstance(value, bytes) else json.dumps(value).encode()}


def _malformed(rng: random.Random, kind: str) -> Fields:
    """One entry of a kind; none of them is a valid command (each is checked to be refused)."""
    if kind == "random bytes":
        return _data(rng.randbytes(rng.randint(1, 2048)))
    if kind == "huge random bytes":
        return _data(rng.randbytes(rng.randint(100_000, 1_000_000)))
    if kind == "huge json":
        size = rng.randint(100_000, 1_000_000)
        choice = rng.randrange(3)
        if choice == 0:
            return _data(_command(symbol="A" * size))
        if choice == 1:
            return _data(_command(options={f"k{i}": i for i in range(size // 12)}))
        return _data([_command() for _ in range(size // 200)])
    if kind == "huge flat fields":
        return {"type": "collect_bars", "blob": rng.randbytes(rng.randint(100_000, 1_000_000))}
    if kind == "wrong schema":
        return _data(
            rng.choice(
                [
                    {},
                    [],
                    [1, 2, 3],
                    42,
                    "collect_bars",
                    None,
                    True,
                    {"type": "collect_bars"},
                    _command(symbol=...),
                    _command(job_id=...),
                    _command(start=..., end=...),
                    {"command": _command()},
                ]
            )
        )
    if kind == "wrong types":
        return _data(
            rng.choice(
                [
                    _command(symbol=123),
                    _command(bar_size=5),
                    _command(bar_size="7m"),
                    _command(start="yesterday"),
                    _command(end=[2024, 2, 1]),
                    _command(options="fast"),
                    _command(options={"latency_ms": "slow"}),
                    _command(options={"latency_ms": -1}),
                    _command(options={"unknown_option": 1}),
                    _command(job_id=None),
                    _command(job_id=""),
                    _command(job_id="x" * 65),
                    _command(attempt="two"),
                    _command(attempt=0),
                    _command(time_limit_s=-5),
                    _command(symbol="has space"),
                    _command(end="2023-01-01"),
                    _command(source="nasdaq"),
                    {"type": "cancel_job", "job_id": ""},
                    {"type": "cancel_job", "job_id": 17, "reason": ["no"]},
                ]
            )
        )
    if kind == "unknown type":
        return _data(
            rng.choice(
                [
                    _command(type="delete_all"),
                    _command(type="COLLECT_BARS"),
                    _command(type=7),
                    _command(type=None),
                    _command(type=...),
                    {"type": "cancel_all"},
                ]
            )
        )
    if kind == "not utf-8 json":
        return _data(b'{"type": "collect_bars", "symbol": "\xff\xfe"}')
    if kind == "flat fields":
        return rng.choice(
            [
                {"type": "collect_bars", "symbol": "IBM"},
                {"foo": "bar"},
                {b"\xff\xfe": b"\x00\x01"},
                {"__data__": b"", "extra": b"1"},
            ]
        )
    if kind == "broken envelope":
        return _data(
            rng.choice(
                [
                    {"data": 5, "headers": "x"},
                    {"data": "not json", "headers": {}},
                    {"data": json.dumps(_command(job_id="")), "headers": {"content-type": 7}},
                    {"data": None},
                ]
            )
        )
    if kind == "wrong source":
        return _data(_command(source="yahoo"))
    raise AssertionError(kind)


SMALL_KINDS = [
    "random bytes",
    "wrong schema",
    "wrong types",
    "unknown type",
    "not utf-8 json",
    "flat fields",
    "broken envelope",
    "wrong source",
]
HUGE_KINDS = ["huge random bytes", "huge json", "huge flat fields"]


def _entries(rng: random.Random) -> list[tuple[str, str, Fields]]:
    """(kind, job id or "", fields) in a shuffled order: 1,000 malformed, 50 valid."""
    kinds = [rng.choice(HUGE_KINDS) for _ in range(HUGE)]
    kinds += [SMALL_KINDS[i % len(SMALL_KINDS)] for i in range(MALFORMED - HUGE)]
    entries: list[tuple[str, str, Fields]] = [(kind, "", _malformed(rng, kind)) for kind in kinds]
    for number in range(VALID):
        job_id = f"chaos-valid-{number:02d}-{rng.getrandbits(32):08x}"
        body = {**BASE, "job_id": job_id, "symbol": f"V{number:02d}"}
        entries.append(("valid", job_id, _data(body)))
    rng.shuffle(entries)
    return entries


async def _publish(cluster: Cluster, entries: list[tuple[str, str, Fields]]) -> list[str]:
    """XADD every entry in order, pipelined in batches of a few MB; returns their ids."""
    ids: list[str] = []
    batch: list[Fields] = []
    size = 0

    async def flush() -> None:
        nonlocal batch, size
        async with cluster.redis.pipeline(transaction=False) as pipe:
            for fields in batch:
                pipe.xadd(cluster.command_stream, fields)
            ids.extend(text_of(i) for i in await pipe.execute())
        batch, size = [], 0

    for _, _, fields in entries:
        batch.append(fields)
        size += sum(len(v) if isinstance(v, bytes | str) else 8 for v in fields.values())
        if size > 4_000_000 or len(batch) >= 100:
            await flush()
    if batch:
        await flush()
    return ids


async def test_malformed_entries_go_to_the_dlq_and_valid_jobs_run(
    tmp_path: Path,
    chaos_database_url: str,
    figures: Callable[[str], dict[str, Any]],
    artifacts_dir: Path,
    chaos_seed: int,
) -> None:
    fig = figures("malformed_input")
    rng = random.Random(chaos_seed)
    random.seed(chaos_seed)  # the junk job ids of _command
    entries = _entries(rng)
    fig.update(
        seed=chaos_seed,
        malformed=MALFORMED,
        huge_payloads=HUGE,
        jobs=VALID,
        chunks_per_job=VALID_CHUNKS,
        workers=CONFIG.workers,
        kinds=dict(Counter(kind for kind, _, _ in entries)),
        bytes_published=sum(
            len(v) if isinstance(v, bytes | str) else 0
            for _, _, fields in entries
            for v in fields.values()
        ),
    )
    with outcome(fig):
        async with running_cluster(
            tmp_path, chaos_database_url, CONFIG, artifacts_dir / "logs" / "malformed_input"
        ) as cluster:
            started = time.monotonic()
            ids = await _publish(cluster, entries)
            fig["publish_s"] = round(time.monotonic() - started, 2)
            malformed = {i: kind for i, (kind, job, _) in zip(ids, entries, strict=True) if not job}
            valid = {job: i for i, (_, job, _) in zip(ids, entries, strict=True) if job}
            fields_of = {i: fields for i, (_, _, fields) in zip(ids, entries, strict=True)}

            statuses = await cluster.wait_terminal(valid, timeout=120)
            fig["jobs_succeeded"] = sum(s == "succeeded" for s in statuses.values())

            deadline = time.monotonic() + 60
            letters: dict[str, dict[bytes, bytes]] = {}
            while time.monotonic() < deadline:
                letters = {
                    text_of(f[b"entry_id"]): f
                    for _, f in await cluster.dlq()
                    if text_of(f.get(b"stream", b"")) == cluster.command_stream
                }
                if set(malformed) <= set(letters):
                    break
                await asyncio.sleep(0.25)
            fig["drain_s"] = round(time.monotonic() - started, 2)
            fig["malformed_dead_lettered"] = len(set(malformed) & set(letters))
            missing = sorted(set(malformed) - set(letters))
            fig["malformed_missing_from_dlq"] = {i: malformed[i] for i in missing[:20]}
            empty_reason = [i for i in malformed if i in letters and not letters[i].get(b"reason")]
            fig["dlq_reason_by_kind"] = _sample(malformed, letters)
            wrongly_dead = sorted(valid[j] for j in valid if valid[j] in letters)
            payload_changed = [
                i
                for i in malformed
                if i in letters
                and isinstance(fields_of[i].get("__data__"), bytes)
                and fields_of[i]["__data__"] != letters[i].get(b"payload")
            ]

            by_symbol = await cluster.bars_by_symbol()
            duplicates = await cluster.duplicate_bars()
            expected = VALID_CHUNKS * BARS_PER_DAY
            fig["bars_expected"] = expected * VALID
            fig["bars_stored"] = sum(by_symbol.get(f"V{n:02d}", 0) for n in range(VALID))
            fig["duplicates"] = len(duplicates)

            failed = {j: s for j, s in statuses.items() if s != "succeeded"}
            assert not failed, failed
            assert not missing, f"{len(missing)} malformed entries not in the dlq: {missing[:10]}"
            assert not empty_reason, f"dead letters without a reason: {empty_reason[:10]}"
            assert not wrongly_dead, f"valid commands dead-lettered: {wrongly_dead}"
            assert not payload_changed, f"payload not kept as sent: {payload_changed[:10]}"
            assert not duplicates, duplicates
            wrong = {s: c for s, c in by_symbol.items() if c != expected}
            assert not wrong, wrong
            assert fig["bars_stored"] == fig["bars_expected"]
            pending: Any = await cluster.redis.xpending(
                cluster.command_stream, cluster.command_group
            )
            fig["commands_pending_at_end"] = int(pending["pending"])
            assert pending["pending"] == 0, await cluster.held_entries()
            fig["liveness"] = await cluster.assert_alive()


def _sample(malformed: dict[str, str], letters: dict[str, dict[bytes, bytes]]) -> dict[str, str]:
    """One dead-letter reason per kind of junk, for the report."""
    sample: dict[str, str] = {}
    for entry_id, kind in malformed.items():
        if kind not in sample and entry_id in letters:
            sample[kind] = text_of(letters[entry_id].get(b"reason", b""))[:240]
    return sample

"""Idempotency keys: one job per key, whoever publishes it (API replicas, a raw XADD).

A key is claimed in Redis (`{ns}idem:<key>`) in the same atomic step that records the job and
publishes its command, so a key never names a job that was never published, and two concurrent
submits with one key create exactly one job. The claim keeps a fingerprint of the request: a
repeat with another request under the same key is refused rather than answered with a job that
collects something else (what Stripe and the IETF Idempotency-Key draft do).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from redis.asyncio import Redis

from backfill_bus.names import Names
from backfill_contracts import BarRequest, CollectBars

# Long enough for any client's retries; short enough that keys do not pile up forever.
DEFAULT_IDEMPOTENCY_TTL_S = 7 * 86400

_REQUEST_FIELDS = set(BarRequest.model_fields)


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """What an idempotency key names: a job, and the fingerprint of the request it was for."""

    job_id: str
    fingerprint: str

    def encode(self) -> bytes:
        return json.dumps({"job_id": self.job_id, "fingerprint": self.fingerprint}).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> KeyClaim:
        data = json.loads(raw)
        return cls(job_id=str(data["job_id"]), fingerprint=str(data["fingerprint"]))


class IdempotencyConflictError(Exception):
    """Raised when an idempotency key already names a job that was submitted with another request.

    Use a new key for a new request; repeat the first request unchanged to get its job back.
    """

    def __init__(self, key: str, job_id: str) -> None:
        self.key = key
        self.job_id = job_id
        super().__init__(
            f"idempotency key {key!r} was first used with a different request (job {job_id}); "
            "use a new key for a new request"
        )


def fingerprint(request: BarRequest) -> str:
    """A hash of what the request collects, after validation: `2024-01-01` and
    `2024-01-01T00:00:00Z` are the same request, and so are omitted and default options."""
    canonical = BarRequest.model_validate(request.model_dump(include=_REQUEST_FIELDS))
    return hashlib.sha256(canonical.model_dump_json().encode()).hexdigest()


def command_fingerprint(command: CollectBars) -> str:
    return fingerprint(BarRequest.model_validate(command.model_dump(include=_REQUEST_FIELDS)))


def idempotency_key_name(names: Names, key: str) -> str:
    return f"{names.namespace}idem:{key}"


async def claim_for_command(
    redis: Redis, names: Names, command: CollectBars, ttl_s: int
) -> KeyClaim:
    """Claim the command's key for its job unless it is taken; returns the claim that holds.

    Used by a worker taking a command published straight onto a stream: if the returned claim
    names another job, this command is a repeat and must not run.
    """
    assert command.idempotency_key is not None
    key = idempotency_key_name(names, command.idempotency_key)
    mine = KeyClaim(command.job_id, command_fingerprint(command))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(key, mine.encode(), nx=True, ex=ttl_s)
        pipe.get(key)
        _, held = await pipe.execute()
    return KeyClaim.decode(held)

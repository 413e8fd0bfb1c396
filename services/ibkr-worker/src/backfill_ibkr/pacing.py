"""IB's historical-data pacing rules, kept by a governor in Redis shared by every replica.

The budget is per IB login (SOURCES.md): no identical request within 15 s; fewer than 6 for one
contract + exchange + whatToShow within 2 s; at most 60 in 10 minutes; BID_ASK counts twice;
at most 50 open. The rules are data: a deployment may replace them (say, to lift the 10-minute
rule for bars of 1 minute and longer, as IB says it has), and `scale` shrinks every window for
tests and benchmarks.

How a slot is found: every applicable rule keeps the times of the requests it counts in a
sorted set. A request takes the earliest time at which each rule still has room in the window
ending there, and no earlier than the last reservation of any of its rules, so reservations
are in time order and only the window ending at the new one needs checking. One Lua script does
the reading and the reserving, so replicas never race each other for the same slot. A margin
on every window absorbs the delay between a slot's time and the request reaching the gateway.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from backfill_contracts import BarSize

Scope = Literal["login", "contract", "request"]


@dataclass(frozen=True, slots=True)
class PacingRule:
    name: str
    window_s: float
    limit: int  # requests allowed in any window (a BID_ASK request counts `bid_ask_weight`)
    scope: Scope  # what is counted together: the whole login, a contract, identical requests
    max_bar_s: float | None = None  # applies to bar sizes up to this many seconds (None: all)
    bid_ask_weight: int = 2

    def applies_to(self, bar_size: BarSize) -> bool:
        if self.max_bar_s is None:
            return True
        duration = bar_size.duration
        return duration is not None and duration.total_seconds() <= self.max_bar_s


DEFAULT_RULES: tuple[PacingRule, ...] = (
    PacingRule("identical request", window_s=15, limit=1, scope="request", bid_ask_weight=1),
    PacingRule("same contract", window_s=2, limit=5, scope="contract"),
    PacingRule("login", window_s=600, limit=60, scope="login"),
)


def parse_rules(raw: str) -> tuple[PacingRule, ...]:
    """`BACKFILL_IBKR_PACING_RULES`: a JSON list of rules, or empty for IB's defaults."""
    if not raw.strip():
        return DEFAULT_RULES
    try:
        items = json.loads(raw)
        rules = tuple(PacingRule(**item) for item in items)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "BACKFILL_IBKR_PACING_RULES is a JSON list of "
            '{"name", "window_s", "limit", "scope": "login"|"contract"|"request", '
            f'"max_bar_s"?, "bid_ask_weight"?}}: {error}'
        ) from error
    for rule in rules:
        if rule.scope not in ("login", "contract", "request") or rule.limit < 1:
            raise ValueError(f"pacing rule {rule.name!r}: bad scope or limit")
    return rules


@dataclass(frozen=True, slots=True)
class PacedRequest:
    """What the rules need to know of one historical request."""

    contract_key: str  # conId + exchange + whatToShow
    identity: str  # everything that makes two requests identical
    bar_size: BarSize
    bid_ask: bool


@dataclass(frozen=True, slots=True)
class Slot:
    at: float  # epoch seconds at which the request may be sent
    binding_rule: str | None  # the rule that made it wait, if any
    members: tuple[tuple[str, str], ...]  # (key, member) pairs, to give the slot back


# KEYS: one sorted set per applicable rule. ARGV: now_ms, id, then per rule: window_ms, limit,
# weight. Returns {slot_ms, index of the rule whose window made it wait (0: none), then each
# rule's count in its window ending now}.
_RESERVE = """
local now = tonumber(ARGV[1])
local id = ARGV[2]
local at = now
local binding = 0
local bound = now
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local window = tonumber(ARGV[base + 1])
  local limit = tonumber(ARGV[base + 2])
  local weight = tonumber(ARGV[base + 3])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - window))
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  if #last > 0 then at = math.max(at, tonumber(last[2])) end
  local n = redis.call('ZCARD', key)
  local keep = limit - weight  -- entries that may stay in the window beside this request
  if n > keep then
    local old = redis.call('ZRANGE', key, n - keep - 1, n - keep - 1, 'WITHSCORES')
    local own = tonumber(old[2]) + window  -- when this rule's window has room again
    if own > bound then
      bound = own
      binding = i
    end
  end
end
at = math.max(at, bound)
for i, key in ipairs(KEYS) do
  local base = 2 + (i - 1) * 3
  local window = tonumber(ARGV[base + 1])
  local weight = tonumber(ARGV[base + 3])
  for w = 1, weight do redis.call('ZADD', key, at, id .. ':' .. w) end
  redis.call('PEXPIRE', key, math.ceil(at - now + 2 * window))
end
local reply = {at, binding}
for i, key in ipairs(KEYS) do  -- each rule's use of its window now, for the heartbeat
  reply[#reply + 1] = redis.call('ZCOUNT', key, now - tonumber(ARGV[2 + (i - 1) * 3 + 1]), '+inf')
end
return reply
"""

# KEYS: the open-requests sorted set. ARGV: now_ms, id, expiry_ms, limit. 1 if taken, else 0.
_OPEN = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) - tonumber(ARGV[1]))
return 1
"""


class PacingGovernor:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        rules: Sequence[PacingRule] = DEFAULT_RULES,
        scale: float = 1.0,
        margin_s: float = 0.25,
        max_open: int = 50,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.rules = tuple(rules)
        self.scale = scale
        self.margin_s = margin_s
        self.max_open = max_open
        self.usage: dict[str, dict[str, float]] = {}  # for the heartbeat, as last seen

    def _key(self, rule: PacingRule, request: PacedRequest) -> str:
        scope = {
            "login": "all",
            "contract": request.contract_key,
            "request": hashlib.sha1(request.identity.encode()).hexdigest()[:16],
        }[rule.scope]
        return f"{self.prefix}:{rule.name}:{scope}"

    def window_ms(self, rule: PacingRule) -> int:
        return int((rule.window_s * self.scale + self.margin_s) * 1000)

    async def reserve(self, request: PacedRequest) -> Slot:
        """Take the earliest slot every rule allows; the caller waits until `slot.at`."""
        rules = [rule for rule in self.rules if rule.applies_to(request.bar_size)]
        if not rules:
            return Slot(time.time(), None, ())
        keys = [self._key(rule, request) for rule in rules]
        args: list[Any] = [_now_ms(), uuid.uuid4().hex]
        weights = []
        for rule in rules:
            weight = min(rule.bid_ask_weight if request.bid_ask else 1, rule.limit)
            weights.append(weight)
            args += [self.window_ms(rule), rule.limit, weight]
        at_ms, binding, *used = await self.redis.eval(_RESERVE, len(keys), *keys, *args)
        members = tuple(
            (key, f"{args[1]}:{w}")
            for key, weight in zip(keys, weights, strict=True)
            for w in range(1, weight + 1)
        )
        self._note_usage(rules, used)
        binding_rule = rules[int(binding) - 1].name if int(binding) else None
        return Slot(int(at_ms) / 1000, binding_rule, members)

    async def give_back(self, slot: Slot) -> None:
        """A slot not used (the job was cancelled while waiting, or woke up too late)."""
        for key, member in slot.members:
            await self.redis.zrem(key, member)

    async def open_request(self, request_id: str, timeout_s: float) -> bool:
        """Count a request as open until `close_request` (or its timeout); False when 50 are."""
        now = _now_ms()
        taken: Any = await self.redis.eval(
            _OPEN, 1, f"{self.prefix}:open", now, request_id, now + int(timeout_s * 1000),
            self.max_open,
        )  # fmt: skip
        return bool(taken)

    async def close_request(self, request_id: str) -> None:
        await self.redis.zrem(f"{self.prefix}:open", request_id)

    def _note_usage(self, rules: list[PacingRule], counts: list[Any]) -> None:
        for rule, used in zip(rules, counts, strict=True):
            if rule.scope != "login":
                continue
            self.usage[rule.name] = {
                "used": int(used),
                "limit": rule.limit,
                "window_s": rule.window_s * self.scale,
            }


def _now_ms() -> int:
    return int(time.time() * 1000)

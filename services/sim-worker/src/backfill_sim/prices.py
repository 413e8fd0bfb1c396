"""Deterministic synthetic prices: the same request always returns the same bars.

Every random number is a hash of what it describes, never drawn from a shared generator, so a bar
does not depend on how a job was chunked or on what was fetched before it:

- A slow, per-symbol price level for every calendar day: a base price from the symbol's hash, moved
  by multi-scale value noise (trends over days to years) plus a little daily jitter.
- Intraday, each trading day's walk starts at that day's level; each bar's log-return is a gaussian
  hashed from (symbol, bar size, ts), and its open is the previous bar's close. A chunk that starts
  mid-day still walks from the open, so clipping never changes a bar. A day is built in numpy
  arrays, its per-bar numbers from a counter hash (splitmix64's mixer over a blake2b key): the
  per-bar blake2b and math calls cost 1.3 ms per day of 1m bars, most of a sim worker's time in
  issue #9's ingest profile, for a source that stands in for a remote one.
- Daily, weekly and monthly bars close at the next bar's level (times hashed noise) and open at the
  previous bar's close, which is recomputed the same way: no cumulative sum from an epoch.
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import numpy.typing as npt

from backfill_contracts import BarBatch, BarSize
from backfill_sim import calendar

_PERSON = b"backfill-sim"
_WORDS = struct.Struct("<4I")
_TWO_32 = 4_294_967_296.0
_TAU = 2.0 * math.pi

# Value-noise octaves of the daily level: (period in days, amplitude in log-price). Long periods
# carry most of the amplitude, like a real chart: years of trend, weeks of swings.
_OCTAVES = ((5, 0.02), (21, 0.05), (89, 0.10), (377, 0.20), (1597, 0.35))
_DAY_JITTER = 0.008  # per-day gaussian on the level, so consecutive days are not smooth
_INTRADAY_DAY_SIGMA = 0.012  # log-return spread of a whole session's walk
# Extra close noise and wick size of the coarse bars.
_COARSE_SIGMA = {BarSize.D1: 0.008, BarSize.W1: 0.015, BarSize.MO1: 0.03}
_COARSE_WICK = {BarSize.D1: 0.015, BarSize.W1: 0.035, BarSize.MO1: 0.07}
_COARSE_TRADING_DAYS = {BarSize.D1: 1, BarSize.W1: 5, BarSize.MO1: 21}


def _hasher(*parts: str) -> hashlib.blake2b:
    """A blake2b state primed with the key; copy it and feed a number to draw for that number.

    Parts are length-prefixed so ("AB", "C") and ("A", "BC") never share a stream.
    """
    key = "".join(f"{len(part)}:{part};" for part in parts).encode()
    return hashlib.blake2b(key, digest_size=16, person=_PERSON)


def _words(hasher: hashlib.blake2b, number: int) -> tuple[int, int, int, int]:
    """Four uniform 32-bit words for `number` under the hasher's key."""
    state = hasher.copy()
    state.update(number.to_bytes(8, "little", signed=True))
    a, b, c, d = _WORDS.unpack(state.digest())
    return a, b, c, d


def _gaussians(a: int, b: int) -> tuple[float, float]:
    """Two independent standard normals from two uniform words (Box-Muller)."""
    radius = math.sqrt(-2.0 * math.log((a + 1) / _TWO_32))  # (a + 1) keeps the log finite
    angle = _TAU * b / _TWO_32
    return radius * math.cos(angle), radius * math.sin(angle)


@dataclass(frozen=True, slots=True)
class _SymbolModel:
    """What is fixed for one symbol: its base price, daily volume and level noise."""

    symbol: str
    base_log_price: float
    daily_volume: float
    level_hasher: hashlib.blake2b = field(repr=False)

    @classmethod
    def of(cls, symbol: str) -> _SymbolModel:
        a, b, _, _ = _words(_hasher("symbol", symbol), 0)
        base_price = 20.0 * 25.0 ** (a / _TWO_32)  # 20..500, log-uniform
        daily_volume = 10.0 ** (5.0 + 2.0 * b / _TWO_32)  # 1e5..1e7 shares a day
        return cls(symbol, math.log(base_price), daily_volume, _hasher("level", symbol))

    def _lattice(self, octave: int, point: int) -> float:
        a, _, _, _ = _words(self.level_hasher, point * 8 + octave)
        return 2.0 * a / _TWO_32 - 1.0

    def level(self, day: date) -> float:
        """The symbol's price level on a calendar day (shared by every bar size)."""
        ordinal = day.toordinal()
        log_price = self.base_log_price
        for octave, (period, amplitude) in enumerate(_OCTAVES):
            point, rest = divmod(ordinal, period)
            t = rest / period
            t = t * t * (3.0 - 2.0 * t)  # smoothstep: no kinks at lattice points
            lo = self._lattice(octave, point)
            hi = self._lattice(octave, point + 1)
            log_price += amplitude * (lo + (hi - lo) * t)
        a, b, _, _ = _words(self.level_hasher, -ordinal - 1)  # negative: apart from lattice keys
        log_price += _DAY_JITTER * _gaussians(a, b)[0]
        return math.exp(log_price)


@dataclass(slots=True)
class _Columns:
    ts: list[int] = field(default_factory=list)
    open: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    volume: list[float] = field(default_factory=list)

    def add(
        self, ts: int, open_: float, high: float, low: float, close: float, volume: float
    ) -> None:
        # Rounding is monotonic, so low <= open, close <= high still holds after it.
        self.ts.append(ts)
        self.open.append(round(open_, 4))
        self.high.append(round(high, 4))
        self.low.append(round(low, 4))
        self.close.append(round(close, 4))
        self.volume.append(volume)

    def extend(self, columns: list[npt.NDArray[np.float64]], ts: npt.NDArray[np.int64]) -> None:
        """Bars in arrays (open, high, low, close, volume), prices rounded as in `add`."""
        open_, high, low, close, volume = columns
        self.ts.extend(ts.tolist())
        self.open.extend(np.round(open_, 4).tolist())
        self.high.extend(np.round(high, 4).tolist())
        self.low.extend(np.round(low, 4).tolist())
        self.close.extend(np.round(close, 4).tolist())
        self.volume.extend(volume.tolist())

    def batch(self) -> BarBatch:
        return BarBatch(
            ts=self.ts,
            open=self.open,
            high=self.high,
            low=self.low,
            close=self.close,
            volume=self.volume,
        )


def _bar_seconds(bar_size: BarSize) -> int:
    duration = bar_size.duration
    if duration is None:
        raise ValueError(f"{bar_size} has no fixed length")
    return int(duration.total_seconds())


def _session_weight(fraction: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Intraday volume profile: busy at the open and close, quiet at lunch; averages 1."""
    centred = 2.0 * fraction - 1.0
    return (0.6 + 1.6 * centred * centred) / (0.6 + 1.6 / 3.0)


def _intraday_day(
    model: _SymbolModel, bar_size: BarSize, day: date, lo: float, hi: float, out: _Columns
) -> None:
    """Walk one whole session from the day's level and keep the bars with lo <= ts < hi."""
    timestamps = calendar.session_bar_timestamps(bar_size, day)
    if not timestamps or timestamps[0] >= hi or timestamps[-1] < lo:
        return
    opens, closes = calendar.session_bounds(day)
    step = min(_bar_seconds(bar_size), calendar.SESSION_SECONDS)  # an 8h bar still lasts 6.5h
    sigma = _INTRADAY_DAY_SIGMA * math.sqrt(step / calendar.SESSION_SECONDS)
    wick = 0.75 * sigma
    volume_per_second = model.daily_volume / calendar.SESSION_SECONDS
    ts = np.array(timestamps, dtype=np.int64)
    a, b, c, d = _bar_words(_bar_seed(model.symbol, bar_size.value), ts)
    z_price, z_volume = _gaussian_arrays(a, b)
    # Still walked before `lo`: a clipped chunk must see the same prices as a whole day.
    level = model.level(day)
    close = level * np.exp(np.cumsum(sigma * z_price))
    open_ = np.empty_like(close)
    open_[0] = level
    open_[1:] = close[:-1]
    seconds = np.minimum(step, closes - ts)  # the day's last bar may be shorter
    fraction = (ts + seconds / 2 - opens) / calendar.SESSION_SECONDS
    weight = _session_weight(fraction)
    volume = volume_per_second * seconds * weight * np.exp(0.3 * z_volume)
    high = np.maximum(open_, close) * np.exp(wick * c / _TWO_32)
    low = np.minimum(open_, close) * np.exp(-wick * d / _TWO_32)
    kept = (ts >= lo) & (ts < hi)
    columns = [open_, high, low, close, np.maximum(1.0, np.rint(volume))]
    out.extend([column[kept] for column in columns], ts[kept])


# splitmix64's finalizer: a bijective avalanche of a 64-bit word (numpy's uint64 products wrap).
_MIX = (np.uint64(30), np.uint64(0xBF58476D1CE4E5B9), np.uint64(27), np.uint64(0x94D049BB133111EB))
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LOW_32 = np.uint64(0xFFFFFFFF)


def _mixed(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    shift_1, times_1, shift_2, times_2 = _MIX
    x = (x ^ (x >> shift_1)) * times_1
    x = (x ^ (x >> shift_2)) * times_2
    return x ^ (x >> np.uint64(31))


def _bar_seed(symbol: str, bar_size: str) -> np.uint64:
    digest = _hasher("bar", symbol, bar_size).digest()
    return np.uint64(int.from_bytes(digest[:8], "little"))


def _bar_words(seed: np.uint64, ts: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.float64], ...]:
    """Four uniform 32-bit words per timestamp (as floats) under the seed."""
    counter = ts.astype(np.uint64) * _GOLDEN + seed
    first = _mixed(counter)
    second = _mixed(counter ^ _GOLDEN)
    return tuple(
        (word & _LOW_32).astype(np.float64)
        for word in (first, first >> np.uint64(32), second, second >> np.uint64(32))
    )


def _gaussian_arrays(
    a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """`_gaussians` over arrays of words (Box-Muller)."""
    radius = np.sqrt(-2.0 * np.log((a + 1) / _TWO_32))
    angle = _TAU * b / _TWO_32
    return radius * np.cos(angle), radius * np.sin(angle)


def _coarse_close(
    model: _SymbolModel, bar_size: BarSize, hasher: hashlib.blake2b, day: date
) -> tuple[float, float, tuple[int, int, int, int]]:
    """The close of the coarse bar stamped `day`: the next bar's level times hashed noise."""
    words = _words(hasher, calendar.day_epoch(day))
    z_price, z_volume = _gaussians(words[0], words[1])
    close = model.level(calendar.next_bar_day(bar_size, day))
    return close * math.exp(_COARSE_SIGMA[bar_size] * z_price), z_volume, words


def _coarse_bars(
    model: _SymbolModel, bar_size: BarSize, start: datetime, end: datetime, out: _Columns
) -> None:
    hasher = _hasher("bar", model.symbol, bar_size.value)
    wick = _COARSE_WICK[bar_size]
    volume_scale = model.daily_volume * _COARSE_TRADING_DAYS[bar_size]
    days = calendar.coarse_bar_days(bar_size, start, end)
    if not days:
        return
    previous = calendar.previous_bar_day(bar_size, days[0])
    open_ = _coarse_close(model, bar_size, hasher, previous)[0]
    for day in days:
        close, z_volume, (_, _, c, d) = _coarse_close(model, bar_size, hasher, day)
        volume = volume_scale * math.exp(0.25 * z_volume)
        out.add(
            calendar.day_epoch(day),
            open_,
            max(open_, close) * math.exp(wick * c / _TWO_32),
            min(open_, close) * math.exp(-wick * d / _TWO_32),
            close,
            float(max(1, round(volume))),
        )
        open_ = close


def sim_bars(symbol: str, bar_size: BarSize, start: datetime, end: datetime) -> BarBatch:
    """The sim source's bars for one symbol with start <= ts < end (aware datetimes)."""
    model = _SymbolModel.of(symbol)
    out = _Columns()
    if bar_size.is_intraday:
        lo, hi = start.timestamp(), end.timestamp()
        for day in calendar.trading_days(start, end):
            _intraday_day(model, bar_size, day, lo, hi, out)
    else:
        _coarse_bars(model, bar_size, start, end, out)
    return out.batch()

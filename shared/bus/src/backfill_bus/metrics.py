"""Prometheus metrics every service shares: a registry per process part, stream figures read
from Redis at scrape time, and a small `/metrics` server for the processes without a web app.

Each part (the API, the projector, a worker) owns its own `CollectorRegistry` rather than the
process-wide default, so parts folded into one process (the tests, `Stack`) never mix their
figures. Figures that live elsewhere (Redis's stream state, the projections) are read by
collectors with an async `refresh()`, awaited just before the registry is rendered, and cached
for a moment so a burst of scrapes costs one round of reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.asyncio import Redis

from backfill_bus.stream_stats import StreamInfo, stream_info

log = logging.getLogger(__name__)

# Scrapes come every 15 s or so; several Prometheus replicas (or a person with curl) within
# this window share one round of reads.
SCRAPE_CACHE_S = 2.0
_REQUEST_HEAD_LIMIT = 8192
_REQUEST_TIMEOUT_S = 5.0


class MetricsSettings(BaseSettings):
    """Where a process without a web app serves `/metrics`; port 0 serves nothing."""

    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    # Loopback by default; containers set 0.0.0.0 so Prometheus can reach them.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)


class MetricsPortInUseError(Exception):
    """Raised at startup when the metrics port is taken (or the address is not ours to bind).

    Stop what holds it, or set BACKFILL_METRICS_PORT (0 turns the server off).
    """


class Refreshes(Protocol):
    async def refresh(self) -> None:
        """Read the figures this collector exposes (from Redis, a database) before a scrape."""
        ...


def new_registry() -> CollectorRegistry:
    """A registry with the process, platform and GC figures prometheus_client knows."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        # The default collectors are stateless views of this process: shared safely.
        registry.register(collector)
    return registry


def dead_letters(registry: CollectorRegistry) -> Counter:
    """One definition for every process that dead-letters (workers, projector): one series."""
    return Counter(
        "backfill_dead_letters",
        "Entries this process sent to the dlq, by the stream they came from",
        ["stream"],
        registry=registry,
    )


def refresh_errors(registry: CollectorRegistry) -> Counter:
    return Counter(
        "backfill_metrics_refresh_errors",
        "Scrapes whose figures could not be read (Redis or the database away), by what",
        ["what"],
        registry=registry,
    )


class Cached:
    """Runs `read` at most once per `ttl_s`; concurrent scrapes wait for the same read.

    A failed read is logged and counted, and the figures are left out of the scrape (stale
    numbers shown as current would hide an outage).
    """

    def __init__(
        self, what: str, read: Callable[[], Awaitable[None]], errors: Counter, ttl_s: float
    ) -> None:
        self.what = what
        self.read = read
        self.errors = errors
        self.ttl_s = ttl_s
        self.fresh = False
        self._at = -float("inf")
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self.ttl_s:
                return
            try:
                await self.read()
            except Exception as error:
                self.fresh = False
                self.errors.labels(self.what).inc()
                # One line, no traceback: an outage would print one per scrape otherwise.
                log.warning(
                    "metrics: reading %s failed: %s: %s", self.what, type(error).__name__, error
                )
            else:
                self.fresh = True
            self._at = time.monotonic()


class StreamsCollector(Collector):
    """Length of each stream, and pending, lag and consumers of each of its groups."""

    def __init__(
        self,
        redis: Redis,
        streams: Sequence[tuple[str, str]],
        registry: CollectorRegistry,
        errors: Counter,
        ttl_s: float = SCRAPE_CACHE_S,
    ) -> None:
        self.redis = redis
        self.streams = list(streams)
        self.infos: list[StreamInfo] = []
        self.cache = Cached("streams", self._read, errors, ttl_s)
        registry.register(self)

    async def refresh(self) -> None:
        await self.cache.refresh()

    async def _read(self) -> None:
        self.infos = [await stream_info(self.redis, name, role) for name, role in self.streams]

    def describe(self) -> Iterable[Metric]:
        return list(_stream_families())

    def collect(self) -> Iterable[Metric]:
        length, pending, lag, consumers = _stream_families()
        if self.cache.fresh:
            for info in self.infos:
                # A stream nobody wrote to yet has length 0: shown, so a panel has a line.
                length.add_metric([info.name], info.length)
                for group in info.groups:
                    labels = [info.name, group.name]
                    pending.add_metric(labels, group.pending)
                    consumers.add_metric(labels, group.consumers)
                    if group.lag is not None:
                        lag.add_metric(labels, group.lag)
        return [length, pending, lag, consumers]


def _stream_families() -> tuple[
    GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily
]:
    group = ["stream", "group"]
    return (
        GaugeMetricFamily("backfill_stream_length", "Entries in the stream", labels=["stream"]),
        GaugeMetricFamily(
            "backfill_stream_group_pending",
            "Entries delivered to the group's consumers and not yet acknowledged",
            labels=group,
        ),
        GaugeMetricFamily(
            "backfill_stream_group_lag",
            "Entries in the stream the group has not been delivered yet",
            labels=group,
        ),
        GaugeMetricFamily(
            "backfill_stream_group_consumers", "Consumers in the group", labels=group
        ),
    )


async def render(registry: CollectorRegistry, refreshers: Sequence[Refreshes]) -> bytes:
    """The text exposition of `registry`, after its scrape-time figures are read."""
    for refresher in refreshers:
        await refresher.refresh()
    return generate_latest(registry)


class MetricsServer:
    """`GET /metrics` on an asyncio server in the service's own loop.

    In the loop rather than prometheus_client's thread server, so the scrape-time reads use the
    service's async Redis and database clients. It speaks just enough HTTP/1.1 for Prometheus
    and curl: one request per connection.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        refreshers: Sequence[Refreshes],
        host: str,
        port: int,
    ) -> None:
        self.registry = registry
        self.refreshers = list(refreshers)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as error:
            raise MetricsPortInUseError(
                f"cannot serve metrics on {self.host}:{self.port}: {error.strerror or error}; "
                "stop what uses that port or set BACKFILL_METRICS_PORT (0 turns metrics off)"
            ) from None
        if self.port == 0:  # an ephemeral port (tests): say which one was taken
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics at %s", self.url)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_REQUEST_TIMEOUT_S):
                head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > _REQUEST_HEAD_LIMIT:
                await _answer(writer, 431, b"request head too large\n")
                return
            method, _, rest = head.decode("latin-1").partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            if path not in ("/metrics", "/"):
                await _answer(writer, 404, b"not found: metrics are at /metrics\n")
            elif method not in ("GET", "HEAD"):
                await _answer(writer, 405, b"only GET /metrics\n", allow="GET, HEAD")
            else:
                body = await render(self.registry, self.refreshers)
                await _answer(writer, 200, body, head_only=method == "HEAD")
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a client that sent no request: nothing to answer
        except ConnectionError:
            pass  # the client left
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Too Large"}


async def _answer(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    *,
    head_only: bool = False,
    allow: str | None = None,
) -> None:
    content_type = CONTENT_TYPE_LATEST if status == 200 else "text/plain; charset=utf-8"
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if allow:
        lines.append(f"Allow: {allow}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    if not head_only:
        writer.write(body)
    await writer.drain()

"""The API's `/metrics`, its request metrics, and the correlation id of every request.

Middleware here is plain ASGI (not BaseHTTPMiddleware): the correlation id is a context
variable, and it must be set in the same task that runs the route for log lines to carry it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backfill_bus import Names
from backfill_bus.logs import correlation_id_var
from backfill_bus.metrics import StreamsCollector, new_registry, refresh_errors, render
from backfill_bus.stream_stats import watched_streams
from backfill_readmodel.metrics import JobsCollector

CORRELATION_HEADER = "X-Correlation-ID"
_CORRELATION_KEY = CORRELATION_HEADER.lower().encode("latin-1")
# What fits on a command (CollectBars.correlation_id) and in a FastStream header: printable
# ASCII without spaces, at most 200 characters.
_VALID_CORRELATION = re.compile(r"[\x21-\x7e]{1,200}")
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ApiMetrics:
    """The API's registry: request counts and times, and, once the clients exist, jobs by
    status and source (from the projections) and every stream's backlog (from Redis)."""

    def __init__(self) -> None:
        self.registry = new_registry()
        self.requests = Counter(
            "backfill_api_requests",
            "Requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "backfill_api_request_duration_seconds",
            "Time to answer a request, by method and route template",
            ["method", "route"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.errors = refresh_errors(self.registry)
        self.scraped: list[StreamsCollector | JobsCollector] = []

    def watch(self, redis: Redis, engine: AsyncEngine, names: Names) -> None:
        """Add the scrape-time figures; called from the lifespan, which builds the clients."""
        for collector in self.scraped:
            self.registry.unregister(collector)
        self.scraped = [
            JobsCollector(engine, self.registry, self.errors),
            StreamsCollector(redis, watched_streams(names), self.registry, self.errors),
        ]

    def router(self) -> APIRouter:
        router = APIRouter(tags=["system"])

        @router.get(
            "/metrics",
            response_class=Response,
            summary="Prometheus metrics (text exposition format)",
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        )
        async def metrics(_request: Request) -> Response:
            body = await render(self.registry, self.scraped)
            return Response(body, media_type=CONTENT_TYPE_LATEST)

        return router


class CorrelationMiddleware:
    """Each request gets a correlation id: the client's `X-Correlation-ID`, or a new one.

    It is set for the request's log lines, put in the request headers (so a route passes a
    generated one on to the job it submits), and echoed in the response. A malformed one is
    refused with 400 rather than dropped: the client would look for it in vain.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        given = [value for key, value in headers if key == _CORRELATION_KEY]
        if given:
            correlation_id = given[0].decode("latin-1")
            if len(given) > 1 or not _VALID_CORRELATION.fullmatch(correlation_id):
                await _refuse(send)
                return
        else:
            correlation_id = uuid.uuid4().hex
            headers.append((_CORRELATION_KEY, correlation_id.encode("latin-1")))
            scope = {**scope, "headers": headers}
        encoded = correlation_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (_CORRELATION_KEY, encoded)]
            await send(message)

        token = correlation_id_var.set(correlation_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            correlation_id_var.reset(token)


async def _refuse(send: Send) -> None:
    body = (
        b'{"detail":"X-Correlation-ID must be one value of 1 to 200 printable ASCII '
        b'characters without spaces"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestMetricsMiddleware:
    """Counts and times each request by its route template (`/api/v1/jobs/{job_id}`), so the
    series stay few whatever ids clients send."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.monotonic()
        status = 500  # an exception before the response started is answered with a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = self._template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(time.monotonic() - began)

    def _template(self, scope: MutableMapping[str, Any]) -> str:
        """The matched route's full template, e.g. `/api/v1/jobs/{job_id}`.

        Since FastAPI 0.137 scope["route"] is the route as declared, without the prefix of
        include_router; the app's route contexts know the full template.
        """
        route = scope.get("route")
        if route is None:
            return "unmatched"
        if id(route) not in self._templates and "app" in scope:
            for context in iter_route_contexts(scope["app"].routes):
                if context.path_format:
                    self._templates.setdefault(id(context.original_route), context.path_format)
        return self._templates.get(id(route), "unmatched")

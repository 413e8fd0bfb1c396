"""Who may call what: bearer tokens with scopes, checked for every route by one dependency.

Scopes are ordered: admin includes submit, which includes read. The scope a route needs comes
from the table below, looked up by the matched route's method and path template, so the route
modules stay free of it. A route missing from the table needs `read` for GET and `admin` for
anything else: a new mutating route is closed until someone decides otherwise.

Tokens come from BACKFILL_API_TOKENS and from Redis (`backfill token create`; see
backfill_bus.tokens). A token is never logged, echoed in an answer, or kept in Redis in clear.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backfill_api.dependencies import get_services
from backfill_api.settings import ApiSettings
from backfill_bus.tokens import (
    SCOPES,
    Scope,
    TokenInfo,
    find_env_token,
    find_token,
    scope_allows,
)

log = logging.getLogger(__name__)

V1 = "/api/v1"
# Probes and scrapers carry no token and these answers carry no data worth protecting.
OPEN_ROUTES = frozenset(
    {("GET", f"{V1}/health"), ("GET", f"{V1}/health/live"), ("GET", "/metrics")}
)
ROUTE_SCOPES: dict[tuple[str, str], Scope] = {
    ("POST", f"{V1}/jobs"): "submit",
    ("POST", f"{V1}/jobs/{{job_id}}/cancel"): "submit",
    ("POST", f"{V1}/jobs/{{job_id}}/retry"): "submit",
    # Defining or deleting a universe is shared configuration: admin (the default).
    ("POST", f"{V1}/universes/{{name}}/runs"): "submit",
    ("POST", f"{V1}/universes/{{name}}/runs/{{run_id}}/cancel"): "submit",
    # A schedule's definition and pausing are configuration (admin); running it now is a submit.
    ("POST", f"{V1}/schedules/{{name}}/trigger"): "submit",
}
# Every method, reads included: webhooks show subscribers' URLs, maintenance deletes history.
ADMIN_PREFIXES = (f"{V1}/webhooks", f"{V1}/maintenance")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCOPE_EXTENSION = "x-backfill-scope"  # in the OpenAPI document: what each operation needs

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="`Authorization: Bearer <token>`; a token from BACKFILL_API_TOKENS or"
    " `backfill token create`, with the scope the operation names (read < submit < admin)",
)
CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def required_scope(method: str, path: str) -> Scope | None:
    """The scope `method path` (a route template) needs; None for the open routes."""
    method = method.upper()
    if (method, path) in OPEN_ROUTES:
        return None
    if any(path == prefix or path.startswith(prefix + "/") for prefix in ADMIN_PREFIXES):
        return "admin"
    return ROUTE_SCOPES.get((method, path), "read" if method in READ_METHODS else "admin")


def bearer_credentials(request: Request) -> HTTPAuthorizationCredentials | None:
    """The request's bearer token, parsed as the `bearer` dependency does, for code outside it."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())


async def refusal_of(request: Request) -> HTTPException | None:
    """The 401/403 this request earns, if any, for handlers that run before the dependency.

    FastAPI validates the body before it runs dependencies, so a request with no token and a
    malformed body would get a 422 that tells a stranger about the schema; asking here first
    keeps the answer "401 first" on every route.
    """
    authorize: Callable[..., Awaitable[TokenInfo | None]] = request.app.state.authorize
    try:
        await authorize(request, bearer_credentials(request))
    except HTTPException as refused:
        return refused
    return None


def _rank(scope: Scope | None) -> int:
    return -1 if scope is None else SCOPES.index(scope)


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="backfill"' + (f', error="{error}"' if error else "")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": challenge}
    )


def authorization(settings: ApiSettings) -> Callable[..., Awaitable[TokenInfo | None]]:
    """The dependency every route runs: the caller's token, checked against the route's scope."""
    env_tokens = settings.env_tokens
    if not env_tokens:
        log.warning(
            "BACKFILL_API_TOKENS is not set: only tokens made with `backfill token create`"
            " are accepted, and every route but the health checks needs one"
        )

    templates: dict[int, list[str]] = {}

    def template_of(request: Request) -> str:
        """The matched route's full path template, e.g. /api/v1/jobs/{job_id}/cancel.

        Since FastAPI 0.137, scope["route"] is the route as declared, without the prefixes of
        include_router; the app's route contexts know the full template.
        """
        route = request.scope.get("route")
        if id(route) not in templates:
            templates.clear()
            for context in iter_route_contexts(request.app.routes):
                if context.path_format:
                    templates.setdefault(id(context.original_route), []).append(context.path_format)
        found = templates.get(id(route), [])
        # One route included under two prefixes: the stricter of its scopes applies.
        return max(found, key=lambda path: _rank(required_scope(request.method, path)), default="?")

    async def authorize(request: Request, credentials: CredentialsDep) -> TokenInfo | None:
        path = template_of(request)
        needed = required_scope(request.method, path)
        if needed is None:
            return None  # a probe with a stale token still gets its answer
        what = f"{request.method} {path}"
        header = request.headers.get("authorization")
        if header is None:
            if needed == "read" and settings.api_open_reads:
                return None
            log.info("refused %s: no token", what)
            raise _unauthorized(
                f"missing bearer token: {what} needs a token with scope {needed};"
                " send `Authorization: Bearer <token>`"
            )
        if credentials is None or not credentials.credentials:
            log.info("refused %s: an Authorization header that is not a bearer token", what)
            raise _unauthorized(
                "the Authorization header is not a bearer token:"
                " send `Authorization: Bearer <token>`",
                "invalid_request",
            )
        token = credentials.credentials
        info = find_env_token(env_tokens, token)
        if info is None:
            services = get_services(request)
            info = await find_token(services.redis, services.commands.names, token)
        if info is None:
            log.info("refused %s: an unknown or revoked token", what)
            raise _unauthorized(
                "unknown or revoked token: check the token sent in `Authorization: Bearer`",
                "invalid_token",
            )
        if not scope_allows(info.scope, needed):
            log.info("refused %s: token %r has scope %s", what, info.name, info.scope)
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token {info.name!r} has scope {info.scope}; {what} needs {needed}",
            )
        return info

    return authorize


def document_security(app: FastAPI) -> None:
    """Show in the OpenAPI document what each operation needs, and no lock on open ones."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI caches it: the edits below run once
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or SCOPE_EXTENSION in operation:
                    continue
                needed = required_scope(method, path)
                operation[SCOPE_EXTENSION] = needed or "none"
                if needed is None:
                    operation.pop("security", None)
                    continue
                responses = operation.setdefault("responses", {})
                responses.setdefault("401", {"description": "no token, or an unknown one"})
                responses.setdefault("403", {"description": f"the token's scope is below {needed}"})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

"""Every operation that changes something refuses the anonymous and the read-only caller.

The operations come from the API's own OpenAPI document, not from a list kept here, so a
route added tomorrow is checked without anyone remembering to add it.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.stack import READ_TOKEN, running_stack

MUTATING = ("post", "put", "patch", "delete")
# Known today; the document may grow, never shrink below these.
KNOWN_MUTATING = {
    ("POST", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs/{job_id}/cancel"),
    ("POST", "/api/v1/jobs/{job_id}/retry"),
    ("POST", "/api/v1/maintenance/cleanup"),
    ("PUT", "/api/v1/universes/{name}"),
    ("DELETE", "/api/v1/universes/{name}"),
    ("POST", "/api/v1/universes/{name}/runs"),
    ("POST", "/api/v1/universes/{name}/runs/{run_id}/cancel"),
}


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        _, *parts = schema["$ref"].split("/")  # "#/components/schemas/Name"
        node: Any = document
        for part in parts:
            node = node[part]
        schema = node
    return schema


def _plausible(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """A value a client could well send: the schema's own example, else its required fields."""
    schema = _resolve(schema, document)
    if schema.get("examples"):
        return schema["examples"][0]
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return _plausible(schema[union][0], document)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {name: _plausible(properties[name], document) for name in schema.get("required", [])}
    if "enum" in schema:
        return schema["enum"][0]
    return {"integer": 1, "number": 1, "boolean": True, "array": []}.get(str(kind), "x1")


def _request(
    method: str, path: str, operation: dict[str, Any], document: dict[str, Any]
) -> dict[str, Any]:
    url = path
    query: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        value = _plausible(parameter.get("schema", {}), document)
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query" and parameter.get("required"):
            query[parameter["name"]] = value
    request: dict[str, Any] = {"method": method.upper(), "url": url, "params": query}
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        request["json"] = _plausible(content["application/json"]["schema"], document)
    return request


def _mutating_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in MUTATING
    ]


async def test_every_mutating_operation_refuses_a_request_without_a_token(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        document = (await stack.api.get("/openapi.json")).json()
        operations = _mutating_operations(document)
        assert {(method, path) for method, path, _ in operations} >= KNOWN_MUTATING
        refused: dict[str, httpx.Response] = {}
        async with stack.client() as anonymous:
            for method, path, operation in operations:
                request = _request(method, path, operation, document)
                refused[f"{method} {path}"] = await anonymous.request(**request)
        unexpected = {
            what: (r.status_code, r.text[:200])
            for what, r in refused.items()
            if r.status_code != 401 or "missing bearer token" not in r.json()["detail"]
        }
        assert unexpected == {}
        assert all(r.headers["WWW-Authenticate"].startswith("Bearer") for r in refused.values())
        assert len(refused) == len(operations) >= len(KNOWN_MUTATING)
        # Nothing reached a stream: no command, no event.
        assert not await stack.redis.exists(stack.names.command_stream("sim"))
        assert await stack.redis.xlen(stack.names.events) == 0


async def test_a_malformed_body_without_a_token_is_refused_as_unauthorized(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """The token comes first: FastAPI validates bodies before dependencies, and a stranger
    must learn nothing of the schema from a 422."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        document = (await stack.api.get("/openapi.json")).json()
        with_body = [
            (method, path, operation)
            for method, path, operation in _mutating_operations(document)
            if "requestBody" in operation
        ]
        assert {("POST", "/api/v1/jobs"), ("POST", "/api/v1/webhooks")} <= {
            (method, path) for method, path, _ in with_body
        }
        headers = {"content-type": "application/json"}
        async with stack.client() as anonymous, stack.client(READ_TOKEN) as reader:
            for method, path, operation in with_body:
                request = _request(method, path, operation, document)
                request.pop("json", None)
                answer = await anonymous.request(**request, content=b'{"broken', headers=headers)
                assert answer.status_code == 401, (path, answer.text)
                assert "missing bearer token" in answer.json()["detail"]
                answer = await reader.request(**request, content=b'{"broken', headers=headers)
                assert answer.status_code == 403, (path, answer.text)
        # With the right token the same body is what it is: malformed.
        answer = await stack.api.post("/api/v1/jobs", content=b'{"broken', headers=headers)
        assert answer.status_code == 422
        assert not await stack.redis.exists(stack.names.command_stream("sim"))


async def test_every_mutating_operation_refuses_a_read_token(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        document = (await stack.api.get("/openapi.json")).json()
        operations = _mutating_operations(document)
        assert len(operations) >= len(KNOWN_MUTATING)
        async with stack.client(READ_TOKEN) as reader:
            answers = {
                f"{method} {path}": (
                    operation["x-backfill-scope"],
                    await reader.request(**_request(method, path, operation, document)),
                )
                for method, path, operation in operations
            }
        for what, (scope, response) in answers.items():
            assert scope in ("submit", "admin"), what
            assert response.status_code == 403, (what, response.text)
            assert response.json()["detail"] == (
                f"token 'env-2' has scope read; {what} needs {scope}"
            )
        assert not await stack.redis.exists(stack.names.command_stream("sim"))


async def test_every_read_operation_but_health_needs_a_token(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        document = (await stack.api.get("/openapi.json")).json()
        reads = [
            (path, operation)
            for path, operations in document["paths"].items()
            for method, operation in operations.items()
            if method == "get"
        ]
        open_ones = {path for path, operation in reads if operation["x-backfill-scope"] == "none"}
        assert open_ones == {"/api/v1/health", "/api/v1/health/live"} | (
            {"/metrics"} if "/metrics" in document["paths"] else set()
        )
        async with stack.client() as anonymous:
            for path, operation in reads:
                response = await anonymous.request(**_request("get", path, operation, document))
                if path in open_ones:
                    assert response.status_code == 200, (path, response.text)
                else:
                    assert response.status_code == 401, (path, response.text)

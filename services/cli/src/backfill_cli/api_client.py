"""A small synchronous client for the Backfill REST API (/api/v1)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from backfill_cli.models import Job, JobPage, Stats

T = TypeVar("T")

# Generous for a local API, short enough that a hung one does not look like a hung CLI.
REQUEST_TIMEOUT_S = 10.0


class ApiUnreachableError(Exception):
    """Raised when the API cannot be reached at all: refused, no route, or no answer in time."""

    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(f"cannot reach the Backfill API at {base_url} ({reason})")
        self.base_url = base_url


class ApiRejectedError(Exception):
    """Raised on a 422: the API refused the request; `reasons` says why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class ApiResponseError(Exception):
    """Raised when the API answers with a status or body this CLI does not expect."""


class ApiAuthError(Exception):
    """Raised on a 401 (no token, or an unknown one) or a 403 (the token's scope is too small)."""

    def __init__(self, status: int, detail: str) -> None:
        if status == 401:
            hint = (
                "set BACKFILL_API_TOKEN to a token (`backfill token create --scope submit`"
                " makes one), or run this where `backfill dev` keeps its state dir"
            )
        else:
            hint = "use a token with a larger scope (read < submit < admin)"
        super().__init__(f"the API refused the token ({status}): {detail}; {hint}")
        self.status = status


@dataclass(frozen=True)
class JobRequest:
    source: str
    symbol: str
    bar_size: str
    start: str
    end: str
    options: Mapping[str, object]
    mode: str = "full"
    force: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "source": self.source,
            "symbol": self.symbol,
            "bar_size": self.bar_size,
            "start": self.start,
            "end": self.end,
            "options": dict(self.options),
        }
        if self.mode != "full":
            body["mode"] = self.mode
        if self.force:
            body["force"] = True
        return body


class ApiClient:
    def __init__(
        self, base_url: str, timeout: float = REQUEST_TIMEOUT_S, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    def submit(self, request: JobRequest) -> str:
        """Submit one job; its id. Raises ApiRejectedError with the reasons on a 422."""
        response = self._request("POST", "/api/v1/jobs", json=request.to_json())
        if response.status_code == 422:
            raise ApiRejectedError(rejection_reasons(_json(response)))
        body = self._expect(response, 200, 201, 202)
        job_id = body.get("job_id") if isinstance(body, dict) else None
        if not job_id:
            raise ApiResponseError(f"the API accepted the job but sent no job_id: {body!r:.200}")
        return str(job_id)

    def job(self, job_id: str) -> Job | None:
        """The job's current state, or None while the API does not know it yet (a 404)."""
        response = self._request("GET", f"/api/v1/jobs/{job_id}")
        if response.status_code == 404:
            return None
        return _parsed(Job.from_json, self._expect(response, 200))

    def jobs(self, filters: Mapping[str, str | int | None]) -> JobPage:
        params = {k: v for k, v in filters.items() if v is not None}
        response = self._request("GET", "/api/v1/jobs", params=params)
        if response.status_code == 422:
            raise ApiRejectedError(rejection_reasons(_json(response)))
        return _parsed(JobPage.from_json, self._expect(response, 200))

    def cleanup(self, days: int | None) -> str:
        """Ask for the cleanup of jobs finished more than `days` days ago (None: the API's
        default); the cutoff the API chose, as ISO 8601."""
        params = {} if days is None else {"days": days}
        response = self._request("POST", "/api/v1/maintenance/cleanup", params=params)
        if response.status_code == 422:
            raise ApiRejectedError(rejection_reasons(_json(response)))
        body = self._expect(response, 202)
        cutoff = body.get("finished_before") if isinstance(body, dict) else None
        if not isinstance(cutoff, str) or not cutoff:
            raise ApiResponseError(
                f"the API accepted the cleanup but sent no cutoff: {body!r:.200}"
            )
        return cutoff

    def coverage(self, params: Mapping[str, str | None]) -> Any:
        """The API's coverage of one series, as JSON."""
        query = {k: v for k, v in params.items() if v is not None}
        response = self._request("GET", "/api/v1/coverage", params=query)
        if response.status_code == 422:
            raise ApiRejectedError(rejection_reasons(_json(response)))
        return self._expect(response, 200)

    def call(self, method: str, path: str, *ok: int, **kwargs: Any) -> Any:
        """Any other call: the JSON body of an answer in `ok` (None for a 204); raises
        ApiRejectedError on a 422, ApiResponseError on anything else (a 404 included)."""
        response = self._request(method, path, **kwargs)
        if response.status_code == 422:
            raise ApiRejectedError(rejection_reasons(_json(response)))
        if response.status_code == 204 and 204 in ok:
            return None
        return self._expect(response, *ok)

    def stats(self) -> Stats:
        return _parsed(Stats.from_json, self._expect(self._request("GET", "/api/v1/stats"), 200))

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise ApiUnreachableError(self.base_url, "no answer in time") from None
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, _reason(exc)) from None
        if response.status_code in (401, 403):
            try:
                body = response.json()
            except ValueError:  # a proxy in front of the API may answer in HTML
                body = None
            detail = body.get("detail") if isinstance(body, dict) else None
            raise ApiAuthError(response.status_code, str(detail or response.reason_phrase)[:300])
        return response

    def _expect(self, response: httpx.Response, *ok: int) -> Any:
        if response.status_code not in ok:
            text = response.text.strip().replace("\n", " ")
            raise ApiResponseError(
                f"{response.request.method} {response.request.url.path} answered"
                f" {response.status_code} {response.reason_phrase}: {text:.300}"
            )
        return _json(response)


def rejection_reasons(body: Any) -> list[str]:
    """FastAPI's 422 `detail` as readable lines, e.g. `start: Input should be a valid date`."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, str):
        return [detail]
    if not isinstance(detail, list) or not detail:
        return [f"the request was refused: {body!r:.300}"]
    reasons = []
    for item in detail:
        if not isinstance(item, dict):
            reasons.append(str(item))
            continue
        # loc starts with where the value was ("body", "query"), which tells a CLI user nothing.
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        # pydantic prefixes messages from our own validators with "Value error, ".
        message = str(item.get("msg", item)).removeprefix("Value error, ")
        reasons.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return reasons


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ApiResponseError(
            f"{response.request.url.path} answered {response.status_code} with a body that is"
            f" not JSON: {response.text:.200}"
        ) from None


def _parsed(parse: Callable[[Any], T], body: Any) -> T:
    try:
        return parse(body)
    except ValueError as exc:
        raise ApiResponseError(f"the API answered something this CLI cannot read: {exc}") from None


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused" if "refused" in str(exc).lower() else f"cannot connect: {exc}"
    return str(exc) or type(exc).__name__

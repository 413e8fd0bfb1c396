"""Input no database could store is refused with a 422, before any query (SQLite, PostgreSQL)."""

from __future__ import annotations

from tests.support.stack import running_stack


async def test_a_nul_character_in_a_parameter_is_refused(
    redis_url: str, database_url: str, namespace: str
) -> None:
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for url, loc in [
            ("/api/v1/workers?source=%00", ["query", "source"]),
            ("/api/v1/jobs?symbol=AB%00C", ["query", "symbol"]),
            ("/api/v1/jobs?status=queued&cursor=x%00", ["query", "cursor"]),
            ("/api/v1/jobs/job%00-1", ["path", "job_id"]),
            ("/api/v1/jobs/job%00-1/cancel", ["path", "job_id"]),
        ]:
            method = "POST" if url.endswith("/cancel") else "GET"
            response = await stack.api.request(method, url)
            assert response.status_code == 422, (url, response.text)
            assert response.json()["detail"] == [
                {
                    "loc": loc,
                    "msg": "must not contain a NUL character (\\u0000)",
                    "type": "value_error",
                }
            ]
        # Still a 401 first without a token: a stranger learns nothing from the input check.
        async with stack.client() as anonymous:
            assert (await anonymous.get("/api/v1/workers?source=%00")).status_code == 401
        assert (await stack.api.get("/api/v1/workers?source=sim")).json() == []


async def test_times_at_the_edge_of_datetimes_range_are_not_server_errors(
    redis_url: str, database_url: str, namespace: str
) -> None:
    """Their UTC instant lies outside year 1 to 9999: the nearest end of the range stands in."""
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        early, late = "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"
        listed = await stack.api.get(
            "/api/v1/jobs", params={"submitted_from": early, "submitted_before": late}
        )
        assert listed.status_code == 200, listed.text
        assert listed.json()["jobs"] == []
        bars = await stack.api.get(
            "/api/v1/bars",
            params={"source": "sim", "symbol": "AAPL", "bar_size": "1d", "start": early},
        )
        assert bars.status_code == 200, bars.text
        assert bars.json()["count"] == 0

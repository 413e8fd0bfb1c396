"""Outage or bug: how the projector tells them apart, on the real exception types."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest
from redis.exceptions import BusyLoadingError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from backfill_projector.faults import Backoff, outage_of


class _PgError(Exception):
    """What asyncpg's errors carry through SQLAlchemy: the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (RedisConnectionError("Connection refused"), "redis"),
        (RedisTimeoutError("Timeout reading from socket"), "redis"),
        (BusyLoadingError("Redis is loading the dataset in memory"), "redis"),
        (ResponseError("NOGROUP No such key 'events' or consumer group 'projector'"), "redis"),
        (ConnectionRefusedError(111, "Connect call failed"), "database"),
        (ConnectionResetError(104, "Connection reset by peer"), "database"),
        (TimeoutError(), "database"),
        (
            OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
            "database",
        ),
        (
            OperationalError(
                "INSERT", {}, sqlite3.OperationalError("attempt to write a readonly database")
            ),
            "database",
        ),
        (DBAPIError("SELECT 1", {}, _PgError("57P01"), connection_invalidated=True), "database"),
        (DBAPIError("connect", {}, _PgError("57P03")), "database"),
        (DBAPIError("connect", {}, _PgError("08006")), "database"),
        (DBAPIError("connect", {}, _PgError("53300")), "database"),
        # Straight from asyncpg (the live projector on PostgreSQL), unwrapped.
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), "database"),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting"), "database"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), "database"),
        (asyncpg.exceptions.TooManyConnectionsError("too many clients"), "database"),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), "database"),
        # Bugs, or data the database refuses: retrying would fail the same way.
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), None),
        (asyncpg.exceptions.UndefinedTableError('relation "jobs" does not exist'), None),
        (asyncpg.InterfaceError("another operation is in progress"), None),
        (OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: jobs")), None),
        (ProgrammingError("SELECT", {}, _PgError("42P01")), None),
        (IntegrityError("INSERT", {}, _PgError("23505")), None),
        (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), None),
        (KeyError("job-1"), None),
        (ValueError("naive datetime"), None),
    ],
)
def test_outages_and_bugs(error: BaseException, outage: str | None) -> None:
    assert outage_of(error) == outage


def test_backoff_doubles_from_half_a_second_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.take() for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.take() == 0.5

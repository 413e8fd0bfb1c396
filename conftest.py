"""Root conftest: makes the shared fixtures (real Redis, SQLite and PostgreSQL) available everywhere."""

pytest_plugins = ["tests.support.fixtures"]

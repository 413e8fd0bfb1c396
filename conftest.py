"""Root conftest: the shared fixtures (real Redis, SQLite, PostgreSQL) for every test folder."""

pytest_plugins = [
    "tests.support.fixtures",
    "tests.support.fake_yahoo.fixtures",
    "tests.support.fake_tws.fixtures",
    "nicegui.testing.user_plugin",
]

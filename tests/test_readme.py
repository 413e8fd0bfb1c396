"""The README stays true: its configuration table and its stream examples match the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from pydantic_settings import BaseSettings

from backfill_api.settings import ApiSettings
from backfill_ibkr.settings import IbkrSettings
from backfill_projector.settings import ProjectorSettings
from backfill_ui.settings import UiSettings
from backfill_worker import WorkerSettings
from backfill_yahoo.settings import YahooSettings
from tests.support.stack import running_stack

README = Path(__file__).parent.parent / "README.md"
# Read by the CLI and the test suite from the environment, not through a settings class.
OUTSIDE_SETTINGS = {
    "BACKFILL_API_URL",
    "BACKFILL_DEV_REDIS_PORT",
    "BACKFILL_TEST_POSTGRES_URL",
    "BACKFILL_TEST_REQUIRE_BROWSER",
    "BACKFILL_TEST_REQUIRE_POSTGRES",
}


def _variables(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def test_the_configuration_table_lists_every_setting() -> None:
    table = set(re.findall(r"^\| `(BACKFILL_[A-Z_]+)` \|", README.read_text(), re.MULTILINE))
    classes = (
        ApiSettings, ProjectorSettings, WorkerSettings, YahooSettings, IbkrSettings, UiSettings
    )  # fmt: skip
    in_code = set().union(*(_variables(s) for s in classes))
    assert table == in_code | OUTSIDE_SETTINGS


async def test_the_redis_cli_examples_work(
    redis_url: str, database_url: str, namespace: str
) -> None:
    commands = [
        shlex.split(line)
        for line in README.read_text().splitlines()
        if line.startswith("redis-cli XADD ")
    ]
    assert [c[:5] for c in commands] == [["redis-cli", "XADD", "cmd.sim", "*", "__data__"]] * 2
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        for command in commands:
            await stack.redis.xadd(f"{namespace}{command[2]}", {command[4]: command[5]})
        await stack.start_worker("readme-worker")
        job = await stack.wait_job("my-job-1")
        # The cancel was published after the job, before any worker ran: it never started.
        assert job["status"] == "cancelled"
        assert job["error"]["message"] == "no longer needed"
        assert job["progress"]["chunks_done"] == 0

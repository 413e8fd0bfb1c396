"""API tokens from the CLI: `backfill token`, the token the API commands send, and dev's token."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backfill_cli.api_token import client_token, dev_token
from backfill_cli.main import main
from tests.support.servers import free_port
from tests.support.stack import running_stack

JOB = {
    "source": "sim",
    "symbol": "AAPL",
    "bar_size": "1d",
    "start": "2024-01-01",
    "end": "2024-01-05",
}
ENV_TOKEN = "token-from-the-environment-123"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No BACKFILL_ variable from the caller's shell; an empty state dir of the test's own."""
    for name in list(os.environ):
        if name.startswith("BACKFILL_"):
            monkeypatch.delenv(name)
    state = tmp_path / "state"
    monkeypatch.setenv("BACKFILL_STATE_DIR", str(state))
    return state


def test_api_commands_send_backfill_api_token_first(
    fake_api: Any, clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev_token(clean_env)  # a token file too: the variable wins
    monkeypatch.setenv("BACKFILL_API_TOKEN", ENV_TOKEN)
    assert main(["jobs", "--api-url", fake_api.url]) == 0
    assert fake_api.authorizations == [f"Bearer {ENV_TOKEN}"]


def test_without_the_variable_the_token_dev_made_is_sent(fake_api: Any, clean_env: Path) -> None:
    token, _ = dev_token(clean_env)
    assert main(["jobs", "--api-url", fake_api.url]) == 0
    assert main(["cleanup", "--api-url", fake_api.url]) == 0
    assert fake_api.authorizations == [f"Bearer {token}"] * 2


def test_with_no_token_anywhere_none_is_sent(fake_api: Any, clean_env: Path) -> None:
    assert client_token(os.environ, clean_env) is None
    assert main(["jobs", "--api-url", fake_api.url]) == 0
    assert fake_api.authorizations == [None]


@pytest.mark.parametrize(
    ("status", "detail", "advice"),
    [
        (401, "unknown or revoked token", "set BACKFILL_API_TOKEN to a token"),
        (403, "token 'env-2' has scope read; POST /api/v1/jobs needs submit", "a larger scope"),
    ],
)
def test_a_refused_token_says_why_and_what_to_do(
    fake_api: Any,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    status: int,
    detail: str,
    advice: str,
) -> None:
    monkeypatch.setenv("BACKFILL_API_TOKEN", ENV_TOKEN)
    fake_api.refuse = (status, {"detail": detail})
    argv = ["submit", "AAPL", "--source", "sim", "--bar-size", "1d", "--start", "2024-01-01"]
    code = main([*argv, "--api-url", fake_api.url])
    err = capsys.readouterr().err
    assert code == 2
    assert f"backfill: the API refused the token ({status}): {detail}; " in err
    assert advice in err
    assert ENV_TOKEN not in err


def test_dev_makes_its_token_once_for_the_owner_only(tmp_path: Path) -> None:
    token, path = dev_token(tmp_path / "state")
    assert path == tmp_path / "state" / "api-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    assert dev_token(tmp_path / "state") == (token, path)
    assert client_token({}, tmp_path / "state") == token


def _cli(*argv: str) -> Callable[[], int]:
    return lambda: main(list(argv))


async def test_token_commands_make_list_and_revoke_tokens_the_api_honours(
    redis_url: str,
    database_url: str,
    namespace: str,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKFILL_REDIS_URL", redis_url)
    monkeypatch.setenv("BACKFILL_REDIS_NAMESPACE", namespace)
    async with running_stack(redis_url, database_url, namespace, with_worker=False) as stack:
        assert (
            await asyncio.to_thread(_cli("token", "create", "--scope", "submit", "--name", "ci"))
            == 0
        )
        out = capsys.readouterr().out
        assert out.startswith("created token 'ci' with scope submit; it is shown this once:\n")
        token = out.splitlines()[1]
        async with stack.client(token) as ci:
            assert (await ci.post("/api/v1/jobs", json=JOB)).status_code == 202

            assert await asyncio.to_thread(_cli("token", "list")) == 0
            listing = capsys.readouterr().out
            assert listing.splitlines()[0].split() == ["NAME", "SCOPE", "CREATED"]
            assert listing.splitlines()[1].split()[:2] == ["ci", "submit"]
            assert token not in listing

            assert await asyncio.to_thread(_cli("token", "revoke", "ci")) == 0
            assert "revoked token 'ci'" in capsys.readouterr().out
            refused = await ci.post("/api/v1/jobs", json=JOB)
            assert refused.status_code == 401
            assert refused.json()["detail"].startswith("unknown or revoked token")

        assert await asyncio.to_thread(_cli("token", "revoke", "ci")) == 1
        assert "no token named 'ci' (see `backfill token list`)" in capsys.readouterr().err
        assert await asyncio.to_thread(_cli("token", "list")) == 0
        assert "no tokens in Redis" in capsys.readouterr().out


def test_token_commands_refuse_bad_names_and_say_when_redis_is_away(
    redis_url: str,
    namespace: str,
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("BACKFILL_REDIS_URL", redis_url)
    monkeypatch.setenv("BACKFILL_REDIS_NAMESPACE", namespace)
    assert main(["token", "create", "--scope", "read", "--name", "env-1"]) == 1
    assert "does not start with 'env-'" in capsys.readouterr().err
    assert main(["token", "create", "--scope", "read", "--name", "twice"]) == 0
    assert main(["token", "create", "--scope", "admin", "--name", "twice"]) == 1
    assert "a token named 'twice' exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["token", "create", "--scope", "root"])
    assert "invalid choice: 'root'" in capsys.readouterr().err

    monkeypatch.setenv("BACKFILL_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["token", "list"]) == 1
    assert "cannot reach Redis at redis://127.0.0.1:" in capsys.readouterr().err


# dev.run with a stand-in api that reports the digest of the BACKFILL_API_TOKENS it was given.
DEV = """
import sys
from backfill_cli import dev
from backfill_cli.settings import stack_settings
from backfill_cli.supervisor import ServiceSpec

state, api_port, ui_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
service = '''
import hashlib, os, time
given = os.environ.get("BACKFILL_API_TOKENS", "")
print("tokens digest", hashlib.sha256(given.encode()).hexdigest(), flush=True)
time.sleep(60)
'''
services = [ServiceSpec("api", [sys.executable, "-c", service])]
migration = ServiceSpec("migrate", [sys.executable, "-c", "pass"])
settings = stack_settings(state, api_port, ui_port=ui_port)
sys.exit(dev.run(settings, migration=migration, services=services))
"""


@pytest.mark.parametrize("given", [None, f"admin:{ENV_TOKEN}"])
def test_dev_hands_its_api_a_token_and_shows_where_it_is(
    tmp_path: Path, spawn: Callable[..., Any], given: str | None
) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKFILL_")}
    env |= {"BACKFILL_DEV_REDIS_PORT": str(free_port()), "NO_COLOR": "1"}
    if given is not None:
        env["BACKFILL_API_TOKENS"] = given
    child = spawn([sys.executable, "-c", DEV, str(state), str(free_port()), str(free_port())], env)
    reported = child.wait_for_line("tokens digest").split()[-1]
    where = child.wait_for_line("API token  ")
    child.proc.terminate()
    assert child.wait() == 0, child.output
    if given is None:
        token = (state / "api-token").read_text().strip()
        assert reported == hashlib.sha256(f"admin:{token}".encode()).hexdigest()
        assert where.endswith(f"API token  {state / 'api-token'} (admin; the CLI sends it)")
        assert token not in child.output
    else:
        assert reported == hashlib.sha256(given.encode()).hexdigest()
        assert where.endswith("API token  BACKFILL_API_TOKENS (from the environment)")
        assert not (state / "api-token").exists()
        assert ENV_TOKEN not in child.output

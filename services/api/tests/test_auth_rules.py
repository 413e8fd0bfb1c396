"""Token parsing, scope ordering and the route table: pure rules, no server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backfill_api.auth import required_scope
from backfill_api.settings import ApiSettings
from backfill_bus.tokens import (
    SCOPES,
    TokenFormatError,
    check_name,
    find_env_token,
    parse_env_tokens,
    scope_allows,
)

SECRET_A = "first-secret-token-abcdef"
SECRET_B = "second-secret-token-uvwxyz"


def test_env_tokens_are_scope_token_pairs_named_by_position() -> None:
    tokens = parse_env_tokens(f"admin:{SECRET_A}, read:{SECRET_B}")
    assert [(t.info.name, t.info.scope) for t in tokens] == [("env-1", "admin"), ("env-2", "read")]
    assert find_env_token(tokens, SECRET_B) == tokens[1].info
    assert find_env_token(tokens, SECRET_A) == tokens[0].info
    assert find_env_token(tokens, SECRET_A[:-1]) is None
    assert find_env_token(tokens, SECRET_A + "x") is None
    assert SECRET_A not in repr(tokens)


def test_a_token_may_contain_a_colon() -> None:
    (token,) = parse_env_tokens(f"submit:{SECRET_A}:more")
    assert token.info.scope == "submit"
    assert token.matches(f"{SECRET_A}:more")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (SECRET_A, "entry 1 of BACKFILL_API_TOKENS is not `scope:token`"),
        (f"admin:{SECRET_A},", "entry 2 of BACKFILL_API_TOKENS is not `scope:token`"),
        ("admin:", "entry 1 of BACKFILL_API_TOKENS is not `scope:token`"),
        (
            f"admin:{SECRET_A},owner:{SECRET_B}",
            "entry 2 of BACKFILL_API_TOKENS: unknown scope 'owner'; scopes are read, submit, admin",
        ),
        ("read:short-one", "entry 1 of BACKFILL_API_TOKENS: a token has at least 16 characters"),
        (f"read:{SECRET_A} {SECRET_B}", "a token has at least 16 characters and no spaces"),
    ],
)
def test_a_malformed_list_is_refused_without_showing_a_token(value: str, reason: str) -> None:
    with pytest.raises(TokenFormatError) as caught:
        parse_env_tokens(value)
    assert reason in str(caught.value)
    assert SECRET_A not in str(caught.value)
    assert SECRET_B not in str(caught.value)


def test_the_api_refuses_to_start_on_a_malformed_list_and_never_prints_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKFILL_API_TOKENS", f"admin:{SECRET_A},boss:{SECRET_B}")
    with pytest.raises(ValidationError) as caught:
        ApiSettings()
    message = str(caught.value)
    assert "api_tokens" in message
    assert "unknown scope 'boss'" in message
    assert SECRET_A not in message
    assert SECRET_B not in message


def test_settings_keep_tokens_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKFILL_API_TOKENS", f"admin:{SECRET_A}")
    settings = ApiSettings()
    assert [t.info.scope for t in settings.env_tokens] == ["admin"]
    assert SECRET_A not in repr(settings)
    assert SECRET_A not in str(settings.model_dump())
    assert not settings.api_open_reads


def test_an_empty_list_means_no_environment_tokens() -> None:
    assert ApiSettings(api_tokens="").env_tokens == ()
    assert ApiSettings(api_tokens="  ").api_tokens is None


def test_scopes_are_ordered() -> None:
    assert SCOPES == ("read", "submit", "admin")
    allowed = {(held, needed) for held in SCOPES for needed in SCOPES if scope_allows(held, needed)}
    assert allowed == {
        ("read", "read"),
        ("submit", "read"),
        ("submit", "submit"),
        ("admin", "read"),
        ("admin", "submit"),
        ("admin", "admin"),
    }


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/v1/health", None),
        ("GET", "/api/v1/health/live", None),
        ("GET", "/metrics", None),
        ("GET", "/api/v1/jobs", "read"),
        ("GET", "/api/v1/jobs/{job_id}", "read"),
        ("get", "/api/v1/bars", "read"),
        ("POST", "/api/v1/jobs", "submit"),
        ("POST", "/api/v1/jobs/{job_id}/cancel", "submit"),
        ("POST", "/api/v1/jobs/{job_id}/retry", "submit"),
        ("POST", "/api/v1/maintenance/cleanup", "admin"),
        ("GET", "/api/v1/webhooks", "admin"),
        ("POST", "/api/v1/webhooks", "admin"),
        ("DELETE", "/api/v1/webhooks/{webhook_id}", "admin"),
        ("GET", "/api/v1/webhooks/{webhook_id}", "admin"),
        ("GET", "/api/v1/maintenance/anything", "admin"),
        ("GET", "/api/v1/webhooksfoo", "read"),
        # Not in the table: closed to all but admins, whatever it is.
        ("PUT", "/api/v1/anything/new", "admin"),
        ("PATCH", "/api/v1/jobs/{job_id}", "admin"),
        ("POST", "/api/v1/health", "admin"),
    ],
)
def test_each_route_needs_its_scope(method: str, path: str, scope: str | None) -> None:
    assert required_scope(method, path) == scope


@pytest.mark.parametrize("name", ["", "env-1", "has space", "x" * 65, "semi;colon"])
def test_token_names_are_plain_and_not_reserved(name: str) -> None:
    with pytest.raises(TokenFormatError):
        check_name(name)


def test_a_plain_token_name_is_accepted() -> None:
    assert check_name("ci-deploy_2.0") == "ci-deploy_2.0"

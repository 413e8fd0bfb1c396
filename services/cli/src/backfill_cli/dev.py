"""`backfill dev`: the whole stack as local processes, with no Docker.

Redis (unless BACKFILL_REDIS_URL points at one), then the one-shot migration, then the
long-running services, all under one supervisor that restarts what dies and stops everything in
reverse order on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from backfill_cli.api_token import TokenFileError, dev_token
from backfill_cli.logs import LinePrinter
from backfill_cli.ports import port_in_use
from backfill_cli.processes import describe_exit, runnable_module
from backfill_cli.redis_server import (
    RedisNotFoundError,
    find_redis_server,
    redis_service,
    wait_until_ready,
)
from backfill_cli.settings import DEV_HOST, StackSettings, without_password
from backfill_cli.supervisor import RestartPolicy, ServiceSpec, Supervisor

# Replaying a large AOF can take a while; past this, something else is wrong.
REDIS_READY_TIMEOUT_S = 30.0


class DevError(Exception):
    """Raised when the stack cannot start (a port taken, a part missing); the message says why."""


def migration_spec() -> ServiceSpec:
    return ServiceSpec("migrate", [sys.executable, "-m", "backfill_readmodel", "upgrade"])


def service_specs(settings: StackSettings | None = None) -> list[ServiceSpec]:
    """The long-running services, in start order (they are stopped in reverse).

    With `settings`, the projector and each worker serve /metrics on their own port.
    """
    python = sys.executable

    def spec(name: str, *argv: str) -> ServiceSpec:
        env = settings.metrics_env(name) if settings is not None else {}
        return ServiceSpec(name, [python, *argv], env)

    return [
        spec("projector", "-m", "backfill_projector", "run"),
        spec("api", "-m", "backfill_api"),
        spec("sim-worker", "-m", "backfill_sim"),
        spec("yahoo-worker", "-m", "backfill_yahoo"),
        # Connects to the IB Gateway at BACKFILL_IBKR_HOST:PORT (or the endpoint set from the
        # console) and keeps retrying, jobs waiting, while there is none.
        spec("ibkr-worker", "-m", "backfill_ibkr"),
        spec("ui", "-m", "backfill_ui"),
    ]


STACK_MODULES = (
    "backfill_readmodel",
    "backfill_projector",
    "backfill_api",
    "backfill_sim",
    "backfill_yahoo",
    "backfill_ibkr",
    "backfill_ui",
)


def run(
    settings: StackSettings,
    *,
    migration: ServiceSpec | None = None,
    services: Sequence[ServiceSpec] | None = None,
    policy: RestartPolicy | None = None,
    stream: TextIO | None = None,
) -> int:
    """Run the stack until a stop signal; 0 after a clean stop, 1 if it could not start.

    `migration` and `services` default to the real ones; tests pass stand-in commands.
    """
    redis = _redis_executable(settings)
    _check_ports(settings)
    if migration is None and services is None:
        _check_installed(STACK_MODULES)
    migration = migration or migration_spec()
    services = service_specs(settings) if services is None else services
    try:
        settings.redis_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DevError(f"cannot create the state dir {settings.state_dir}: {exc}") from None
    tokens = _api_tokens(settings)
    names = [migration.name, *(s.name for s in services)] + (["redis"] if redis else [])
    printer = LinePrinter(names, stream=stream)
    return asyncio.run(_run(settings, redis, migration, services, policy, printer, tokens))


def _api_tokens(settings: StackSettings) -> tuple[dict[str, str], str]:
    """The API's tokens for the children's environment, and where a user finds one.

    BACKFILL_API_TOKENS as given, else one admin token kept in the state dir, so that the CLI
    (which reads that file) works at once. The token itself is never printed.
    """
    if os.environ.get("BACKFILL_API_TOKENS", "").strip():
        return {}, "BACKFILL_API_TOKENS (from the environment)"
    try:
        token, path = dev_token(settings.state_dir)
    except TokenFileError as exc:
        raise DevError(str(exc)) from None
    return {"BACKFILL_API_TOKENS": f"admin:{token}"}, f"{path} (admin; the CLI sends it)"


def _check_installed(modules: Sequence[str]) -> None:
    missing = [m for m in modules if not runnable_module(m)]
    if missing:
        raise DevError(
            f"cannot run {', '.join(missing)} with `python -m` in {sys.prefix}: "
            "install the whole workspace with `uv sync --all-packages`"
        )


def _redis_executable(settings: StackSettings) -> Path | None:
    if not settings.start_redis:
        return None
    try:
        return find_redis_server()
    except RedisNotFoundError as exc:
        raise DevError(str(exc)) from None


def _check_ports(settings: StackSettings) -> None:
    if settings.start_redis and port_in_use(DEV_HOST, settings.redis_port):
        raise DevError(
            f"port {settings.redis_port} on {DEV_HOST} is already in use (another `backfill dev`?)"
            ": stop it, set BACKFILL_DEV_REDIS_PORT to a free port, or set BACKFILL_REDIS_URL"
            " to use a Redis that is already running"
        )
    if port_in_use(DEV_HOST, settings.api_port):
        raise DevError(
            f"API port {settings.api_port} on {DEV_HOST} is already in use: stop what uses it"
            " or pass --api-port with a free port"
        )
    if port_in_use(DEV_HOST, settings.ui_port):
        raise DevError(
            f"console port {settings.ui_port} on {DEV_HOST} is already in use: stop what uses it"
            " or pass --ui-port with a free port"
        )
    for service, port in settings.metrics_ports.items():
        if port_in_use(DEV_HOST, port):
            raise DevError(
                f"metrics port {port} ({service}) on {DEV_HOST} is already in use: stop what"
                " uses it, or pass --metrics-port-base with four free ports (0: no metrics)"
            )


async def _run(
    settings: StackSettings,
    redis: Path | None,
    migration: ServiceSpec,
    services: Sequence[ServiceSpec],
    policy: RestartPolicy | None,
    printer: LinePrinter,
    tokens: tuple[dict[str, str], str] = ({}, ""),
) -> int:
    env = {**settings.child_env(os.environ), **tokens[0]}
    async with Supervisor(printer, env=env, policy=policy) as sup:
        sup.stop_on_signals()
        printer.say(f"state dir  {settings.state_dir}")
        printer.say(f"database   {without_password(settings.database_url)}")
        printer.say(f"redis      {settings.redis_url}")
        printer.say(f"API        {settings.docs_url}")
        printer.say(f"API token  {tokens[1]}")
        printer.say(f"console    {settings.console_url}")
        if settings.metrics_ports:
            printer.say(f"metrics    http://{DEV_HOST}:{settings.api_port}/metrics (api)")
            for service, port in settings.metrics_ports.items():
                printer.say(f"           http://{DEV_HOST}:{port}/metrics ({service})")
        if redis is not None:
            await sup.start(redis_service(redis, DEV_HOST, settings.redis_port, settings.redis_dir))
            ready = await wait_until_ready(
                DEV_HOST, settings.redis_port, REDIS_READY_TIMEOUT_S, sup.stop_requested
            )
            if sup.stop_requested.is_set():
                return 0
            if not ready:
                printer.say(
                    f"Redis did not answer PING within {REDIS_READY_TIMEOUT_S:g} s;"
                    " see its lines above"
                )
                return 1
        code = await sup.run_once(migration)
        if code is None:  # stopped while migrating
            return 0
        if code != 0:
            printer.say(
                f"the migration {describe_exit(code)}: the services were not started;"
                " see its lines above"
            )
            return 1
        for spec in services:
            await sup.start(spec)
        printer.say(
            f"running: console at {settings.console_url}, API docs at {settings.docs_url};"
            " Ctrl-C stops everything"
        )
        await sup.stop_requested.wait()
    printer.say("all stopped")
    return 0

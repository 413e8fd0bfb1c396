"""compose.yaml, deploy/Dockerfile and .env.example, checked against the Compose Specification,
hadolint and the code itself: what a machine without a Docker engine can prove about them."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from tests.support.compose import (
    COMPOSE_FILE,
    DOCKERFILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariableError,
    built_package,
    command_of,
    compose_model,
    dockerfile_build,
    read_env_file,
    service_environment,
    variables_in,
)

BIN = Path(sys.executable).parent
# The secrets compose refuses to start without; .env.example leaves each one empty.
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "BACKFILL_API_TOKENS", "BACKFILL_UI_PASSWORD"}
TEST_SECRETS = {
    "POSTGRES_PASSWORD": "0123456789abcdef",
    "BACKFILL_API_TOKENS": "admin:test-admin-token",
    "BACKFILL_UI_PASSWORD": "test-password",
}
# Each image's settings classes: every BACKFILL_ variable compose gives a service must be a
# field of one of them (pydantic-settings ignores unknown variables, so a typo would pass).
SETTINGS_OF_PACKAGE = {
    "backfill-readmodel": ["backfill_readmodel.settings:DatabaseSettings"],
    "backfill-api": ["backfill_api.settings:ApiSettings"],
    "backfill-projector": ["backfill_projector.settings:ProjectorSettings"],
    "backfill-sim-worker": ["backfill_worker.settings:WorkerSettings"],
    "backfill-yahoo-worker": ["backfill_yahoo.settings:YahooSettings"],
    "backfill-ibkr-worker": ["backfill_ibkr.settings:IbkrSettings"],
    "backfill-ui": ["backfill_ui.settings:UiSettings"],
}
# Read by every entry point's logging setup rather than a service's settings class.
LOGGING_VARIABLES = {"BACKFILL_LOG_FORMAT", "BACKFILL_LOG_LEVEL"}
# `docker compose` options that take a value, in the README's commands.
COMPOSE_VALUE_OPTIONS = {"--profile", "-f", "--scale", "-v", "--volume", "-e", "-u", "-w"}


@pytest.fixture(scope="module")
def model() -> dict[str, Any]:
    return compose_model({**read_env_file(), **TEST_SECRETS})


def _members() -> dict[str, Path]:
    """Workspace package name -> its folder, from the root pyproject's member globs."""
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members: dict[str, Path] = {}
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for folder in sorted(ROOT.glob(pattern)):
            if (folder / "pyproject.toml").is_file():
                project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
                members[project["name"]] = folder
    return members


def _scripts(package: str) -> dict[str, str]:
    folder = _members()[package]
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    scripts: dict[str, str] = project.get("scripts", {})
    return scripts


def _settings_fields(package: str) -> set[str]:
    fields: set[str] = set()
    for dotted in SETTINGS_OF_PACKAGE[package]:
        module, _, name = dotted.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, BaseSettings)
        prefix = cls.model_config.get("env_prefix", "")
        fields |= {f"{prefix}{field}".upper() for field in cls.model_fields}
    return fields


def _check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = _check_compose_schema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_interpolated_model_validates_too(model: dict[str, Any], tmp_path: Path) -> None:
    """After interpolation ports, ids and options keep shapes the specification accepts."""
    import yaml

    rendered = tmp_path / "compose.rendered.yaml"
    rendered.write_text(yaml.safe_dump(model))
    result = _check_compose_schema(rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_wrong_key(tmp_path: Path) -> None:
    """The validator is not a rubber stamp: a misspelt key fails it."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("  init: true", "  inti: true", 1))
    result = _check_compose_schema(broken)
    assert result.returncode != 0
    assert "inti" in result.stdout


def test_every_dockerfile_passes_hadolint() -> None:
    dockerfiles = [p for p in ROOT.glob("**/Dockerfile*") if not p.name.endswith("dockerignore")]
    dockerfiles = [p for p in dockerfiles if ".venv" not in p.parts]
    assert DOCKERFILE in dockerfiles
    for dockerfile in dockerfiles:
        result = subprocess.run(
            [BIN / "hadolint", dockerfile], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{dockerfile}:\n{result.stdout}{result.stderr}"


def test_the_dockerfile_copies_every_workspace_members_pyproject() -> None:
    """uv reads the lockfile only with every member's pyproject.toml present (its deps layer)."""
    copied = set(re.findall(r"^COPY (\S+)/pyproject\.toml ", DOCKERFILE.read_text(), re.M))
    members = {str(folder.relative_to(ROOT)) for folder in _members().values()}
    assert copied == members


def test_the_dockerfile_installs_from_the_lock_in_two_steps() -> None:
    """Third-party packages, then the workspace's, both refusing a stale uv.lock (--locked);
    tests/test_compose_stack.py replays these very steps (read by `dockerfile_build`)."""
    env, steps = dockerfile_build()
    assert [step.sync for step in steps] == [
        ["sync", "--locked", "--no-dev", "--no-install-workspace", "--package", "${PACKAGE}"],
        ["sync", "--locked", "--no-dev", "--no-editable", "--package", "${PACKAGE}"],
    ]
    # The first step sees only the lockfile and the pyproject.toml files: its layer is cached
    # until one of them changes.
    first = [source for sources, _ in steps[0].copies for source in sources]
    assert all(source in ("pyproject.toml", "uv.lock") or source.endswith("/pyproject.toml")
               for source in first)  # fmt: skip
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"
    text = DOCKERFILE.read_text()
    assert "USER 10001:10001" in text
    # The final stage copies the virtualenv and nothing else from the build.
    final = text.split("AS runtime", 1)[1]
    assert re.findall(r"^COPY .*", final, re.M) == [
        "COPY --from=build --chown=backfill:backfill /app/.venv /app/.venv"
    ]


def test_lint_refuses_a_stale_lockfile() -> None:
    """CI runs ./scripts/lint: a uv.lock out of step with a pyproject.toml fails it there."""
    lint = (ROOT / "scripts" / "lint").read_text()
    assert re.search(r'^"\$UV" lock --check$', lint, re.M), lint


def test_every_variable_is_documented_in_env_example() -> None:
    used = set(variables_in(COMPOSE_FILE.read_text()))
    documented = set(read_env_file())
    assert used - documented == set(), "used in compose.yaml, missing from .env.example"
    assert documented - used == set(), "in .env.example, unused by compose.yaml"


def test_required_secrets_fail_fast_and_have_no_default() -> None:
    required = {name for name, op in variables_in(COMPOSE_FILE.read_text()).items() if op == ":?"}
    assert required == REQUIRED_SECRETS
    example = read_env_file()
    for name in REQUIRED_SECRETS:
        assert example[name] == "", f"{name} must be empty in .env.example"
        env = {**example, **TEST_SECRETS, name: ""}
        with pytest.raises(MissingVariableError) as raised:
            compose_model(env)
        assert raised.value.name == name
        assert ".env.example" in str(raised.value)


def test_every_service_command_is_an_entry_point_of_its_package(model: dict[str, Any]) -> None:
    built = {
        name: package
        for name, service in model["services"].items()
        if (package := built_package(service)) is not None
    }
    assert set(built) == {
        "migrate", "api", "projector", "sim-worker", "yahoo-worker", "ibkr-worker", "ui",
    }  # fmt: skip
    for name, package in built.items():
        service = model["services"][name]
        command = command_of(service)
        assert command, f"{name} has no command"
        assert command[0] in _scripts(package), f"{name}: {command[0]} is not a script of {package}"
        # The image's default command (BACKFILL_SERVICE=PACKAGE) is a script of it too.
        assert package in _scripts(package)
        assert service["image"].startswith(f"{package}:")
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["build"]["context"] == "."


def test_every_environment_variable_is_a_setting_of_its_service(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        package = built_package(service)
        if package is None:
            continue
        fields = _settings_fields(package)
        for variable in service_environment(service):
            if variable in LOGGING_VARIABLES:
                continue
            assert variable in fields, f"{name}: {variable} is not a setting of {package}"


def test_logging_variables_are_read_by_the_logging_setup() -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "shared").glob("*/src/**/*.py"))
    for variable in LOGGING_VARIABLES:
        field = variable.removeprefix("BACKFILL_").lower()
        assert re.search(rf"\b{field}\b", sources), f"nothing reads {variable}"


def test_long_running_services_have_healthchecks_and_restart(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        # FastStream exits 0 after a fatal subscriber error: on-failure would not restart it.
        assert service["restart"] in ("always", "unless-stopped"), name


def test_dependencies_wait_for_healthy_or_completed(model: dict[str, Any]) -> None:
    services = model["services"]
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            condition = spec["condition"]
            if dependency == "migrate":
                assert condition == "service_completed_successfully", name
            else:  # a dependency with a healthcheck is waited for until healthy, optional or not
                assert "healthcheck" in services[dependency], f"{name} -> {dependency}"
                assert condition == "service_healthy", f"{name} -> {dependency}"
    for name in ("api", "projector", "ui"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_postgres_is_healthy_once_it_accepts_tcp(model: dict[str, Any]) -> None:
    """Over the unix socket the image's first-boot init server (TCP off) would answer."""
    test = model["services"]["postgres"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    argv = shlex.split(test[1])
    assert argv[0] == "pg_isready"
    options = dict(zip(argv[1::2], argv[2::2], strict=True))
    assert options == {
        "-h": "127.0.0.1",
        "-p": "5432",
        "-U": "$POSTGRES_USER",
        "-d": "$POSTGRES_DB",
    }


def test_redis_and_postgres_are_private_and_durable(model: dict[str, Any]) -> None:
    services = model["services"]
    for name in ("redis", "postgres"):
        assert "ports" not in services[name], f"{name} publishes a port"
        assert services[name]["volumes"], f"{name} has no volume"
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == (
        "yes"
    )
    assert (
        service_environment(services["postgres"])["POSTGRES_PASSWORD"]
        == (TEST_SECRETS["POSTGRES_PASSWORD"])
    )


def test_published_ports_default_to_loopback(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_optional_parts_sit_behind_profiles(model: dict[str, Any]) -> None:
    services = model["services"]
    assert services["ibkr-worker"]["profiles"] == ["ibkr"]
    assert services["ib-gateway"]["profiles"] == ["ibkr"]
    gateway = service_environment(services["ib-gateway"])
    assert gateway["TRADING_MODE"] == "paper"
    assert gateway["READ_ONLY_API"] == "yes"
    # The worker may use a gateway outside compose (`--scale ib-gateway=0`): compose then skips
    # the wait, and warns rather than fails if the container turns unhealthy.
    assert services["ibkr-worker"]["depends_on"]["ib-gateway"] == {
        "condition": "service_healthy",
        "required": False,
    }
    # README's own-TWS example: host.docker.internal resolves on Linux only through this entry.
    assert "host.docker.internal:host-gateway" in services["ibkr-worker"]["extra_hosts"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    for name in ("redis", "postgres", "migrate", "api", "projector", "sim-worker", "ui"):
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"


def test_monitoring_files_exist_where_compose_mounts_them(model: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in model["services"][name]["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"


def test_env_example_holds_no_secret_values() -> None:
    example = ENV_EXAMPLE.read_text()
    assert "test-admin-token" not in example
    for name in (*REQUIRED_SECRETS, "TWS_PASSWORD"):
        assert read_env_file()[name] == ""
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def _readme_compose_commands() -> list[list[str]]:
    """Every `docker compose ...` command of README's Docker section, as argv after `compose`."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Running with Docker\n", 1)[1].split("\n## ", 1)[0]
    section = section.replace("\\\n", " ")  # continued lines
    commands = []
    for match in re.findall(r"docker compose [^\n`]*", section):
        argv = shlex.split(match, comments=True)[2:]
        ends = [i for i, word in enumerate(argv) if word in (">", "<", "|", "&&", ";")]
        commands.append(argv[: ends[0]] if ends else argv)
    return commands


def test_readme_docker_commands_name_real_services(model: dict[str, Any]) -> None:
    services = model["services"]
    commands = _readme_compose_commands()
    assert len(commands) >= 10
    for argv in commands:
        positional: list[str] = []
        scaled: list[str] = []
        words = iter(argv)
        for word in words:
            if word in COMPOSE_VALUE_OPTIONS:
                value = next(words)
                if word == "--scale":
                    scaled.append(value.split("=", 1)[0])
            elif not word.startswith("-"):
                positional.append(word)
        subcommand, args = positional[0], positional[1:]
        if subcommand in ("exec", "run"):
            named = args[:1]
            assert named, argv
            command = args[1:]
            if command and command[0] == "sh":  # variables the service's container must have
                wanted = set(re.findall(r"\$\{?(\w+)", command[-1])) - {"PWD"}
                assert wanted <= set(service_environment(services[named[0]])), argv
        elif subcommand == "cp":
            named = [arg.split(":", 1)[0] for arg in args if ":" in arg]
        else:
            named = args
        for name in [*named, *scaled]:
            assert name in services, f"README: `docker compose {' '.join(argv)}`: no {name}"

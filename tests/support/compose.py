"""compose.yaml read the way Docker Compose reads it, for tests that stand in for a Docker engine.

Interpolation follows the Compose Specification: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`,
`${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}` and `${VAR+alt}`. YAML merge keys
(`<<: *anchor`) are resolved by the YAML loader, as Compose does.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

_VARIABLE = re.compile(
    r"\$\$"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariableError(Exception):
    """Raised when a required variable (`${VAR:?message}`) has no value, as Compose refuses."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"required variable {name} is missing a value: {message}")
        self.name = name


def raw_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def variables_in(text: str) -> dict[str, str | None]:
    """Every variable the text interpolates, with its operator (None for a plain reference)."""
    found: dict[str, str | None] = {}
    for match in _VARIABLE.finditer(text):
        name = match.group("braced") or match.group("bare")
        if name:
            op = match.group("op")
            found[name] = op if found.get(name) is None else found[name]
    return found


def interpolate_text(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = value is None or value == ""
        if op == ":-":
            return arg if empty else str(value)
        if op == "-":
            return arg if value is None else value
        if op == ":?":
            if empty:
                raise MissingVariableError(name, arg)
            return str(value)
        if op == "?":
            if value is None:
                raise MissingVariableError(name, arg)
            return value
        if op == ":+":
            return "" if empty else arg
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return _VARIABLE.sub(replace, text)


def interpolate(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate_text(node, env)
    if isinstance(node, list):
        return [interpolate(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    return node


def compose_model(env: Mapping[str, str]) -> dict[str, Any]:
    model: dict[str, Any] = interpolate(raw_compose(), env)
    return model


def read_env_file(path: Path = ENV_EXAMPLE) -> dict[str, str]:
    """KEY=VALUE lines; `#` starts a comment line. Values are taken as written."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"{path.name}:{number}: not KEY=VALUE: {line!r}")
        values[key.strip()] = value.strip()
    return values


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping, whichever of the two forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {key: value for key, _, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command_of(service: Mapping[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def healthcheck_command(service: Mapping[str, Any]) -> list[str] | None:
    """The healthcheck's argv for `CMD` tests; None when there is none or it is `CMD-SHELL`."""
    test = (service.get("healthcheck") or {}).get("test")
    if not isinstance(test, list) or not test or test[0] != "CMD":
        return None
    return [str(part) for part in test[1:]]


def built_package(service: Mapping[str, Any]) -> str | None:
    """The workspace package a service's image installs (its PACKAGE build argument)."""
    build = service.get("build")
    if not isinstance(build, dict):
        return None
    package = (build.get("args") or {}).get("PACKAGE")
    return None if package is None else str(package)


@dataclass
class BuildStep:
    """The build stage's COPY instructions (sources, destination), then the `uv sync` of the RUN
    that follows them: its arguments after `uv`, with `${PACKAGE}` left in."""

    copies: list[tuple[list[str], str]]
    sync: list[str]


def dockerfile_build() -> tuple[dict[str, str], list[BuildStep]]:
    """deploy/Dockerfile's build stage: its ENV, and its COPY and `uv sync` steps in order."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stage = text.split(" AS build\n", 1)[1].split(" AS runtime\n", 1)[0]
    env: dict[str, str] = {}
    steps: list[BuildStep] = []
    copies: list[tuple[list[str], str]] = []
    for line in stage.splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
        elif instruction == "COPY" and not rest.startswith("--from"):
            *sources, destination = shlex.split(rest)
            copies.append((sources, destination))
        elif instruction == "RUN" and (sync := re.search(r"\buv (sync [^&|;]*)", rest)):
            steps.append(BuildStep(copies, shlex.split(sync.group(1))))
            copies = []
    return env, steps

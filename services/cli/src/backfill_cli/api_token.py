"""The token the CLI sends to the API, and the one `backfill dev` makes for its local stack.

`backfill dev` without BACKFILL_API_TOKENS writes an admin token once to `<state dir>/api-token`
(mode 0600) and gives it to its API; the CLI's API commands send BACKFILL_API_TOKEN if set,
else that file's token, so `backfill dev` then `backfill submit` works with no setup.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

TOKEN_FILE = "api-token"


class TokenFileError(Exception):
    """Raised when the state dir's token file cannot be written or read (permissions, empty)."""


def dev_token(state: Path) -> tuple[str, Path]:
    """The local stack's admin token, made once into `<state>/api-token`; and where it is."""
    path = state / TOKEN_FILE
    try:
        state.mkdir(parents=True, exist_ok=True)
        # O_EXCL: made once and kept, so scripts that read it keep working across restarts.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path), path
    except OSError as exc:
        raise TokenFileError(f"cannot write the API token file {path}: {exc}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    return token, path


def client_token(env: Mapping[str, str], state: Path) -> str | None:
    """BACKFILL_API_TOKEN, else the token `backfill dev` keeps in the state dir, else none."""
    token = env.get("BACKFILL_API_TOKEN", "").strip()
    if token:
        return token
    path = state / TOKEN_FILE
    if not path.is_file():
        return None
    return _read(path)


def _read(path: Path) -> str:
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise TokenFileError(f"cannot read the API token file {path}: {exc}") from None
    if not token:
        raise TokenFileError(f"{path} is empty: delete it and `backfill dev` makes a new token")
    return token

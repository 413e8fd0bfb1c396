"""One logging setup for every entry point: human lines or JSON, with the job on every line.

`BACKFILL_LOG_FORMAT=text` (the default) keeps the terminal lines `backfill dev` prints;
`json` writes one object per line for a log shipper. Either way each record carries the job
and correlation id of the work it belongs to, read from context variables that the worker
runtime, the projector and the API set while they work on a job or a request.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Literal

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

job_id_var: ContextVar[str | None] = ContextVar("backfill_job_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("backfill_correlation_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Uvicorn configures these itself; they must go through our handler instead.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
# httpx logs every request's full URL at INFO, and a webhook's URL may carry a token in its
# query or credentials: only their warnings are kept.
_URL_LOGGERS = ("httpx", "httpcore")


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BACKFILL_", extra="ignore")

    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in _LEVELS:
            raise ValueError(f"must be one of {', '.join(_LEVELS)}, not {value!r}")
        return level


@contextmanager
def job_context(job_id: str | None, correlation_id: str | None = None) -> Iterator[None]:
    """Log lines inside the block name this job (and the request that asked for it)."""
    job_token = job_id_var.set(job_id)
    correlation_token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(correlation_token)
        job_id_var.reset(job_token)


class ContextFilter(logging.Filter):
    """Copies the service name and the current job and correlation ids onto every record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.job_id = job_id_var.get()
        record.correlation_id = correlation_id_var.get()
        return True


class TextFormatter(logging.Formatter):
    """Today's human line, with `[job …]` appended while a job is being worked on."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        job_id = getattr(record, "job_id", None)
        if job_id is None:
            return line
        first, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{first} [job {job_id}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, service, job_id, correlation_id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", None),
            "job_id": getattr(record, "job_id", None),
            "correlation_id": getattr(record, "correlation_id", None),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        # default=str: a message argument that is not JSON (a path, an exception) still prints.
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, settings: LogSettings | None = None) -> LogSettings:
    """Send every logger's records (uvicorn's too) to stderr in the configured format.

    Call once, first thing in an entry point; calling it again replaces the handler.
    """
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    for name in _URL_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    return settings

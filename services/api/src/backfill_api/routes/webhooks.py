"""Webhook subscriptions for finished jobs: added, listed and deleted through the API.

They live in Redis (backfill_bus.webhooks), so every API replica, console and projector sees
the same ones; the projector's notifier posts to them. Every POST is signed: a secret is
write-only, and one generated for a subscription made without it is returned once, on creation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from backfill_api.dependencies import ServicesDep
from backfill_bus import (
    TooManyWebhooksError,
    WebhookSubscription,
    add_webhook,
    delete_webhook,
    read_webhook,
    read_webhooks,
)
from backfill_bus.webhooks import MAX_SECRET_LENGTH, MAX_URL_LENGTH, check_url
from backfill_contracts import known_sources

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Status = Literal["succeeded", "failed", "cancelled"]
_NOT_FOUND = {"description": "No webhook with this id"}


class WebhookRequest(BaseModel):
    """A subscriber to finished jobs. Empty `sources` or `statuses`: every one."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/backfill",
                    "secret": "a long random string",
                    "sources": ["yahoo"],
                    "statuses": ["failed"],
                }
            ]
        },
    )

    url: str = Field(max_length=MAX_URL_LENGTH)
    secret: SecretStr | None = Field(
        default=None,
        max_length=MAX_SECRET_LENGTH,
        description="Signs each POST (X-Backfill-Signature: sha256=HMAC of the body). "
        "Write-only: never returned. Without it, one is generated and returned once.",
    )
    events: list[Literal["job.finished"]] = Field(default=["job.finished"], min_length=1)
    sources: list[str] = Field(default=[], max_length=20)
    statuses: list[Status] = Field(default=[], max_length=3)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_url(value.strip())

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        unknown = [source for source in value if source not in known_sources()]
        if unknown:
            raise ValueError(f"unknown source {unknown[0][:40]!r}; known: {known_sources()}")
        return value


class WebhookView(BaseModel):
    id: str
    url: str = Field(description="Without credentials or query, which may carry a token.")
    signed: bool = Field(description="Whether a secret signs each POST (it is never shown).")
    events: list[str]
    sources: list[str]
    statuses: list[str]
    created: datetime | None

    @classmethod
    def of(cls, subscription: WebhookSubscription) -> WebhookView:
        return cls(
            id=subscription.id,
            url=subscription.shown_url,
            signed=bool(subscription.secret),
            events=list(subscription.events),
            sources=list(subscription.sources),
            statuses=list(subscription.statuses),
            created=subscription.created,
        )


class WebhookCreated(WebhookView):
    secret: str | None = Field(
        default=None,
        description="The secret generated for a subscription made without one, shown this "
        "once: keep it to check each POST's X-Backfill-Signature. Null when you sent one.",
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses={409: {"description": "Too many webhooks: delete one first"}},
)
async def create_webhook(body: WebhookRequest, services: ServicesDep) -> WebhookCreated:
    """Every job that ends and matches the filters is POSTed to `url`, retried with backoff;
    each delivery is recorded in the job's events (`job.webhook`)."""
    given = "" if body.secret is None else body.secret.get_secret_value()
    try:
        subscription = await add_webhook(
            services.redis,
            services.commands.names,
            body.url,
            given,
            events=body.events,
            sources=body.sources,
            statuses=body.statuses,
        )
    except TooManyWebhooksError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, str(error)) from error
    generated = None if given else subscription.secret
    return WebhookCreated(**WebhookView.of(subscription).model_dump(), secret=generated)


@router.get("", response_model=list[WebhookView])
async def list_webhooks(services: ServicesDep) -> list[WebhookView]:
    """Every subscription, oldest first (the console's own has the id `console`)."""
    found = await read_webhooks(services.redis, services.commands.names)
    return [WebhookView.of(subscription) for subscription in found]


@router.get("/{webhook_id}", response_model=WebhookView, responses={404: _NOT_FOUND})
async def get_webhook(webhook_id: str, services: ServicesDep) -> WebhookView:
    subscription = await read_webhook(services.redis, services.commands.names, webhook_id)
    if subscription is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id[:64]!r}")
    return WebhookView.of(subscription)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: _NOT_FOUND})
async def remove_webhook(webhook_id: str, services: ServicesDep) -> Response:
    """Deliveries already under way finish; no new ones start."""
    if not await delete_webhook(services.redis, services.commands.names, webhook_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no webhook {webhook_id[:64]!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)

"""Redis Streams plumbing shared by every Backfill service: names, wire format, logs, commands."""

from backfill_bus.cancellation import (
    CancelResult,
    Taken,
    cancel_key,
    cancel_reason,
    mark_submitted,
    reason_of,
    request_cancel,
    submitted_key,
    take_ownership,
)
from backfill_bus.codec import body_of, encode
from backfill_bus.commands import CommandBus, Submission, queued_key, queued_submission
from backfill_bus.dead_letters import dead_letter
from backfill_bus.event_log import EventLog
from backfill_bus.gateway import (
    GatewayEndpoint,
    clear_gateway_endpoint,
    read_gateway_endpoint,
    write_gateway_endpoint,
)
from backfill_bus.groups import ensure_command_group, ensure_events_group, ensure_group
from backfill_bus.idempotency import (
    DEFAULT_IDEMPOTENCY_TTL_S,
    IdempotencyConflictError,
    KeyClaim,
    claim_for_command,
    fingerprint,
)
from backfill_bus.maintenance import (
    RetentionSettings,
    cleanup_request,
    finished_before,
    period_of,
    request_cleanup,
    request_cleanup_once,
    trim_commands,
    trim_events,
)
from backfill_bus.names import EVENTS_GROUP, Names
from backfill_bus.settings import RedisSettings
from backfill_bus.webhooks import (
    CONSOLE_WEBHOOK_ID,
    SIGNATURE_HEADER,
    SUBSCRIPTION_HEADER,
    TooManyWebhooksError,
    WebhookSubscription,
    add_webhook,
    clear_console_webhook,
    delete_webhook,
    read_webhook,
    read_webhooks,
    sign,
    signature_matches,
    write_console_webhook,
)

__all__ = [
    "CONSOLE_WEBHOOK_ID",
    "DEFAULT_IDEMPOTENCY_TTL_S",
    "EVENTS_GROUP",
    "SIGNATURE_HEADER",
    "SUBSCRIPTION_HEADER",
    "CancelResult",
    "CommandBus",
    "EventLog",
    "GatewayEndpoint",
    "IdempotencyConflictError",
    "KeyClaim",
    "Names",
    "RedisSettings",
    "RetentionSettings",
    "Submission",
    "Taken",
    "TooManyWebhooksError",
    "WebhookSubscription",
    "add_webhook",
    "body_of",
    "cancel_key",
    "cancel_reason",
    "claim_for_command",
    "cleanup_request",
    "clear_console_webhook",
    "clear_gateway_endpoint",
    "dead_letter",
    "delete_webhook",
    "encode",
    "ensure_command_group",
    "ensure_events_group",
    "ensure_group",
    "fingerprint",
    "finished_before",
    "mark_submitted",
    "period_of",
    "queued_key",
    "queued_submission",
    "read_gateway_endpoint",
    "read_webhook",
    "read_webhooks",
    "reason_of",
    "request_cancel",
    "request_cleanup",
    "request_cleanup_once",
    "sign",
    "signature_matches",
    "submitted_key",
    "take_ownership",
    "trim_commands",
    "trim_events",
    "write_console_webhook",
    "write_gateway_endpoint",
]

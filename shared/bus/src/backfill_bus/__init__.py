"""Redis Streams plumbing shared by every Backfill service: names, wire format, logs, commands."""

from backfill_bus.cancellation import (
    CancelResult,
    cancel_reason,
    mark_submitted,
    request_cancel,
    take_ownership,
)
from backfill_bus.codec import body_of, encode
from backfill_bus.commands import CommandBus
from backfill_bus.dead_letters import dead_letter
from backfill_bus.event_log import EventLog
from backfill_bus.gateway import (
    GatewayEndpoint,
    clear_gateway_endpoint,
    read_gateway_endpoint,
    write_gateway_endpoint,
)
from backfill_bus.groups import ensure_command_group, ensure_events_group, ensure_group
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
    SIGNATURE_HEADER,
    WebhookSubscription,
    clear_webhooks,
    read_webhooks,
    sign,
    signature_matches,
    write_webhook,
)

__all__ = [
    "EVENTS_GROUP",
    "SIGNATURE_HEADER",
    "CancelResult",
    "CommandBus",
    "EventLog",
    "GatewayEndpoint",
    "Names",
    "RedisSettings",
    "RetentionSettings",
    "WebhookSubscription",
    "body_of",
    "cancel_reason",
    "cleanup_request",
    "clear_gateway_endpoint",
    "clear_webhooks",
    "dead_letter",
    "encode",
    "ensure_command_group",
    "ensure_events_group",
    "ensure_group",
    "finished_before",
    "mark_submitted",
    "period_of",
    "read_gateway_endpoint",
    "read_webhooks",
    "request_cancel",
    "request_cleanup",
    "request_cleanup_once",
    "sign",
    "signature_matches",
    "take_ownership",
    "trim_commands",
    "trim_events",
    "write_gateway_endpoint",
    "write_webhook",
]

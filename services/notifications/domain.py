"""Notification and webhook rules: who hears about what, signing, retries. Pure, no I/O.

People get messages about their own records; an organization's webhook subscriptions hear only
about records that organization submitted (``organization_id`` on the event); a partner's only
about its own feed. Partner-feed rules live in :mod:`services.notifications.feed`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from ler.access import AccessChanged, access_change

PRODUCER = "notifications"
_NS = uuid.UUID("6f1c1f4e-6c3b-4a57-9a36-0d5c3b8f4b21")

# The documented list of webhook event types (docs/notifications.md), with what each one means.
ORGANIZATION_EVENT_TYPES: dict[str, str] = {
    "record.queued_for_review": "a record you submitted went to the human review queue",
    "record.verified": "a record you submitted was verified (a credential was issued)",
    "record.rejected": "a record you submitted was rejected (with a reason code)",
    "credential.revoked": "a credential for a record you submitted was revoked",
    "credential.reinstated": "a revoked credential for a record you submitted was reinstated",
    "credential.suspended": "a credential for a record you submitted was put on hold (suspended)",
    "credential.suspension_lifted": "a suspended credential for a record you submitted is in "
    "force again",
    "appeal.filed": "the person appealed a decision on a record you submitted",
    "appeal.decided": "an appeal on a record you submitted was decided",
    "sla.warning": "a record you submitted is close to its review deadline",
    "sla.breached": "a record you submitted passed its review deadline",
}
PARTNER_EVENT_TYPES: dict[str, str] = {
    "partner_feed.record_published": "a de-identified record was added to your feed",
    "partner_feed.record_retracted": "a person withdrew consent; drop this pseudonymous id",
}
WEBHOOK_EVENT_TYPES: dict[str, str] = {**ORGANIZATION_EVENT_TYPES, **PARTNER_EVENT_TYPES}

# Source event -> webhook event type (organizations only: partners hear about their feed).
SOURCE_EVENT_TYPES: dict[str, str] = {
    "RecordQueuedForReview": "record.queued_for_review",
    "RecordVerified": "record.verified",
    "RecordRejected": "record.rejected",
    "CredentialRevoked": "credential.revoked",
    "CredentialReinstated": "credential.reinstated",
    "CredentialSuspended": "credential.suspended",
    "CredentialSuspensionLifted": "credential.suspension_lifted",
    "AppealFiled": "appeal.filed",
    "AppealDecided": "appeal.decided",
    "SlaWarning": "sla.warning",
    "SlaBreached": "sla.breached",
}
# Fields of a source event a subscriber may see, besides the envelope's id and time.
WEBHOOK_FIELDS = (
    "record_id",
    "person_id",
    "record_type",
    "organization_id",
    "credential_id",
    "credential_type",
    "reason_code",
    "reason",
    "appeal_id",
    "decision",
    "item_id",
    "queue",
    "submitted_at",
    "deadline",
    "elapsed_seconds",
)

# Messages to people: the kind names a pair of templates (``templates/<kind>.txt|.html``).
NOTICE_KINDS: dict[str, str] = {
    "record.verified": "one of your records was verified",
    "record.rejected": "one of your records was rejected, with the reason and how to appeal",
    "credential.revoked": "one of your credentials was revoked, with how to appeal",
    "credential.suspended": "one of your credentials was suspended, with the reason and how to "
    "appeal",
    "credential.suspension_lifted": "the suspension of one of your credentials was lifted",
    "appeal.decided": "an appeal you filed was decided",
    "share.opened": "someone opened a share you created",
    "sla.breached": "the review of your record is taking longer than promised",
}
# Due process: a person is always told about a decision against them and how to appeal it.
REQUIRED_NOTICES = frozenset({"record.rejected", "credential.revoked", "credential.suspended"})
SOURCE_NOTICES: dict[str, str] = {
    "RecordVerified": "record.verified",
    "RecordRejected": "record.rejected",
    "CredentialRevoked": "credential.revoked",
    "CredentialSuspended": "credential.suspended",
    "CredentialSuspensionLifted": "credential.suspension_lifted",
    "AppealDecided": "appeal.decided",
    "ShareOpened": "share.opened",
    "SlaBreached": "sla.breached",
}
NOTICE_FIELDS = (
    "record_id",
    "record_type",
    "credential_id",
    "credential_type",
    "reason_code",
    "note",
    "reason",
    "appeal_id",
    "decision",
    "queue",
    "submitted_at",
    "deadline",
    "share_id",
    "audience",
    "opened_at",
)

# Human words for the review reason codes; an unknown code is shown as it is.
#: Suspension and lift reason codes in words (the verification service's codes, docs/verification.md).
SUSPENSION_TEXT: dict[str, str] = {
    "under_investigation": "the registry is checking whether the record is right",
    "disputed": "the issuer or you dispute the record",
    "evidence_requested": "the registry asked for evidence and is waiting for it",
    "investigation_closed": "the check found the record right",
    "dispute_resolved": "the dispute was settled in the record's favour",
    "evidence_received": "the evidence asked for arrived",
    "appeal_upheld": "your appeal was upheld",
    "other": "see the note",
}
REASON_TEXT: dict[str, str] = {
    "insufficient_evidence": "the evidence provided was not enough to confirm the record",
    "issuer_unverifiable": "we could not confirm the record with its issuer",
    "duplicate": "the record duplicates one already in your wallet",
    "invalid_dates": "the dates on the record do not add up",
    "not_eligible": "the record is not eligible for this registry",
    "other": "see the reviewer's note",
}


class NotificationRuleError(ValueError):
    """An event the notifications processor cannot accept (it is dead-lettered)."""


@dataclass(frozen=True, slots=True)
class PersonKnown:
    person_id: str
    email: str
    given_name: str
    token_sha256: str


@dataclass(frozen=True, slots=True)
class OrganizationKnown:
    organization_id: str
    name: str
    kind: str
    api_key_sha256: str | None


@dataclass(frozen=True, slots=True)
class RecordKnown:
    record_id: str
    person_id: str
    title: str
    submitted_by: str


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to a person, to be rendered and sent after the transaction commits."""

    message_id: str
    person_id: str
    kind: str
    event_id: str
    context: dict[str, Any]
    #: The record transition's ``record_version``: a notice below one already given is stale.
    record_version: int | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """An event an organization's (or partner's) subscriptions of this type should receive."""

    event_id: str
    organization_id: str
    event_type: str
    occurred_at: str
    data: dict[str, Any] = field(default_factory=dict)


NotificationChange = (
    PersonKnown | OrganizationKnown | RecordKnown | Notice | WebhookEvent | AccessChanged
)


def notification_changes(
    event_type: str, record: Mapping[str, Any], key: bytes | None
) -> list[NotificationChange]:
    """What one decoded event means for people's messages and partners' webhooks."""
    access = access_change(event_type, record)
    if access is not None:
        return [access]
    if event_type == "PersonEnrolled":
        person_id = _keyed(record, "person_id", key)
        return [
            PersonKnown(
                person_id=person_id,
                email=str(record["email"]),
                given_name=str(record["given_name"]),
                token_sha256=str(record["access_token_sha256"]),
            )
        ]
    if event_type == "OrganizationRegistered":
        return [
            OrganizationKnown(
                organization_id=str(record["organization_id"]),
                name=str(record["name"]),
                kind=str(record["kind"]),
                api_key_sha256=record.get("api_key_sha256"),
            )
        ]
    if event_type.endswith("RecordSubmitted"):
        person_id = _keyed(record, "person_id", key)
        return [
            RecordKnown(
                record_id=str(record["record_id"]),
                person_id=person_id,
                title=str(record["title"]),
                submitted_by=str(record["submitted_by"]),
            )
        ]
    changes: list[NotificationChange] = []
    if event_type in SOURCE_NOTICES or event_type in SOURCE_EVENT_TYPES:
        person_id = _keyed(record, "person_id", key)
        event_id = str(record["event_id"])
        kind = SOURCE_NOTICES.get(event_type)
        if kind is not None:
            context = {name: plain(record[name]) for name in NOTICE_FIELDS if name in record}
            changes.append(
                Notice(
                    message_id_for(event_id, person_id, kind),
                    person_id,
                    kind,
                    event_id,
                    context,
                    _version(record),
                )
            )
        webhook_type = SOURCE_EVENT_TYPES.get(event_type)
        organization_id = record.get("organization_id")
        if webhook_type is not None and organization_id:
            changes.append(
                WebhookEvent(
                    event_id,
                    str(organization_id),
                    webhook_type,
                    plain(record["occurred_at"]),
                    webhook_data(record),
                )
            )
    return changes


def _version(record: Mapping[str, Any]) -> int | None:
    """A record transition's version (None for events that are not one)."""
    version = record.get("record_version")
    return int(version) if version is not None and record.get("record_id") else None


def webhook_data(record: Mapping[str, Any]) -> dict[str, Any]:
    data = {name: plain(record[name]) for name in WEBHOOK_FIELDS if record.get(name) is not None}
    data["event_id"] = str(record["event_id"])
    return data


def webhook_body(event: WebhookEvent) -> dict[str, Any]:
    """The delivered JSON, in the Standard Webhooks shape: ``type``, ``timestamp``, ``data``."""
    return {"type": event.event_type, "timestamp": event.occurred_at, "data": event.data}


def message_id_for(event_id: str, person_id: str, kind: str) -> str:
    """Stable id of the message an event gives a person (redelivery finds the same row)."""
    return str(uuid.uuid5(_NS, f"message|{event_id}|{person_id}|{kind}"))


def webhook_id_for(subscription_id: str, event_id: str) -> str:
    """The ``webhook-id`` of one event to one subscription: the same on every attempt."""
    return "msg_" + uuid.uuid5(_NS, f"webhook|{subscription_id}|{event_id}").hex


def _keyed(record: Mapping[str, Any], name: str, key: bytes | None) -> str:
    value = str(record[name])
    if key is None or key.decode("utf-8", "replace") != value:
        raise NotificationRuleError(
            f"{name}: message key must equal the {name} (per-person ordering depends on it)"
        )
    return value


def plain(value: Any) -> Any:
    """A JSON-ready form of a decoded Avro value."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------- Standard Webhooks signing


def new_webhook_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def retry_delay(attempts: int, base: float, cap: float, rand: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures: exponential, half jitter.

    ``rand`` is a uniform draw from [0, 1): the delay lies in [d/2, d) of d = base * 2^(n-1),
    so receivers that failed together do not all come back at the same instant.
    """
    exponential: float = min(cap, base * 2.0 ** max(0, attempts - 1))
    return exponential * (0.5 + rand / 2)


def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why a webhook URL is not acceptable, or None."""
    if len(url) > 2000:
        return "must be at most 2000 characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "must be a valid URL"
    if parts.scheme not in {"http", "https"}:
        return "must be an http or https URL"
    if not host:
        return "must name a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.fragment:
        return "must not have a fragment"
    if not allow_private:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # A name is checked again where it matters: the addresses it resolves to, when
            # each delivery is sent (services/notifications/destinations.py).
            if host.rstrip(".") == "localhost" or host.rstrip(".").endswith(".localhost"):
                return "must not point at this machine"
            return None
        if not is_public_address(host):
            return "must not point at a private, loopback or reserved address"
    return None


def is_public_address(text: str) -> bool:
    """Whether an IP address (text) is a public unicast one: not loopback, private, link-local
    (cloud metadata at 169.254.169.254), shared (100.64/10), reserved or multicast; IPv4 mapped
    into IPv6 (``::ffff:127.0.0.1``) is judged as the IPv4 address it carries."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def event_types_problem(event_types: list[str], organization_kind: str) -> str | None:
    """Why an organization may not subscribe to these types (partners get only their feed)."""
    unknown = [t for t in event_types if t not in WEBHOOK_EVENT_TYPES]
    if unknown:
        return f"unknown event type(s) {', '.join(sorted(set(unknown)))}; see the documented list"
    allowed = PARTNER_EVENT_TYPES if organization_kind == "partner" else ORGANIZATION_EVENT_TYPES
    refused = [t for t in event_types if t not in allowed]
    if refused:
        who = "a partner" if organization_kind == "partner" else "an issuing organization"
        return f"{who} cannot subscribe to {', '.join(sorted(set(refused)))}"
    return None


# ---------------------------------------------------------------- preferences


def preferences_problems(events: Mapping[str, bool]) -> list[tuple[str, str]]:
    """``(field, rule)`` problems of a person's per-kind preferences."""
    problems = []
    for kind, wanted in events.items():
        if kind not in NOTICE_KINDS:
            problems.append((f"events.{kind}", "not a notification kind"))
        elif kind in REQUIRED_NOTICES and not wanted:
            problems.append((f"events.{kind}", "due-process notices cannot be turned off"))
    return problems


def wants(kind: str, email_enabled: bool, events: Mapping[str, bool]) -> bool:
    """Whether the person wants this message by e-mail (required notices always go)."""
    if kind in REQUIRED_NOTICES:
        return True
    return email_enabled and events.get(kind, True)

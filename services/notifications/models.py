"""Request and response bodies of the notifications API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=60)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SubscriptionIn(Strict):
    url: Url = Field(description="Where deliveries are POSTed: an http or https URL.")
    event_types: Annotated[list[EventType], Field(min_length=1, max_length=20)] = Field(
        description="Event types from GET /v1/webhook-event-types."
    )


class SubscriptionOut(BaseModel):
    subscription_id: UUID
    url: str
    event_types: list[str]
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="whsec_<base64>: the Standard Webhooks signing key. Shown once; keep it."
    )


class DeliveryOut(BaseModel):
    delivery_id: str = Field(description="The webhook-id: the same on every attempt.")
    subscription_id: UUID
    event_type: str
    event_id: UUID
    state: str = Field(
        description="pending (first try or retry scheduled), delivered, dead, or replayed "
        "(rebuilt by `ler replay notifications`; sent only if retried)"
    )
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    deliveries: list[DeliveryOut]
    next: str | None = Field(description="Pass as ?before= for the next (older) page.")


class PreferencesIn(Strict):
    # Strict: 0 or "no" is not a yes-or-no answer (the schema says boolean).
    email: StrictBool = Field(default=True, description="Receive e-mail at all.")
    events: dict[EventType, StrictBool] = Field(
        default_factory=dict,
        description="Per kind of message; a kind left out is on. Due-process notices "
        "(record.rejected, credential.revoked, credential.suspended) are always sent.",
    )


class PreferencesOut(BaseModel):
    person_id: UUID
    email: bool
    events: dict[str, bool]
    always_sent: list[str]


class AgreementIn(Strict):
    partner_id: UUID
    elements: Annotated[list[EventType], Field(min_length=1, max_length=50)] = Field(
        description="Core data elements from GET /v1/partner-feed-elements."
    )


class AgreementOut(BaseModel):
    partner_id: UUID
    elements: list[str]
    version: int

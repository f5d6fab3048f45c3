"""The public topics of the platform (a stable contract: clients are written against these names)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic of the public contract and how it is keyed."""

    name: str
    key: str
    description: str
    compacted: bool = False


ENROLLMENT = Topic("ler.enrollment.v1", "person_id", "persons, organizations and consents")
RECORDS = Topic("ler.records.v1", "person_id", "employment, learning and credential records")
VERIFICATION = Topic("ler.verification.v1", "person_id", "review decisions, credentials, appeals")
SLA = Topic("ler.sla.v1", "person_id", "processing-time warnings, breaches and met deadlines")
NOTIFICATIONS = Topic("ler.notifications.v1", "person_id", "messages to people and partners")
PARTNER_FEED = Topic(
    "ler.partner-feed.v1", "pseudonymous_id", "de-identified, consented core data elements"
)
DLQ = Topic("ler.dlq.v1", "original key", "original bytes, headers and the error")

ALL_TOPICS: tuple[Topic, ...] = (
    ENROLLMENT,
    RECORDS,
    VERIFICATION,
    SLA,
    NOTIFICATIONS,
    PARTNER_FEED,
    DLQ,
)

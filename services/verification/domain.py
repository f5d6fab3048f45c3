"""Verification rules: the policy that routes records, review and appeal transitions, who may do
what. Pure functions and dataclasses (standard library and kit types only), tested without I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ler.access import AccessChanged, access_change

PRODUCER = "verification"

AUTO = "auto_verification"
REVIEW = "manual_review"
APPEAL = "appeal"
QUEUES = (AUTO, REVIEW, APPEAL)
ROUTES = (AUTO, REVIEW)

RECORD_EVENTS = {
    "EmploymentRecordSubmitted": "employment",
    "LearningRecordSubmitted": "learning",
    "CredentialRecordSubmitted": "credential",
}
RECORD_TYPES = tuple(RECORD_EVENTS.values())
ORGANIZATION_KINDS = ("employer", "training_provider", "partner")
SUBMITTER_KINDS = ("organization", "person")

#: Reasons a reviewer may give for a rejection (documented in docs/verification.md).
REASON_CODES = {
    "insufficient_evidence": "The evidence given does not show what the record claims.",
    "not_confirmed_by_issuer": "The organization named in the record did not confirm it.",
    "duplicate": "The same record is already in the registry.",
    "outside_registry_scope": "The record is not one the registry keeps.",
    "other": "Another reason, explained in the note.",
}

# Record states in the verification service.
AWAITING_ISSUER = "awaiting_issuer"  # submitted by an organization the service has not seen yet
PENDING = "pending"
VERIFIED = "verified"
REJECTED = "rejected"
REVOKED = "revoked"
SUSPENDED = "suspended"  # verified, its credential on hold (its suspension bit set)
RECORD_STATES = (AWAITING_ISSUER, PENDING, VERIFIED, REJECTED, REVOKED, SUSPENDED)

FIELDS = {"submitter_kind", "organization_kind", "record_type", "organization_id"}

#: The rule name of a record an organization submitted about a person it is not affiliated with
#: (docs/verification.md): it goes to review whatever the policy document says.
UNAFFILIATED_RULE = "unaffiliated-organization"

#: Why a record was rejected when its person declined it (never a reviewer's reason code).
DECLINED_BY_PERSON = "declined_by_person"


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names the place and the rule."""


class TransitionError(Exception):
    """A command that the record's or appeal's current state does not allow (a 4xx)."""

    def __init__(self, status: int, message: str, field: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.rule = rule


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """Records matching every given condition take ``route``; a missing condition matches all."""

    name: str
    route: str
    submitter_kind: str | None = None
    organization_kind: str | None = None
    record_type: str | None = None
    organization_id: str | None = None

    def matches(self, subject: RoutingSubject) -> bool:
        return all(
            wanted is None or wanted == actual
            for wanted, actual in (
                (self.submitter_kind, subject.submitter_kind),
                (self.organization_kind, subject.organization_kind),
                (self.record_type, subject.record_type),
                (self.organization_id, subject.organization_id),
            )
        )


@dataclass(frozen=True, slots=True)
class RoutingSubject:
    """What the policy looks at: who submitted what."""

    submitter_kind: str
    record_type: str
    organization_kind: str | None = None
    organization_id: str | None = None
    #: Intake found the organization affiliated with the person (``affiliated`` on the event).
    affiliated: bool = False


@dataclass(frozen=True, slots=True)
class Routing:
    queue: str
    rule: str


@dataclass(frozen=True, slots=True)
class Policy:
    """An ordered list of rules; the first that matches decides, else ``default``."""

    rules: tuple[PolicyRule, ...]
    default: str = REVIEW

    def route(self, subject: RoutingSubject) -> Routing:
        routing = next(
            (Routing(rule.route, rule.name) for rule in self.rules if rule.matches(subject)),
            Routing(self.default, "default"),
        )
        unaffiliated = subject.submitter_kind == "organization" and not subject.affiliated
        if routing.queue == AUTO and unaffiliated:
            # Whom an organization employs or trains is the person's (or an admin's) word, never
            # the organization's: no policy document can waive it.
            return Routing(REVIEW, UNAFFILIATED_RULE)
        return routing


def parse_policy(document: Any, source: str = "policy") -> Policy:
    """Build a :class:`Policy` from its JSON document, listing every problem at once."""
    problems: list[str] = []
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: must be a JSON object with rules and default")
    unknown = set(document) - {"rules", "default", "$comment"}
    if unknown:
        problems.append(f"{source}: unknown keys {sorted(unknown)}")
    default = document.get("default", REVIEW)
    if default not in ROUTES:
        problems.append(f"{source}.default: must be one of {', '.join(ROUTES)}")
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise PolicyError(f"{source}.rules: must be a list")
    allowed = {
        "submitter_kind": SUBMITTER_KINDS,
        "organization_kind": ORGANIZATION_KINDS,
        "record_type": RECORD_TYPES,
    }
    rules = []
    for i, raw in enumerate(raw_rules):
        where = f"{source}.rules[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be an object")
            continue
        extra = set(raw) - FIELDS - {"route", "name"}
        if extra:
            problems.append(f"{where}: unknown keys {sorted(extra)}")
        if raw.get("route") not in ROUTES:
            problems.append(f"{where}.route: must be one of {', '.join(ROUTES)}")
        for key, values in allowed.items():
            if key in raw and raw[key] not in values:
                problems.append(f"{where}.{key}: must be one of {', '.join(values)}")
        if "organization_id" in raw and not _is_uuid(raw["organization_id"]):
            problems.append(f"{where}.organization_id: must be a UUID")
        if raw.get("submitter_kind") == "person" and (
            "organization_kind" in raw or "organization_id" in raw
        ):
            problems.append(f"{where}: a rule for self-reported records names no organization")
        rules.append(
            PolicyRule(
                name=str(raw.get("name") or f"rules[{i}]"),
                route=str(raw.get("route")),
                submitter_kind=raw.get("submitter_kind"),
                organization_kind=raw.get("organization_kind"),
                record_type=raw.get("record_type"),
                organization_id=str(raw["organization_id"]).lower()
                if "organization_id" in raw
                else None,
            )
        )
    if problems:
        raise PolicyError("; ".join(problems))
    return Policy(tuple(rules), default)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- changes the processor derives from its input topics -----------------------------------


class VerificationRuleError(ValueError):
    """An input event the verification processor cannot accept (dead-lettered)."""


@dataclass(frozen=True, slots=True)
class PersonKnown:
    person_id: str
    token_sha256: str


@dataclass(frozen=True, slots=True)
class OrganizationKnown:
    organization_id: str
    name: str
    kind: str
    api_key_sha256: str | None


@dataclass(frozen=True, slots=True)
class RecordSubmitted:
    record_id: str
    person_id: str
    record_type: str
    submitter_kind: str
    submitted_by: str
    submitted_at: datetime
    correlation_id: str
    event_id: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def organization_id(self) -> str | None:
        return self.submitted_by if self.submitter_kind == "organization" else None

    @property
    def affiliated(self) -> bool:
        return record_affiliated(self.submitter_kind, self.data)


def record_affiliated(submitter_kind: str, data: dict[str, Any]) -> bool:
    """Whether intake found the submitting organization affiliated with the person (the record's
    ``affiliated`` field, kept in its data; false for events written before it existed)."""
    return submitter_kind == "organization" and data.get("affiliated") is True


VerificationChange = PersonKnown | OrganizationKnown | RecordSubmitted | AccessChanged


def changes_for(
    event_type: str, record: dict[str, Any], key: bytes | None
) -> list[VerificationChange]:
    """The changes one decoded input event implies; events the service ignores give []."""
    access = access_change(event_type, record)
    if access is not None:
        return [access]
    if event_type == "PersonEnrolled":
        return [PersonKnown(str(record["person_id"]), record["access_token_sha256"])]
    if event_type == "OrganizationRegistered":
        return [
            OrganizationKnown(
                organization_id=str(record["organization_id"]),
                name=record["name"],
                kind=record["kind"],
                api_key_sha256=record.get("api_key_sha256"),
            )
        ]
    if event_type in RECORD_EVENTS:
        person_id = str(record["person_id"])
        if key is None or key.decode("utf-8", "replace") != person_id:
            raise VerificationRuleError(
                "person_id: message key must equal the person_id (per-person ordering)"
            )
        return [
            RecordSubmitted(
                record_id=str(record["record_id"]),
                person_id=person_id,
                record_type=RECORD_EVENTS[event_type],
                submitter_kind=record["submitter_kind"],
                submitted_by=str(record["submitted_by"]),
                submitted_at=record["occurred_at"],
                correlation_id=record["correlation_id"],
                event_id=str(record["event_id"]),
                data=plain_record(record),
            )
        ]
    return []


_ENVELOPE = {"event_id", "event_type", "occurred_at", "producer", "correlation_id", "causation_id"}


def plain_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record's own fields as JSON-ready values (dates as ISO strings)."""
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name in _ENVELOPE:
            continue
        if isinstance(value, date | datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[name] = value
    return out


# --- who may do what ------------------------------------------------------------------------


def reviewer_actor(reviewer_id: str) -> str:
    return f"reviewer:{reviewer_id}"


def organization_actor(organization_id: str) -> str:
    return f"organization:{organization_id}"


def check_review_decision(state: str | None, decision: str, reason_code: str | None) -> None:
    """A reviewer decides a pending record: verified, or rejected with a listed reason code."""
    if decision == "rejected" and reason_code not in REASON_CODES:
        raise TransitionError(
            422,
            "a rejection needs a reason code",
            "reason_code",
            f"must be one of {', '.join(REASON_CODES)}",
        )
    if decision == "verified" and reason_code is not None and reason_code not in REASON_CODES:
        raise TransitionError(
            422,
            "unknown reason code",
            "reason_code",
            f"must be one of {', '.join(REASON_CODES)}",
        )
    if state is None:
        raise TransitionError(404, "no record with this id is known to verification")
    if state != PENDING:
        raise TransitionError(
            409,
            f"the record is not waiting for review (it is {state})",
            "record_id",
            "must be a record pending review",
        )


def check_decline(
    state: str | None, owner: str | None, caller: str, submitter_kind: str | None
) -> None:
    """A person declines a record an organization submitted about them while it waits for review."""
    if state is None or owner != caller:
        raise TransitionError(404, "no record with this id among yours")
    if submitter_kind != "organization":
        raise TransitionError(
            409,
            "only a record an organization submitted about you can be declined",
            "record_id",
            "must be a record submitted by an organization",
        )
    if state != PENDING:
        raise TransitionError(
            409,
            f"only a record waiting for review can be declined (this one is {state})",
            "record_id",
            "must be a record pending review",
        )


def appeal_of(state: str | None) -> str:
    """What an appeal of a record in ``state`` contests (404/409 when nothing can be)."""
    if state is None:
        raise TransitionError(404, "no record with this id is known to verification")
    if state == REJECTED:
        return "rejection"
    if state == REVOKED:
        return "revocation"
    if state == SUSPENDED:
        return "suspension"
    raise TransitionError(
        409,
        "only a rejected record or a revoked or suspended credential can be appealed "
        f"(this one is {state})",
        "record_id",
        "must be rejected, revoked or suspended",
    )


def check_appeal(
    state: str | None, owner: str | None, caller: str, open_or_decided_for_this_state: bool
) -> str:
    """The person who owns a rejected or revoked record may appeal it once per decision."""
    if state is None or owner != caller:
        # Someone else's record answers like a missing one: no hint that it exists.
        raise TransitionError(404, "no record with this id among yours")
    contested = appeal_of(state)
    if open_or_decided_for_this_state:
        raise TransitionError(
            409,
            f"this {contested} has been appealed already",
            "record_id",
            "one appeal per decision",
        )
    return contested


def check_appeal_decision(appeal_state: str | None, decider: str, original_decider: str) -> None:
    """An appeal is decided once, and not by the reviewer whose decision it contests."""
    if appeal_state is None:
        raise TransitionError(404, "no appeal with this id")
    if appeal_state != "pending":
        raise TransitionError(
            409,
            f"the appeal was decided already ({appeal_state})",
            "appeal_id",
            "must be a pending appeal",
        )
    if decider.startswith("reviewer:") and decider == original_decider:
        raise TransitionError(
            403,
            "an appeal is decided by someone other than the reviewer who made the decision",
        )


def check_revocation(
    state: str | None, caller: str, issuing_organization: str | None, is_admin: bool
) -> None:
    """An admin, or the organization that submitted the record, revokes a verified (or
    suspended) credential."""
    if state is None:
        raise TransitionError(404, "no credential with this id")
    if not is_admin and caller != issuing_organization:
        # Another organization's credential answers like a missing one.
        raise TransitionError(404, "no credential with this id")
    if state not in (VERIFIED, SUSPENDED):
        raise TransitionError(
            409,
            f"the credential is not in force (its record is {state})",
            "credential_id",
            "must be a credential in force",
        )

"""Wallet rules: what each event changes in a person's wallet. Pure functions, no I/O."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from ler.access import AccessChanged, access_change
from ler.credentials import build_presentation
from ler.envelope import event, new_envelope
from ler.skills import (
    EvidenceSource,
    RecordInput,
    RecordType,
    RoleProfile,
    SkillEvidence,
    Taxonomy,
    collect_skills,
    match,
    skills_for_record,
)

RECORD_EVENTS = {
    "EmploymentRecordSubmitted": "employment",
    "LearningRecordSubmitted": "learning",
    "CredentialRecordSubmitted": "credential",
}
COMMON_FIELDS = {
    "event_id",
    "event_type",
    "occurred_at",
    "producer",
    "correlation_id",
    "causation_id",
    "record_id",
    "person_id",
    "submitted_by",
    "submitter_kind",
    "title",
    "affiliated",  # intake's routing input for verification, not part of the record
}


class WalletRuleError(ValueError):
    """An event the wallet cannot accept (it is dead-lettered with this message)."""


@dataclass(frozen=True, slots=True)
class PersonJoined:
    person_id: str
    display_name: str
    token_sha256: str
    enrolled_at: datetime
    #: Demographic fields of the enrollment (birth date, county, education level, the optional
    #: demographics map): kept apart and never in a share unless the owner includes them.
    demographics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrganizationKnown:
    organization_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class RecordAdded:
    record_id: str
    person_id: str
    type: str
    title: str
    submitted_by: str
    submitter_kind: str
    submitted_at: datetime
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class VerificationSeen:
    """One transition of a record's verification (``ler.verification.v1``), kept whole: the
    record's status is folded from all of them in ``record_version`` order, so a redelivered or
    late event never moves a status backwards."""

    record_id: str
    person_id: str
    version: int
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]


WalletChange = PersonJoined | OrganizationKnown | RecordAdded | VerificationSeen | AccessChanged

VERIFICATION_EVENTS = {
    "RecordQueuedForReview",
    "RecordVerified",
    "RecordRejected",
    "CredentialRevoked",
    "CredentialReinstated",
    "CredentialSuspended",
    "CredentialSuspensionLifted",
    "AppealFiled",
    "AppealDecided",
}
_STATUS_FIELDS = (
    "queue",
    "policy_rule",
    "credential_id",
    "credential_type",
    "credential",
    "reason_code",
    "note",
    "reason",
    "appeal_id",
    "appeal_of",
    "statement",
    "decision",
)


def changes_for(event_type: str, record: dict[str, Any], key: bytes | None) -> list[WalletChange]:
    """The wallet changes one decoded event implies; events the wallet doesn't show give []."""
    access = access_change(event_type, record)
    if access is not None:
        return [access] if access.kind == "person" else []
    if event_type == "PersonEnrolled":
        person_id = _same_key(record, "person_id", key)
        return [
            PersonJoined(
                person_id=person_id,
                display_name=f"{record['given_name']} {record['family_name']}",
                token_sha256=record["access_token_sha256"],
                enrolled_at=record["occurred_at"],
                demographics=demographics_of(record),
            )
        ]
    if event_type == "OrganizationRegistered":
        return [
            OrganizationKnown(
                organization_id=str(record["organization_id"]),
                name=record["name"],
                kind=record["kind"],
            )
        ]
    if event_type in VERIFICATION_EVENTS:
        person_id = _same_key(record, "person_id", key)
        data = {k: record[k] for k in _STATUS_FIELDS if record.get(k) is not None}
        for name in ("credential_id", "appeal_id"):
            if name in data:
                data[name] = str(data[name])
        return [
            VerificationSeen(
                record_id=str(record["record_id"]),
                person_id=person_id,
                version=int(record["record_version"]),
                event_type=event_type,
                occurred_at=record["occurred_at"],
                data=data,
            )
        ]
    if event_type in RECORD_EVENTS:
        person_id = _same_key(record, "person_id", key)
        return [
            RecordAdded(
                record_id=str(record["record_id"]),
                person_id=person_id,
                type=RECORD_EVENTS[event_type],
                title=record["title"],
                submitted_by=record["submitted_by"],
                submitter_kind=record["submitter_kind"],
                submitted_at=record["occurred_at"],
                details=_details(record),
            )
        ]
    return []


def _same_key(record: dict[str, Any], field: str, key: bytes | None) -> str:
    value = str(record[field])
    if key is None or key.decode("utf-8", "replace") != value:
        raise WalletRuleError(
            f"{field}: message key must equal the {field} (per-person ordering depends on it)"
        )
    return value


def _details(record: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    for name, value in record.items():
        if name in COMMON_FIELDS or value is None or value == [] or value == {}:
            continue
        if isinstance(value, date | datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        details[name] = value
    return details


def record_status(transitions: list[tuple[int, str, str, dict[str, Any]]]) -> dict[str, Any]:
    """A record's status from its verification transitions ``(version, event_type, occurred_at,
    data)``, applied in version order (whatever order they arrived in).

    ``submitted`` until the verification service decides; then ``in_review``, ``verified`` (with
    the credential and its id), ``rejected`` (with the reason and the appeal's state),
    ``revoked`` or ``suspended`` (on hold, with the reason; back to ``verified`` when lifted).
    """
    out: dict[str, Any] = {"status": "submitted"}
    for _, event_type, at, data in sorted(transitions, key=lambda t: t[0]):
        if event_type == "RecordQueuedForReview":
            out["status"] = "in_review"
            if data.get("policy_rule"):
                # Why it waits, e.g. "unaffiliated-organization": the person may decline it.
                out["review_reason"] = data["policy_rule"]
        elif event_type == "RecordVerified":
            out.update(
                status="verified",
                verified_at=at,
                credential_id=data["credential_id"],
                credential_type=data.get("credential_type"),
                credential=json.loads(data["credential"]) if data.get("credential") else None,
            )
            out.pop("rejection", None)
            out.pop("review_reason", None)
            out.pop("revocation", None)  # an upheld appeal of a revocation: a new credential
            out.pop("suspension", None)
        elif event_type == "RecordRejected":
            out["status"] = "rejected"
            out.pop("review_reason", None)
            out["rejection"] = {
                "reason_code": data.get("reason_code"),
                "note": data.get("note"),
                "rejected_at": at,
            }
        elif event_type == "CredentialRevoked":
            out["status"] = "revoked"
            out["revocation"] = {"reason": data.get("reason"), "revoked_at": at}
            out.pop("suspension", None)  # revoked while on hold: the revocation is what stands
        elif event_type == "CredentialReinstated":
            out["status"] = "verified"
            out.pop("revocation", None)
        elif event_type == "CredentialSuspended":
            out["status"] = "suspended"
            out["suspension"] = {
                "reason_code": data.get("reason_code"),
                "note": data.get("note"),
                "suspended_at": at,
            }
        elif event_type == "CredentialSuspensionLifted":
            # The same credential is in force again (a revoked one never gets here).
            if out.get("status") == "suspended":
                out["status"] = "verified"
            out.pop("suspension", None)
        elif event_type == "AppealFiled":
            out["appeal"] = {
                "appeal_id": data.get("appeal_id"),
                "appeal_of": data.get("appeal_of"),
                "state": "pending",
                "filed_at": at,
            }
        elif event_type == "AppealDecided":
            appeal = out.setdefault("appeal", {"appeal_id": data.get("appeal_id")})
            appeal.update(
                appeal_of=data.get("appeal_of"),
                state=data.get("decision"),
                note=data.get("note"),
                decided_at=at,
            )
    return out


# --- demographics ----------------------------------------------------------------------------

#: Fields of ``PersonEnrolled`` that describe the person rather than their records. Hiring equity:
#: none of them is ever in a share unless the owner explicitly includes them.
DEMOGRAPHIC_FIELDS = ("birth_date", "county", "education_level", "demographics")


def demographics_of(record: dict[str, Any]) -> dict[str, Any]:
    """The demographic fields of a ``PersonEnrolled`` event, JSON-ready (empty ones left out)."""
    out: dict[str, Any] = {}
    for name in DEMOGRAPHIC_FIELDS:
        value = record.get(name)
        if value is None or value == {} or value == "":
            continue
        out[name] = value.isoformat() if isinstance(value, date) else value
    return out


# --- skills ----------------------------------------------------------------------------------


def skill_input(record: dict[str, Any]) -> RecordInput:
    """What the skills rules read from one wallet record (its details and folded status).

    Only a record whose verification stands (``verified``: not revoked, not rejected) counts as
    verified evidence.
    """
    return RecordInput(
        record_id=record["record_id"],
        record_type=RecordType(record["type"]),
        verified=record.get("status") == "verified",
        title=record.get("title"),
        soc_code=record.get("soc_code"),
        competencies=tuple(record.get("competencies") or ()),
        credential_type=record.get("credential_type"),
        credential_id=record.get("credential_id") if record.get("status") == "verified" else None,
    )


def evidence_rows(record: dict[str, Any], taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """The skill evidence of one record as rows for the projection (one per skill)."""
    return [
        {
            "skill_id": e.skill_id,
            "record_id": e.record_id,
            "verified": e.verified,
            "source": str(e.source),
            "matched_on": e.matched_on,
            "credential_id": e.credential_id,
        }
        for e in skills_for_record(skill_input(record), taxonomy)
    ]


def evidence_from_rows(
    rows: list[dict[str, Any]], record_types: dict[str, str]
) -> list[SkillEvidence]:
    """Stored evidence rows back into :class:`SkillEvidence` (what :func:`match` takes)."""
    return [
        SkillEvidence(
            skill_id=row["skill_id"],
            record_id=row["record_id"],
            record_type=RecordType(record_types.get(row["record_id"], "credential")),
            verified=bool(row["verified"]),
            source=EvidenceSource(row["source"]),
            matched_on=row["matched_on"],
            credential_id=row.get("credential_id"),
        )
        for row in rows
    ]


def skills_summary(evidence: list[SkillEvidence], taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """A person's skills, each with the records (and credentials) that support it."""
    out = []
    for skill in collect_skills(evidence):
        known = taxonomy.skills.get(skill.skill_id)
        out.append(
            {
                "skill_id": skill.skill_id,
                "name": known.name if known else skill.skill_id,
                "framework": known.framework if known else None,
                "verified": skill.verified,
                "record_ids": list(skill.record_ids),
                "credential_ids": sorted(
                    {e.credential_id for e in skill.evidence if e.verified and e.credential_id}
                ),
                "unverified_record_ids": list(skill.unverified_record_ids),
            }
        )
    return out


def match_view(
    role: RoleProfile, evidence: list[SkillEvidence], taxonomy: Taxonomy
) -> dict[str, Any]:
    """``match`` as the API answers it: each matched skill names its supporting credential(s)."""
    result = match(role, evidence).as_dict(taxonomy)
    result["role_title"] = role.title
    return result


# --- shares ----------------------------------------------------------------------------------

MIN_SHARE_SECONDS = 60
MAX_SHARE_RECORDS = 50


class ShareState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Share:
    """A person's share of chosen verified records with one audience, until it expires."""

    share_id: str
    person_id: str
    token_sha256: str
    audience: str
    record_ids: tuple[str, ...]
    include_demographics: bool
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> ShareState:
        if self.revoked_at is not None:
            return ShareState.REVOKED
        if now >= self.expires_at:
            return ShareState.EXPIRED
        return ShareState.ACTIVE


def share_record_problems(
    requested: list[str], records: list[dict[str, Any]]
) -> list[tuple[int, str]]:
    """``(index, reason)`` for each requested record id that cannot be shared: not one of the
    wallet's records (said the same way as not verified, so nothing leaks), not verified (or
    revoked since), or named twice."""
    by_id = {r["record_id"]: r for r in records}
    seen: set[str] = set()
    problems = []
    for index, record_id in enumerate(requested):
        record = by_id.get(record_id.lower())
        if record_id.lower() in seen:
            problems.append((index, "named twice"))
        elif record is None or record.get("status") != "verified" or not record.get("credential"):
            problems.append((index, "not a verified record of this wallet"))
        seen.add(record_id.lower())
    return problems


#: Terms a share's presentation adds to the VC 2.0 context (the demographics, only when included).
PRESENTATION_TERMS: dict[str, Any] = {
    "holderDemographics": {"@id": "urn:ler:vocab#holderDemographics", "@type": "@json"},
}


def share_presentation(
    share: Share, credentials: list[dict[str, Any]], demographics: dict[str, Any] | None
) -> dict[str, Any]:
    """The Verifiable Presentation a share's audience receives: exactly the chosen signed
    credentials, unsigned as a whole (each credential carries the registry's proof and is checked
    on its own), valid until the share expires. Demographic fields only when ``demographics`` is
    given (the owner included them)."""
    presentation = build_presentation(
        credentials,
        presentation_id=f"urn:uuid:{share.share_id}",
        valid_until=share.expires_at,
    )
    if demographics is not None:
        presentation["@context"] = [*presentation["@context"], PRESENTATION_TERMS]
        presentation["holderDemographics"] = demographics
    return presentation


def share_event(
    event_type: str,
    share: Share,
    *,
    at: datetime,
    correlation_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``ShareCreated`` / ``ShareOpened`` / ``ShareRevoked`` for ``ler.notifications.v1`` (keyed by
    the owner). The audience label is the owner's own words; the token never leaves the API."""
    envelope = new_envelope(event_type, PRODUCER, correlation_id=correlation_id, occurred_at=at)
    return event(
        envelope,
        person_id=share.person_id,
        share_id=share.share_id,
        audience=share.audience,
        record_ids=list(share.record_ids),
        include_demographics=share.include_demographics,
        expires_at=share.expires_at,
        **extra,
    )


PRODUCER = "wallet"

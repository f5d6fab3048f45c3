"""The credentials this registry issues, built from a verified record (pure; signing is CPU only).

Employment records become a ``VerifiableCredential`` + ``EmploymentCredential`` whose subject names
the employer, role, SOC code and dates; learning and credential records become Open Badges 3.0
``OpenBadgeCredential`` with an ``Achievement`` that has ``criteria`` and, when the skills
taxonomy recognises the record, ``alignment`` entries. Every term is defined by a pinned context
or by the inline context below: canonicalization refuses undefined terms.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ler.credentials import (
    KeyRing,
    StatusList,
    add_proof,
    status_list_credential,
    status_list_entry,
)
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3
from ler.credentials.dataintegrity import format_datetime
from ler.skills import RecordInput, Taxonomy, skills_for_record

EMPLOYMENT_CREDENTIAL = "EmploymentCredential"
OPEN_BADGE_CREDENTIAL = "OpenBadgeCredential"
XSD_DATE = "http://www.w3.org/2001/XMLSchema#date"
SCHEMA = "https://schema.org/"
VOCAB = "urn:ler:vocab#"

#: Inline context of the employment credential: schema.org terms where they exist, the rest in
#: the registry's own URN namespace (absolute IRIs, so safe-mode canonicalization accepts them).
EMPLOYMENT_CONTEXT: dict[str, Any] = {
    "@protected": True,
    EMPLOYMENT_CREDENTIAL: f"{VOCAB}EmploymentCredential",
    "EmploymentRecord": f"{VOCAB}EmploymentRecord",
    "Organization": f"{SCHEMA}Organization",
    "employer": {"@id": f"{SCHEMA}worksFor"},
    "role": f"{SCHEMA}roleName",
    "socCode": f"{SCHEMA}occupationalCategory",
    "startDate": {"@id": f"{SCHEMA}startDate", "@type": XSD_DATE},
    "endDate": {"@id": f"{SCHEMA}endDate", "@type": XSD_DATE},
    "employmentAction": f"{VOCAB}employmentAction",
    "recordId": f"{VOCAB}recordId",
}


@dataclass(frozen=True, slots=True)
class CredentialInput:
    """What a credential says: the record, who it is about, and who submitted it."""

    credential_id: str
    record_id: str
    person_id: str
    record_type: str
    data: dict[str, Any]
    organization_id: str | None
    organization_name: str | None


def credential_type_of(record_type: str) -> str:
    return EMPLOYMENT_CREDENTIAL if record_type == "employment" else OPEN_BADGE_CREDENTIAL


def unsigned_credential(
    item: CredentialInput,
    *,
    issuer: str,
    issuer_name: str,
    status: dict[str, str] | list[dict[str, str]],
    issued_at: datetime,
    taxonomy: Taxonomy | None = None,
) -> dict[str, Any]:
    """The credential document of a verified record, before its proof."""
    if item.record_type == "employment":
        document = _employment(item, issuer)
    else:
        document = _open_badge(item, issuer, issuer_name, issued_at, taxonomy)
    document["validFrom"] = format_datetime(issued_at)
    expires_on = item.data.get("expires_on")
    if expires_on:
        document["validUntil"] = f"{expires_on}T23:59:59Z"
    document["credentialStatus"] = status
    return document


def subject_id(credential_id: str) -> str:
    """The holder's id in one credential: derived from the credential, never the person's internal
    id, and different in every credential, so a share does not link the person's credentials to
    one another or to any API that takes a person id (docs/security.md)."""
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:ler:subject:' + credential_id)}"


def _employer(item: CredentialInput) -> dict[str, Any]:
    employer: dict[str, Any] = {"type": "Organization"}
    if item.organization_id:
        employer["id"] = f"urn:uuid:{item.organization_id}"
    employer["name"] = item.organization_name or "Self-reported employer"
    return employer


def _employment(item: CredentialInput, issuer: str) -> dict[str, Any]:
    data = item.data
    subject: dict[str, Any] = {
        "id": subject_id(item.credential_id),
        "type": "EmploymentRecord",
        "recordId": f"urn:uuid:{item.record_id}",
        "employer": _employer(item),
        "role": data["title"],
        "employmentAction": data["action"],
        "startDate": data["start_date"],
    }
    if data.get("end_date"):
        subject["endDate"] = data["end_date"]
    if data.get("soc_code"):
        subject["socCode"] = data["soc_code"]
    return {
        "@context": [CREDENTIALS_V2, EMPLOYMENT_CONTEXT],
        "id": f"urn:uuid:{item.credential_id}",
        "type": ["VerifiableCredential", EMPLOYMENT_CREDENTIAL],
        "issuer": issuer,
        "name": f"Employment: {data['title']}",
        "credentialSubject": subject,
    }


def achievement_id(organization_id: str | None, record_type: str, title: str) -> str:
    """The same course or credential from the same organization has the same achievement id."""
    name = f"{organization_id or 'self-reported'}|{record_type}|{title.strip().casefold()}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:ler:achievement:' + name)}"


def alignments(item: CredentialInput, taxonomy: Taxonomy) -> list[dict[str, Any]]:
    """OB 3.0 ``Alignment`` entries for the skills the taxonomy reads from the record."""
    data = item.data
    record = RecordInput(
        record_id=item.record_id,
        record_type=item.record_type,  # type: ignore[arg-type]  # checked by RecordInput
        verified=True,
        title=data.get("title"),
        competencies=tuple(data.get("competencies") or ()),
        credential_type=data.get("credential_type"),
    )
    seen: list[str] = []
    for evidence in skills_for_record(record, taxonomy):
        if evidence.skill_id not in seen:
            seen.append(evidence.skill_id)
    out = []
    for skill_id in seen:
        skill = taxonomy.skill(skill_id)
        out.append(
            {
                "type": ["Alignment"],
                "targetName": skill.name,
                "targetDescription": skill.description,
                "targetUrl": skill.source.url
                or f"urn:ler:skills:{taxonomy.version}:{skill_id.replace(':', '/')}",
                "targetCode": skill_id,
                "targetFramework": skill.framework,
                "targetType": "Skill",
            }
        )
    return out


def _open_badge(
    item: CredentialInput,
    issuer: str,
    issuer_name: str,
    issued_at: datetime,
    taxonomy: Taxonomy | None,
) -> dict[str, Any]:
    data = item.data
    learning = item.record_type == "learning"
    by = item.organization_name or "the person (self-reported), confirmed by a registry reviewer"
    if learning:
        hours = f" ({data['hours']:g} clock hours)" if data.get("hours") else ""
        narrative = f"Completed {data['title']}{hours}, as reported by {by}."
    else:
        kind = data.get("credential_type") or "credential"
        narrative = f"Holds the {kind} {data['title']}, as reported by {by}."
    achievement: dict[str, Any] = {
        "id": achievement_id(item.organization_id, item.record_type, data["title"]),
        "type": ["Achievement"],
        "achievementType": "Course" if learning else "Certificate",
        "name": data["title"],
        "description": data.get("description") or data["title"],
        "criteria": {"narrative": narrative},
    }
    if taxonomy is not None:
        found = alignments(item, taxonomy)
        if found:
            achievement["alignment"] = found
    subject: dict[str, Any] = {
        "id": subject_id(item.credential_id),
        "type": ["AchievementSubject"],
        "achievement": achievement,
    }
    awarded = data.get("completed_on") or data.get("issued_on")
    if awarded:
        subject["activityEndDate"] = f"{awarded}T00:00:00Z"
    return {
        "@context": [CREDENTIALS_V2, OPEN_BADGES_V3],
        "id": f"urn:uuid:{item.credential_id}",
        "type": ["VerifiableCredential", OPEN_BADGE_CREDENTIAL],
        "issuer": {"id": issuer, "type": ["Profile"], "name": issuer_name},
        "name": data["title"],
        "awardedDate": format_datetime(issued_at),
        "credentialSubject": subject,
    }


class Issuer:
    """Signs this registry's credentials and status lists with the newest key of its ring."""

    def __init__(
        self,
        ring: KeyRing,
        *,
        public_url: str,
        name: str,
        taxonomy: Taxonomy | None = None,
    ) -> None:
        self.ring = ring
        self.did = ring.controller
        self.public_url = public_url.rstrip("/")
        self.name = name
        self.taxonomy = taxonomy

    def status_list_url(self, list_id: str) -> str:
        return f"{self.public_url}/v1/status-lists/{list_id}"

    def issue(
        self,
        item: CredentialInput,
        list_id: str,
        index: int,
        issued_at: datetime | None = None,
        *,
        suspension: tuple[str, int] | None = None,
    ) -> dict[str, Any]:
        """The signed credential; its ``credentialStatus`` is the revocation entry at ``index``
        of ``list_id``, and with ``suspension`` (a list id and index) a list of that and the
        suspension entry (every credential the registry issues has both)."""
        moment = (issued_at or datetime.now(UTC)).replace(microsecond=0)
        revocation = status_list_entry(self.status_list_url(list_id), index)
        status: dict[str, str] | list[dict[str, str]] = revocation
        if suspension is not None:
            held_list, held_index = suspension
            held = status_list_entry(self.status_list_url(held_list), held_index, "suspension")
            status = [revocation, held]
        document = unsigned_credential(
            item,
            issuer=self.did,
            issuer_name=self.name,
            status=status,
            issued_at=moment,
            taxonomy=self.taxonomy,
        )
        return add_proof(document, self.ring.signing_key, created=moment)

    def status_list(
        self,
        list_id: str,
        size: int,
        set_bits: list[int],
        issued_at: datetime | None = None,
        *,
        purpose: str = "revocation",
    ) -> dict[str, Any]:
        """The signed status list credential of ``purpose`` with the bits ``set_bits`` set."""
        bits = StatusList(size)
        for index in set_bits:
            bits.set(index)
        now = (issued_at or datetime.now(UTC)).replace(microsecond=0)
        url = self.status_list_url(list_id)
        return add_proof(
            status_list_credential(url, self.did, bits, purpose=purpose, valid_from=now),
            self.ring.signing_key,
            created=now,
        )

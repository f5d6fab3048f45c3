"""Partner-feed rules: the core data elements, de-identification, pseudonyms. Pure, no I/O.

A partner receives, for each person who consented to that partner, a record of coarse core data
elements under a pseudonymous id. Nothing that names or pins down a person is ever derived here:
no names, e-mails, exact dates of birth, record titles or free text. docs/partner-feed.md lists
each element and where it comes from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

# element -> where it comes from (kept in step with docs/partner-feed.md by a unit test).
ELEMENTS: dict[str, str] = {
    "birth_year": "PersonEnrolled.birth_date, year only",
    "age_band": "PersonEnrolled.birth_date, as a band of years at publication",
    "county": "PersonEnrolled.county",
    "education_level": "PersonEnrolled.education_level",
    "role_category": "EmploymentRecordSubmitted.soc_code of the latest employment, SOC major group",
    "employment_status": "EmploymentRecordSubmitted.action of the latest employment",
    "credential_types": "CredentialRecordSubmitted.credential_type of records verified, not revoked",
    "training_hours": "LearningRecordSubmitted.hours summed over records not rejected",
}

# SOC 2018 major groups (the first two digits of a SOC code).
SOC_MAJOR_GROUPS: dict[str, str] = {
    "11": "Management",
    "13": "Business and Financial Operations",
    "15": "Computer and Mathematical",
    "17": "Architecture and Engineering",
    "19": "Life, Physical, and Social Science",
    "21": "Community and Social Service",
    "23": "Legal",
    "25": "Educational Instruction and Library",
    "27": "Arts, Design, Entertainment, Sports, and Media",
    "29": "Healthcare Practitioners and Technical",
    "31": "Healthcare Support",
    "33": "Protective Service",
    "35": "Food Preparation and Serving Related",
    "37": "Building and Grounds Cleaning and Maintenance",
    "39": "Personal Care and Service",
    "41": "Sales and Related",
    "43": "Office and Administrative Support",
    "45": "Farming, Fishing, and Forestry",
    "47": "Construction and Extraction",
    "49": "Installation, Maintenance, and Repair",
    "51": "Production",
    "53": "Transportation and Material Moving",
    "55": "Military Specific",
}
AGE_BANDS: tuple[tuple[int, int, str], ...] = (
    (0, 17, "under 18"),
    (18, 24, "18-24"),
    (25, 34, "25-34"),
    (35, 44, "35-44"),
    (45, 54, "45-54"),
    (55, 64, "55-64"),
    (65, 200, "65+"),
)
EMPLOYMENT_STATUS = {"hired": "employed", "role_changed": "employed", "separated": "separated"}


class FeedRuleError(ValueError):
    """An event the partner-feed processor cannot accept (it is dead-lettered)."""


@dataclass(frozen=True, slots=True)
class FeedPerson:
    person_id: str
    birth_year: int
    county: str | None
    education_level: str | None


@dataclass(frozen=True, slots=True)
class FeedConsent:
    """A consent change, with its ``occurred_at`` in microseconds: the newest one decides."""

    person_id: str
    partner_id: str
    granted: bool
    occurred_us: int = 0


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """The coarse facts of one submitted record (no title, no description, no dates but order)."""

    record_id: str
    person_id: str
    kind: str
    role_category: str | None = None
    employment_status: str | None = None
    started_on: date | None = None
    hours: float | None = None
    credential_type: str | None = None


@dataclass(frozen=True, slots=True)
class FeedRecordStatus:
    """A review outcome of a record: ``verified``, ``rejected``, ``revoked`` or ``suspended``."""

    record_id: str
    person_id: str
    status: str
    #: The event's ``record_version``: the highest one decides (docs/partner-feed.md, "Order").
    version: int = 0


FeedChange = FeedPerson | FeedConsent | FeedRecord | FeedRecordStatus
#: Statuses whose records the feed leaves out (their verification does not stand, for now or ever).
LEFT_OUT = frozenset({"rejected", "revoked", "suspended"})
STATUS_EVENTS = {
    "RecordVerified": "verified",
    "RecordRejected": "rejected",
    "CredentialRevoked": "revoked",
    "CredentialReinstated": "verified",
    # A suspended credential is not in force: its record leaves the feed until the hold is lifted.
    "CredentialSuspended": "suspended",
    "CredentialSuspensionLifted": "verified",
}


def feed_changes(event_type: str, record: Mapping[str, Any], key: bytes | None) -> list[FeedChange]:
    """The coarse facts one decoded event gives the partner feed ([] for the rest)."""
    if event_type == "PersonEnrolled":
        birth = record["birth_date"]
        return [
            FeedPerson(
                person_id=_keyed(record, key),
                birth_year=birth.year,
                county=_label(record.get("county")),
                education_level=record.get("education_level"),
            )
        ]
    if event_type == "ConsentChanged":
        return [
            FeedConsent(
                _keyed(record, key),
                str(record["partner_id"]),
                record["granted"],
                occurred_us=micros(record["occurred_at"]),
            )
        ]
    if event_type == "EmploymentRecordSubmitted":
        return [
            FeedRecord(
                record_id=str(record["record_id"]),
                person_id=_keyed(record, key),
                kind="employment",
                role_category=role_category(record.get("soc_code")),
                employment_status=EMPLOYMENT_STATUS.get(str(record["action"])),
                started_on=record["start_date"],
            )
        ]
    if event_type == "LearningRecordSubmitted":
        hours = record.get("hours")
        return [
            FeedRecord(
                record_id=str(record["record_id"]),
                person_id=_keyed(record, key),
                kind="learning",
                hours=float(hours) if hours is not None else None,
            )
        ]
    if event_type == "CredentialRecordSubmitted":
        return [
            FeedRecord(
                record_id=str(record["record_id"]),
                person_id=_keyed(record, key),
                kind="credential",
                credential_type=_label(record.get("credential_type")),
            )
        ]
    if event_type in STATUS_EVENTS:
        return [
            FeedRecordStatus(
                record_id=str(record["record_id"]),
                person_id=_keyed(record, key),
                status=STATUS_EVENTS[event_type],
                version=int(record["record_version"]),
            )
        ]
    return []


def micros(moment: datetime) -> int:
    """A timestamp as microseconds since the epoch (UTC; a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def newest_consents(changes: Iterable[FeedChange]) -> dict[tuple[str, str], FeedConsent]:
    """Per (person, partner), the consent change that occurred last (on a tie, the later one
    read): the order they were read in does not decide."""
    out: dict[tuple[str, str], FeedConsent] = {}
    for c in changes:
        if isinstance(c, FeedConsent):
            key = (c.person_id, c.partner_id)
            if key not in out or c.occurred_us >= out[key].occurred_us:
                out[key] = c
    return out


def newest_statuses(changes: Iterable[FeedChange]) -> dict[str, FeedRecordStatus]:
    """Per record, the status of the highest ``record_version`` (on a tie, the later one read)."""
    out: dict[str, FeedRecordStatus] = {}
    for c in changes:
        if isinstance(c, FeedRecordStatus) and (
            c.record_id not in out or c.version >= out[c.record_id].version
        ):
            out[c.record_id] = c
    return out


def _keyed(record: Mapping[str, Any], key: bytes | None) -> str:
    value = str(record["person_id"])
    if key is None or key.decode("utf-8", "replace") != value:
        raise FeedRuleError("person_id: message key must equal the person_id")
    return value


def _label(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text[:100] or None


def role_category(soc_code: str | None) -> str | None:
    """The SOC major group (``25-0000``) of a detailed SOC code, if it names a known group."""
    if not soc_code or len(soc_code) < 2 or soc_code[:2] not in SOC_MAJOR_GROUPS:
        return None
    return f"{soc_code[:2]}-0000"


def age_band(birth_year: int, today: date) -> str:
    age = today.year - birth_year
    for low, high, label in AGE_BANDS:
        if low <= age <= high:
            return label
    return "unknown"


def partner_key(secret: bytes, partner_id: str) -> bytes:
    """The partner's own pseudonym key: two partners cannot link their feeds by id."""
    return hmac.new(secret, f"ler-partner-feed|v1|{partner_id}".encode(), hashlib.sha256).digest()


def pseudonymous_id(secret: bytes, partner_id: str, person_id: str) -> str:
    """``psn_`` + HMAC-SHA256(partner key, person_id), hex: stable while the secret is."""
    digest = hmac.new(partner_key(secret, partner_id), person_id.encode(), hashlib.sha256)
    return "psn_" + digest.hexdigest()


def next_pseudonym(secret: bytes, partner_id: str, person_id: str, previous: str) -> str:
    """The pseudonym after a retraction of ``previous`` (consent given again): a new id, so no
    publication ever follows a retraction under the same pseudonym, and the partner cannot join
    what it was told to drop with what comes after."""
    message = f"{person_id}|after|{previous}".encode()
    return "psn_" + hmac.new(partner_key(secret, partner_id), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """Everything the feed knows of one person (already coarse)."""

    birth_year: int | None
    county: str | None
    education_level: str | None
    records: tuple[FeedRecord, ...] = ()
    statuses: Mapping[str, str] | None = None


def element_values(facts: PersonFacts, today: date) -> dict[str, Any]:
    """Every element's value for one person (the agreement then picks which go out)."""
    statuses = facts.statuses or {}
    kept = [r for r in facts.records if statuses.get(r.record_id) not in LEFT_OUT]
    employment = sorted(
        (r for r in kept if r.kind == "employment"),
        key=lambda r: (r.started_on or date.min, r.record_id),
    )
    latest = employment[-1] if employment else None
    hours = [r.hours for r in kept if r.kind == "learning" and r.hours is not None]
    credential_types = sorted(
        {
            r.credential_type
            for r in kept
            if r.kind == "credential"
            and r.credential_type
            and statuses.get(r.record_id) == "verified"
        }
    )
    return {
        "birth_year": facts.birth_year,
        "age_band": age_band(facts.birth_year, today) if facts.birth_year else None,
        "county": facts.county,
        "education_level": facts.education_level,
        "role_category": latest.role_category if latest else None,
        "employment_status": latest.employment_status if latest else None,
        "credential_types": credential_types,
        "training_hours": round(sum(hours), 1) if hours else None,
    }


def select_elements(values: Mapping[str, Any], elements: Iterable[str]) -> dict[str, Any]:
    """The agreed elements' values; every other element is left out (null)."""
    agreed = set(elements)
    return {name: (values[name] if name in agreed else None) for name in ELEMENTS}


def digest(values: Mapping[str, Any], elements: Iterable[str]) -> str:
    """What was last published to a partner, to publish again only when something changed."""
    payload = json.dumps([sorted(elements), dict(values)], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def elements_problem(elements: list[str]) -> str | None:
    unknown = sorted({e for e in elements if e not in ELEMENTS})
    if unknown:
        return f"unknown element(s) {', '.join(unknown)}; see the documented list"
    if len(set(elements)) != len(elements):
        return "must not repeat an element"
    return None

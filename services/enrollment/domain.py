"""Enrollment rules: duplicate-person detection and the events intake publishes. No I/O."""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from ler.envelope import Envelope, event, new_envelope

PRODUCER = "enrollment"
RECORD_EVENT_TYPES = {
    "employment": "EmploymentRecordSubmitted",
    "learning": "LearningRecordSubmitted",
    "credential": "CredentialRecordSubmitted",
}


def normalize_name(value: str) -> str:
    """Case-, accent- and space-insensitive form of a name, for duplicate detection."""
    decomposed = unicodedata.normalize("NFKD", value)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(letters.casefold().replace("-", " ").split())


def normalize_email(value: str) -> str:
    return value.strip().casefold()


@dataclass(frozen=True, slots=True)
class IdentityKeys:
    """What two enrollments of the same person are likely to share."""

    email: str
    name_birth: str

    @classmethod
    def of(cls, given_name: str, family_name: str, email: str, birth_date: date) -> IdentityKeys:
        name = f"{normalize_name(family_name)}|{normalize_name(given_name)}"
        return cls(normalize_email(email), f"{name}|{birth_date.isoformat()}")


def one_year_after(day: date) -> date:
    """The same day a year later; 29 February becomes 28 February (the last day of that
    month), so the rule never fails on a leap day."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return day.replace(year=day.year + 1, day=28)


def record_dates_problems(record: dict[str, Any], today: date) -> list[tuple[str, str]]:
    """Cross-field date rules of a submitted record as ``(field, rule)`` pairs."""
    problems = []
    kind = record["type"]
    if kind == "employment":
        start, end = record["start_date"], record.get("end_date")
        if end is not None and end < start:
            problems.append(("end_date", "must not be before start_date"))
        if record["action"] == "separated" and end is None:
            problems.append(("end_date", "required when action is separated"))
        if start > one_year_after(today):
            problems.append(("start_date", "must be within a year from today"))
    elif kind == "learning":
        if record["completed_on"] > today:
            problems.append(("completed_on", "must not be in the future"))
    elif kind == "credential":
        if record["issued_on"] > today:
            problems.append(("issued_on", "must not be in the future"))
        expires = record.get("expires_on")
        if expires is not None and expires < record["issued_on"]:
            problems.append(("expires_on", "must not be before issued_on"))
    return problems


def record_event(
    record: dict[str, Any],
    record_id: uuid.UUID,
    *,
    submitted_by: str,
    submitter_kind: str,
    correlation_id: str,
    affiliated: bool = False,
) -> dict[str, Any]:
    """The ``ler.records.v1`` event of one accepted record; ``affiliated`` says the submitting
    organization is affiliated with the person (only then may verification be automatic)."""
    kind = record["type"]
    envelope = new_envelope(RECORD_EVENT_TYPES[kind], PRODUCER, correlation_id=correlation_id)
    payload = {
        "record_id": record_id,
        "person_id": record["person_id"],
        "submitted_by": submitted_by,
        "submitter_kind": submitter_kind,
        "title": record["title"],
        "description": record.get("description"),
        "evidence": record.get("evidence") or [],
        "affiliated": affiliated and submitter_kind == "organization",
    }
    if kind == "employment":
        payload.update(
            action=record["action"],
            start_date=record["start_date"],
            end_date=record.get("end_date"),
            soc_code=record.get("soc_code"),
        )
    elif kind == "learning":
        payload.update(
            completed_on=record["completed_on"],
            hours=record.get("hours"),
            competencies=record.get("competencies") or [],
        )
    else:
        payload.update(
            issued_on=record["issued_on"],
            expires_on=record.get("expires_on"),
            credential_type=record.get("credential_type"),
        )
    return event(envelope, **payload)


def envelope_for(event_type: str, correlation_id: str) -> Envelope:
    return new_envelope(event_type, PRODUCER, correlation_id=correlation_id)

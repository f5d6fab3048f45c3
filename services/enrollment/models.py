"""Request and response bodies of the enrollment API (validation rules live here and in domain)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
SocCode = Annotated[str, StringConstraints(pattern=r"^\d{2}-\d{4}(\.\d{2})?$")]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OrganizationIn(Strict):
    name: Text
    kind: Literal["employer", "training_provider", "partner"]


class OrganizationOut(BaseModel):
    organization_id: UUID
    name: str
    kind: str
    api_key: str = Field(description="Shown once; only its hash is stored.")


DemographicKey = Literal[
    "gender", "race_ethnicity", "primary_language", "veteran_status", "disability_status"
]


class PersonIn(Strict):
    given_name: Name
    family_name: Name
    email: Email
    birth_date: date
    county: Label | None = None
    education_level: (
        Literal[
            "less_than_high_school",
            "high_school",
            "some_college",
            "associate",
            "bachelor",
            "master",
            "doctorate",
        ]
        | None
    ) = None
    demographics: dict[DemographicKey, Label] = Field(default_factory=dict)
    confirm_not_duplicate: bool = Field(
        default=False,
        description="Enroll even though a likely duplicate exists (the new person is flagged).",
    )


class PersonOut(BaseModel):
    person_id: UUID
    access_token: str = Field(description="Shown once; only its hash is stored.")
    possible_duplicate_of: UUID | None = None


class ConsentIn(Strict):
    partner_id: UUID
    granted: bool


class EvidenceIn(Strict):
    name: Text
    url: Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://\S+$")] | None = None
    description: LongText | None = None


class RecordBase(Strict):
    person_id: UUID
    title: Text
    description: LongText | None = None
    evidence: Annotated[list[EvidenceIn], Field(max_length=20)] = Field(default_factory=list)


class EmploymentIn(RecordBase):
    type: Literal["employment"]
    action: Literal["hired", "role_changed", "separated"]
    start_date: date
    end_date: date | None = None
    soc_code: SocCode | None = None


class LearningIn(RecordBase):
    type: Literal["learning"]
    completed_on: date
    hours: Annotated[float, Field(gt=0, le=10_000)] | None = None
    competencies: Annotated[list[Label], Field(max_length=100)] = Field(default_factory=list)


class CredentialIn(RecordBase):
    type: Literal["credential"]
    issued_on: date
    expires_on: date | None = None
    credential_type: Label | None = None


RecordIn = Annotated[EmploymentIn | LearningIn | CredentialIn, Field(discriminator="type")]


class RecordsAccepted(BaseModel):
    record_ids: list[UUID]

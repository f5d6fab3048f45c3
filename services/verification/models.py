"""Request bodies of the verification API (validation rules live here and in domain)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ReasonCode = Literal[
    "insufficient_evidence",
    "not_confirmed_by_issuer",
    "duplicate",
    "outside_registry_scope",
    "other",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ReviewerIn(Strict):
    name: Name


class ReviewDecisionIn(Strict):
    decision: Literal["verified", "rejected"]
    reason_code: ReasonCode | None = None
    note: Note | None = None


class AppealIn(Strict):
    statement: Note | None = None


class AppealDecisionIn(Strict):
    decision: Literal["upheld", "denied"]
    note: Note


class RevocationIn(Strict):
    reason: Note


SuspensionReason = Literal["under_investigation", "disputed", "evidence_requested", "other"]
LiftReason = Literal["investigation_closed", "dispute_resolved", "evidence_received", "other"]


class SuspensionIn(Strict):
    """Why a credential is put on hold (codes: ``suspension_rules.SUSPENSION_REASONS``)."""

    reason_code: SuspensionReason
    note: Note | None = None


class LiftIn(Strict):
    """Why a hold is lifted (codes: ``suspension_rules.LIFT_REASONS``)."""

    reason_code: LiftReason
    note: Note | None = None

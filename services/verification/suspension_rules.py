"""Suspension rules (pure, like ``domain.py``): the reasons staff give, and which credentials
can be put on hold or released. A suspension is reversible; a revocation is not (docs/credentials.md,
"Suspension")."""

from __future__ import annotations

from services.verification.domain import REVOKED, SUSPENDED, VERIFIED, TransitionError

#: Why staff put a credential on hold (docs/verification.md, "Suspension").
SUSPENSION_REASONS = {
    "under_investigation": "The registry is checking whether the record is right.",
    "disputed": "The issuer or the person disputes the record.",
    "evidence_requested": "The registry asked for evidence and waits for it.",
    "other": "Another reason, explained in the note.",
}
#: Why staff lift a hold.
LIFT_REASONS = {
    "investigation_closed": "The check found the record right.",
    "dispute_resolved": "The dispute was settled in the record's favour.",
    "evidence_received": "The evidence asked for arrived and shows the record is right.",
    "appeal_upheld": "The person appealed the suspension and the appeal was upheld.",
    "other": "Another reason, explained in the note.",
}


def check_suspension_change(
    suspend: bool,
    reason_code: str,
    record_state: str | None,
    credential_revoked: bool,
    is_current: bool,
    has_entry: bool,
) -> None:
    """Suspend a credential in force, or lift the hold of a suspended one; a revoked credential
    (or one an upheld appeal replaced) stays as it is whatever is asked."""
    reasons = SUSPENSION_REASONS if suspend else LIFT_REASONS
    if reason_code not in reasons:
        raise TransitionError(
            422, "unknown reason code", "reason_code", f"must be one of {', '.join(reasons)}"
        )
    if record_state is None:
        raise TransitionError(404, "no credential with this id")
    if credential_revoked or record_state == REVOKED or not is_current:
        raise TransitionError(
            409,
            "the credential is revoked, and a revocation is final",
            "credential_id",
            "must not be revoked",
        )
    if not has_entry:
        raise TransitionError(
            409,
            "the credential was issued without a suspension entry",
            "credential_id",
            "must have a suspension status entry",
        )
    wanted = VERIFIED if suspend else SUSPENDED
    if record_state != wanted:
        what = "in force" if suspend else "suspended"
        raise TransitionError(
            409,
            f"the credential is not {what} (its record is {record_state})",
            "credential_id",
            f"must be a credential {what}",
        )

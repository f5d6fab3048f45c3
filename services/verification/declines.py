"""A person declines a record an organization submitted about them that waits for review (most
often one from an organization they are not affiliated with): the record is rejected with the
reason ``declined_by_person`` and never becomes a credential."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from ler.outbox import enqueue
from ler.web import ApiError, problem
from services.verification.deps import Person, context
from services.verification.domain import (
    DECLINED_BY_PERSON,
    REJECTED,
    REVIEW,
    TransitionError,
    check_decline,
)
from services.verification.store import VerificationStore

router = APIRouter(tags=["review"])
RecordId = Annotated[uuid.UUID, Path(description="The record's id")]


async def decline(store: VerificationStore, record_id: str, person_id: str) -> dict[str, Any]:
    """Reject the person's pending record on their word, in one transaction with its event."""
    async with store.db.transaction() as conn:
        row = await store._record_for_update(conn, record_id)
        check_decline(
            row["state"] if row else None,
            row["person_id"] if row else None,
            person_id,
            row["submitter_kind"] if row else None,
        )
        assert row is not None
        now = datetime.now(UTC)
        version = await store._transition(
            conn,
            row,
            "RecordRejected",
            "person",
            {
                "state": REJECTED,
                "reason_code": DECLINED_BY_PERSON,
                "note": None,
                "decided_by": "person",
                "decided_at": now,
                "decision_version": row["version"] + 1,
            },
            {"reason_code": DECLINED_BY_PERSON},
            now,
        )
        message = store._event(
            "RecordRejected",
            row,
            "person",
            version,
            queue=REVIEW,
            reason_code=DECLINED_BY_PERSON,
            note=None,
        )
        await enqueue(conn, store.api_outbox, [message])
    return {"record_id": record_id, "state": REJECTED, "reason_code": DECLINED_BY_PERSON}


@router.post(
    "/v1/records/{record_id}/decline",
    summary="Decline a record an organization submitted about you (the person's access token)",
)
async def decline_record(record_id: RecordId, caller: Person, request: Request) -> Any:
    assert caller.person_id is not None
    try:
        result = await decline(context(request).store, str(record_id), caller.person_id)
    except TransitionError as exc:
        errors = [problem(exc.field, exc.rule)] if exc.field else []
        raise ApiError(exc.status, exc.message, errors) from None
    request.app.state.wake_relay()
    return result

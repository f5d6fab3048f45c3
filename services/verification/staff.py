"""Staff access that is audited and can be taken back: an admin revokes a reviewer's token (the
next request with it is refused: reviewers are known to this service alone), and every read by
staff of a record, its audit trail, an appeal or a credential leaves a read entry that the
record's owner sees in the record's audit (``reads``), as a wallet's owner sees reads of a wallet."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from ler.web import ApiError
from services.verification.deps import Admin, context

router = APIRouter(tags=["review"])
ReviewerId = Annotated[uuid.UUID, Path(description="The reviewer's id")]


@router.delete(
    "/v1/reviewers/{reviewer_id}",
    status_code=204,
    summary="Revoke a reviewer's access token (admin); it is refused from the next request",
)
async def revoke_reviewer(reviewer_id: ReviewerId, _: Admin, request: Request) -> Response:
    store = context(request).store
    t = store.reviewers
    async with store.db.transaction() as conn:
        gone = await conn.execute(t.delete().where(t.c.reviewer_id == str(reviewer_id)))
    if not gone.rowcount:
        raise ApiError(404, "no reviewer with this id")
    return Response(status_code=204)

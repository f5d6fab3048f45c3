"""``POST /v1/credentials/{credential_id}/suspend`` and ``.../unsuspend``: staff put a credential
on hold and release it (reviewers and admins; each change audited and published)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from ler.web import ApiError, problem
from services.verification.deps import Staff, context
from services.verification.domain import TransitionError
from services.verification.models import LiftIn, SuspensionIn
from services.verification.store import Caller
from services.verification.suspension_store import lift, suspend

router = APIRouter(tags=["credentials"])
CredentialId = Annotated[uuid.UUID, Path(description="The credential's id")]


async def _run(
    request: Request,
    credential_id: uuid.UUID,
    hold: bool,
    body: SuspensionIn | LiftIn,
    caller: Caller,
) -> Any:
    command = suspend if hold else lift
    store = context(request).store
    try:
        result = await command(store, str(credential_id), body.reason_code, body.note, caller)
    except TransitionError as exc:
        errors = [problem(exc.field, exc.rule)] if exc.field else []
        raise ApiError(exc.status, exc.message, errors) from None
    request.app.state.wake_relay()
    return result


@router.post(
    "/v1/credentials/{credential_id}/suspend",
    summary="Put a credential on hold: its suspension bit is set (reviewers, admin)",
)
async def suspend_credential(
    credential_id: CredentialId, body: SuspensionIn, caller: Staff, request: Request
) -> Any:
    return await _run(request, credential_id, True, body, caller)


@router.post(
    "/v1/credentials/{credential_id}/unsuspend",
    summary="Lift a credential's suspension: the same credential is in force again "
    "(reviewers, admin)",
)
async def unsuspend_credential(
    credential_id: CredentialId, body: LiftIn, caller: Staff, request: Request
) -> Any:
    return await _run(request, credential_id, False, body, caller)

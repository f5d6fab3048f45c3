"""Skills matching for a share's audience by the share link alone: ``GET
/v1/shares/{token}/match?role=...``. Credentials carry no person id (their subject ids are
derived per credential), so an audience matches through the share it holds and never needs, or
learns, the id of the person behind it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ler import telemetry
from ler.avro import default_codec
from ler.envelope import TRACEPARENT, new_traceparent
from ler.outbox import OutgoingMessage
from ler.skills import UnknownRoleError
from ler.topics import NOTIFICATIONS
from ler.web import ApiError, problem, token_hash
from services.wallet.bootstrap import WalletContext
from services.wallet.domain import ShareState, match_view, share_event
from services.wallet.store import WalletApiStore

router = APIRouter(tags=["skills"])
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,120}$"  # noqa: S105 (a pattern, not a secret)
GONE = "this share has expired or was revoked"
CODEC = default_codec()


@router.get(
    "/v1/shares/{token}/match",
    summary="Matched and missing skills of a share's verified records for a role (anyone with "
    "the link)",
)
async def match_share(
    token: Annotated[str, Path(pattern=TOKEN_PATTERN)],
    request: Request,
    role: Annotated[str, Query(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")],
) -> dict[str, Any]:
    ctx: WalletContext = request.app.state.ctx
    store: WalletApiStore = ctx.store
    share = await store.share_by_token(token_hash(token))
    if share is None:
        raise ApiError(404, "no such share")
    now = datetime.now(UTC)
    if share.state(now) is not ShareState.ACTIVE:
        raise ApiError(410, GONE)
    try:
        profile = store.taxonomy.role(role)
    except UnknownRoleError:
        raise ApiError(
            404, f"no role {role!r}", [problem("role", "not one of GET /v1/roles")]
        ) from None
    # What the shared credentials show, and nothing unverified.
    evidence = [
        e for e in await store.skill_evidence(share.person_id, share.record_ids) if e.verified
    ]
    result = match_view(profile, evidence, store.taxonomy)
    record = share_event("ShareOpened", share, at=now, access="match")
    trace = telemetry.current_traceparent() or new_traceparent()
    message = OutgoingMessage(
        NOTIFICATIONS.name,
        share.person_id.encode(),
        CODEC.encode(record),
        [(TRACEPARENT, trace.encode())],
    )
    await store.record_access(share, "share_matched", now, [message], {"role": profile.role_id})
    request.app.state.wake_relay()
    result["scope"] = "share"
    return result

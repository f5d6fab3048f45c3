"""Verification HTTP API: reviewers, review decisions, appeals, credentials, revocation, status
lists, the issuer's DID document and the SLA dashboard."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Path, Query

from ler.kafka import started_producer
from ler.outbox import BackgroundRelay, SqlOutbox
from ler.web import ApiError, JsonResponse, new_app, new_secret, problem, token_hash
from services.verification import declines, suspension_routes
from services.verification import staff as staff_routes
from services.verification.bootstrap import VerificationContext
from services.verification.deps import Admin, AnyCaller, Person, Staff
from services.verification.domain import REASON_CODES, RECORD_STATES, TransitionError
from services.verification.models import (
    AppealDecisionIn,
    AppealIn,
    ReviewDecisionIn,
    ReviewerIn,
    RevocationIn,
)
from services.verification.ops import add_ops_routes
from services.verification.read_log import audit_reads, reads_of
from services.verification.sla import WINDOWS, dashboard

log = logging.getLogger(__name__)
T = TypeVar("T")

RecordId = Annotated[uuid.UUID, Path(description="The record's id")]
AppealId = Annotated[uuid.UUID, Path(description="The appeal's id")]
CredentialId = Annotated[uuid.UUID, Path(description="The credential's id")]
ListId = Annotated[str, Path(pattern=r"^[0-9]{1,9}$", description="The status list's id")]
Limit = Annotated[int, Query(ge=1, le=500)]
# Past a billion rows a page is empty anyway; unbounded, an offset past int64 reached the SQL
# driver and answered 500 (docs/security.md, "No input gives a 5xx").
MAX_OFFSET = 1_000_000_000
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


async def _command(action: Callable[[], Awaitable[T]]) -> T:
    try:
        return await action()
    except TransitionError as exc:
        errors = [problem(exc.field, exc.rule)] if exc.field else []
        raise ApiError(exc.status, exc.message, errors) from None


def create_app(ctx: VerificationContext) -> FastAPI:
    store, sla_store, issuer = ctx.store, ctx.sla_store, ctx.issuer
    status_cache: dict[str, tuple[list[int], dict[str, Any]]] = {}

    relay = BackgroundRelay(
        SqlOutbox(store.db, store.api_outbox),
        lambda: started_producer(ctx.kafka, "ler-verification-api-relay"),
        name="verification-outbox-relay",
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        await sla_store.open()
        try:
            async with relay:
                yield
        finally:
            await store.close()
            await sla_store.close()

    def wake_relay() -> None:
        relay.wake()

    async def readiness() -> dict[str, Any]:
        broker = "ok" if relay.connected else "connecting"
        return {"database": "ok", "broker": broker, "outbox": await relay.pending()}

    app = new_app(
        "LER verification",
        "Review, verification, signed credentials, revocation, appeals and processing-time SLAs.",
        readiness,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.wake_relay = wake_relay
    app.include_router(declines.router)
    app.include_router(staff_routes.router)
    app.include_router(suspension_routes.router)

    @app.post(
        "/v1/reviewers", status_code=201, tags=["review"], summary="Create a reviewer (admin)"
    )
    async def create_reviewer(body: ReviewerIn, _: Admin) -> dict[str, Any]:
        token = new_secret("ler_reviewer")
        reviewer_id = await store.add_reviewer(body.name, token_hash(token))
        return {"reviewer_id": reviewer_id, "name": body.name, "access_token": token}

    @app.get("/v1/reviews", tags=["review"], summary="The review queue (reviewers, admin)")
    async def list_reviews(
        caller: Staff,
        state: Annotated[
            str, Query(pattern="^(pending|verified|rejected|revoked|suspended)$")
        ] = "pending",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items = await store.reviews(state, limit, offset)
        await audit_reads(store, caller, (i["record_id"] for i in items), "review_queue")
        return {"state": state, "items": items, "reason_codes": REASON_CODES}

    @app.post(
        "/v1/reviews/{record_id}/decision",
        tags=["review"],
        summary="Verify or reject a record waiting for review (reviewers, admin)",
    )
    async def decide_review(record_id: RecordId, body: ReviewDecisionIn, caller: Staff) -> Any:
        result = await _command(
            lambda: store.decide_review(
                str(record_id), body.decision, body.reason_code, body.note, caller.actor
            )
        )
        wake_relay()
        return result

    @app.post(
        "/v1/records/{record_id}/appeals",
        status_code=201,
        tags=["appeals"],
        summary="Appeal a rejection or a revocation (the person's own access token)",
    )
    async def file_appeal(record_id: RecordId, caller: Person, body: AppealIn | None = None) -> Any:
        statement = body.statement if body else None
        assert caller.person_id is not None
        result = await _command(
            lambda: store.file_appeal(str(record_id), caller.person_id or "", statement)
        )
        wake_relay()
        return result

    @app.get("/v1/appeals", tags=["appeals"], summary="The appeal queue (reviewers, admin)")
    async def list_appeals(
        caller: Staff,
        state: Annotated[str, Query(pattern="^(pending|upheld|denied)$")] = "pending",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        items = await store.appeals_list(state, limit, offset)
        await audit_reads(store, caller, (i["record_id"] for i in items), "appeal_queue")
        return {"state": state, "items": items}

    @app.post(
        "/v1/appeals/{appeal_id}/decision",
        tags=["appeals"],
        summary="Uphold or deny an appeal (reviewers other than the original decider, admin)",
    )
    async def decide_appeal(appeal_id: AppealId, body: AppealDecisionIn, caller: Staff) -> Any:
        result = await _command(
            lambda: store.decide_appeal(str(appeal_id), body.decision, body.note, caller.actor)
        )
        wake_relay()
        return result

    @app.get(
        "/v1/records/{record_id}/audit",
        tags=["appeals"],
        summary="Every transition of a record: who, when, why (staff, or the record's owner)",
    )
    async def audit(record_id: RecordId, caller: AnyCaller) -> dict[str, Any]:
        record = await store.record(str(record_id))
        staff = caller.is_admin or caller.actor.startswith("reviewer:")
        if record is None or not (staff or caller.person_id == record["person_id"]):
            raise ApiError(404, "no record with this id among yours")
        if record["state"] not in RECORD_STATES:  # pragma: no cover - the store writes these
            raise ApiError(500, "unknown record state")
        await audit_reads(store, caller, [str(record_id)], "audit_trail")
        return {
            "record_id": str(record_id),
            "state": record["state"],
            "version": record["version"],
            "trail": await store.audit_trail(str(record_id)),
            "reads": await reads_of(store, str(record_id)),
        }

    @app.get(
        "/v1/credentials/{credential_id}",
        tags=["credentials"],
        summary="A signed credential (its owner, or an admin)",
    )
    async def get_credential(credential_id: CredentialId, caller: AnyCaller) -> JsonResponse:
        found = await store.credential(str(credential_id))
        if found is None or not (caller.is_admin or caller.person_id == found["person_id"]):
            raise ApiError(404, "no credential with this id among yours")
        await audit_reads(store, caller, [found["record_id"]], "credential")
        return JsonResponse(found["document"], headers={"Cache-Control": "no-store"})

    @app.post(
        "/v1/credentials/{credential_id}/revoke",
        tags=["credentials"],
        summary="Revoke a credential (the organization that submitted the record, or an admin)",
    )
    async def revoke(credential_id: CredentialId, body: RevocationIn, caller: AnyCaller) -> Any:
        if not (caller.is_admin or caller.organization_id):
            raise ApiError(403, "only the issuing organization or an admin revokes a credential")
        result = await _command(lambda: store.revoke(str(credential_id), body.reason, caller))
        wake_relay()
        return result

    @app.get(
        "/v1/status-lists/{list_id}",
        tags=["credentials"],
        summary="A Bitstring Status List credential (public)",
    )
    async def status_list(list_id: ListId) -> JsonResponse:
        found = await store.status_list(list_id)
        if found is None:
            raise ApiError(404, "no status list with this id")
        size, set_bits, purpose = found
        cached = status_cache.get(list_id)
        if cached is None or cached[0] != set_bits:
            cached = (set_bits, issuer.status_list(list_id, size, set_bits, purpose=purpose))
            status_cache[list_id] = cached
        return JsonResponse(cached[1], headers={"Cache-Control": "max-age=30"})

    @app.get("/.well-known/did.json", tags=["credentials"], summary="The issuer's DID document")
    async def did_document() -> JsonResponse:
        return JsonResponse(issuer.ring.did_document())

    @app.get("/v1/sla", tags=["sla"], summary="Processing-time SLAs per queue (staff)")
    async def sla_dashboard(_: Staff) -> dict[str, Any]:
        now = datetime.now(UTC)
        longest: timedelta = max(WINDOWS.values())
        rows = await sla_store.item_rows(now - longest)
        return {
            "as_of": now.isoformat(),
            "queues": dashboard(rows, now, ctx.budgets),
        }

    add_ops_routes(app, ctx)
    return app

"""Wallet HTTP API: a person reads their wallet and skills, shares verified records, and anyone
verifies credentials and presentations."""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import segno
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ler import telemetry
from ler.access_lookup import access_of
from ler.avro import default_codec
from ler.envelope import TRACEPARENT, new_traceparent
from ler.kafka import started_producer
from ler.outbox import BackgroundRelay, OutgoingMessage
from ler.skills import UnknownRoleError
from ler.topics import NOTIFICATIONS
from ler.web import ApiError, JsonResponse, bearer_token, new_app, new_secret, problem, token_hash
from services.wallet import share_match, verify_routes
from services.wallet.bootstrap import WalletContext
from services.wallet.domain import (
    MAX_SHARE_RECORDS,
    MIN_SHARE_SECONDS,
    Share,
    ShareState,
    match_view,
    share_event,
    share_presentation,
    share_record_problems,
    skills_summary,
)
from services.wallet.page import WALLET_PAGE
from services.wallet.store import WalletApiStore
from services.wallet.verifier import RegistryDocuments, Verifier
from services.wallet.verify_pool import VerificationPool

log = logging.getLogger(__name__)

UUID_PATTERN = r"^[0-9a-fA-F-]{36}$"
TOKEN_PATTERN = r"^[A-Za-z0-9_-]{20,120}$"  # noqa: S105 (a pattern, not a secret)
GONE = "this share has expired or was revoked"


async def current_person(request: Request) -> str:
    """The person whose access token this is (401 otherwise)."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "a person's access token is required", headers=_challenge())
    ctx: WalletContext = request.app.state.ctx
    digest, store = token_hash(token), api_store(ctx)
    person_id = await access_of(request.app.state).person(
        digest, lambda: store.owner_of_token(digest)
    )
    if person_id is None:
        raise ApiError(401, "unknown or revoked access token", headers=_challenge())
    return person_id


@dataclass(frozen=True)
class Reader:
    """Who reads a wallet: its owner, or a share's audience (the share's records only)."""

    person_id: str
    share: Share | None = None


async def owner_or_audience(request: Request, person_id: str) -> Reader:
    """The wallet's owner (person token) or the audience of one of its active shares (the share
    token as bearer). Anyone else gets 404, as for a wallet that does not exist."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "an access token or a share token is required", headers=_challenge())
    ctx: WalletContext = request.app.state.ctx
    digest = token_hash(token)
    store = api_store(ctx)
    owner = await access_of(request.app.state).person(digest, lambda: store.owner_of_token(digest))
    if owner is not None:
        if owner != person_id.lower():
            raise ApiError(404, "no such wallet")
        return Reader(owner)
    share = await store.share_by_token(digest)
    if share is None:
        raise ApiError(401, "unknown or revoked access token", headers=_challenge())
    if share.person_id != person_id.lower():
        raise ApiError(404, "no such wallet")
    if share.state(datetime.now(UTC)) is not ShareState.ACTIVE:
        raise ApiError(410, GONE)
    return Reader(share.person_id, share)


CurrentPerson = Annotated[str, Depends(current_person)]
WalletId = Annotated[str, Path(pattern=UUID_PATTERN)]
ShareToken = Annotated[str, Path(pattern=TOKEN_PATTERN)]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    record_ids: list[Annotated[str, Field(pattern=UUID_PATTERN)]] = Field(
        min_length=1, max_length=MAX_SHARE_RECORDS
    )
    audience: str = Field(min_length=1, max_length=200)
    expires_in: int = Field(ge=MIN_SHARE_SECONDS, description="seconds until the share expires")
    include_demographics: bool = False


class ShareOut(BaseModel):
    share_id: str
    token: str = Field(description="shown once; only its hash is stored")
    url: str
    qr_url: str
    expires_at: datetime


def api_store(ctx: WalletContext) -> WalletApiStore:
    """The context's store through the API's port (see :class:`WalletApiStore`): no cast, so
    mypy checks that every adapter ``WalletContext.store`` may be implements the port."""
    return ctx.store


def create_app(ctx: WalletContext) -> FastAPI:
    store, settings = api_store(ctx), ctx.settings
    codec = default_codec()
    relay = BackgroundRelay(
        store.api_outbox_source(),
        lambda: started_producer(ctx.kafka, "ler-wallet-api-relay"),
        name="wallet-api-outbox-relay",
    )
    http_box: dict[str, httpx.AsyncClient] = {}
    trust = settings.trust_list()
    public_url = settings.public_url.rstrip("/")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        client = httpx.AsyncClient(follow_redirects=False)
        http_box["client"] = client
        pool = VerificationPool(settings.verify_workers, settings.verify_queue)
        app.state.verifier = Verifier(
            RegistryDocuments(
                client,
                settings.verification_url,
                settings.verification_public_url,
                did_ttl=settings.did_cache_seconds,
                status_ttl=settings.status_cache_seconds,
            ),
            trust=trust,
            pool=pool,
            deadline_seconds=settings.verify_deadline_seconds,
        )
        try:
            async with relay:
                yield
        finally:
            pool.close()
            await client.aclose()
            await store.close()

    def wake_relay() -> None:
        relay.wake()

    async def readiness() -> dict[str, Any]:
        await store.positions()
        broker = "ok" if relay.connected else "connecting"
        return {"database": "ok", "broker": broker, "outbox": await relay.pending()}

    app = new_app(
        "LER wallet",
        "Each person's wallet of records and skills, owner-controlled sharing, and verification "
        "of credentials and presentations by anyone.",
        readiness,
        service="ler-wallet",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.verify_limits = settings.verify_limits()
    app.include_router(verify_routes.router)
    app.state.wake_relay = wake_relay
    app.include_router(share_match.router)

    def outgoing(event_type: str, share: Share, at: datetime, **extra: Any) -> OutgoingMessage:
        record = share_event(event_type, share, at=at, **extra)
        traceparent = telemetry.current_traceparent() or new_traceparent()
        return OutgoingMessage(
            NOTIFICATIONS.name,
            share.person_id.encode(),
            codec.encode(record),
            [(TRACEPARENT, traceparent.encode())],
        )

    async def active_share(token: str) -> Share:
        share = await store.share_by_token(token_hash(token))
        if share is None:
            raise ApiError(404, "no such share")
        if share.state(datetime.now(UTC)) is not ShareState.ACTIVE:
            raise ApiError(410, GONE)
        return share

    async def own_wallet(person_id: str) -> dict[str, Any]:
        wallet = await store.wallet(person_id)
        if wallet is None:
            raise ApiError(404, "no such wallet")
        evidence = await store.skill_evidence(person_id)
        wallet["skills"] = skills_summary(evidence, store.taxonomy)
        wallet["taxonomy_version"] = store.taxonomy.version
        return wallet

    @app.get("/v1/wallet", tags=["wallet"], summary="The caller's own wallet")
    async def get_my_wallet(caller: CurrentPerson) -> dict[str, Any]:
        return await own_wallet(caller)

    @app.get("/v1/wallets/{person_id}", tags=["wallet"], summary="A person's wallet")
    async def get_wallet(person_id: WalletId, caller: CurrentPerson) -> dict[str, Any]:
        # Someone else's wallet answers exactly like a missing one: no hint that it exists.
        if caller != person_id.lower():
            raise ApiError(404, "no such wallet")
        return await own_wallet(caller)

    @app.get("/v1/roles", tags=["skills"], summary="Roles a wallet can be matched against")
    async def list_roles() -> dict[str, Any]:
        taxonomy = store.taxonomy
        return {
            "taxonomy_version": taxonomy.version,
            "roles": [
                {
                    "role_id": role.role_id,
                    "title": role.title,
                    "soc_code": role.soc_code,
                    "description": role.description,
                    "required": [_skill_ref(taxonomy, s) for s in role.required],
                    "preferred": [_skill_ref(taxonomy, s) for s in role.preferred],
                }
                for role in sorted(taxonomy.roles.values(), key=lambda r: r.title)
            ],
        }

    @app.get(
        "/v1/wallets/{person_id}/match",
        tags=["skills"],
        summary="Matched, unverified and missing skills of a wallet for a role (owner, or a "
        "share's audience for the shared records only)",
    )
    async def match_role(
        person_id: WalletId,
        request: Request,
        role: Annotated[str, Query(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")],
    ) -> dict[str, Any]:
        reader = await owner_or_audience(request, person_id)
        try:
            profile = store.taxonomy.role(role)
        except UnknownRoleError:
            raise ApiError(
                404, f"no role {role!r}", [problem("role", "not one of GET /v1/roles")]
            ) from None
        shared = reader.share.record_ids if reader.share else None
        evidence = await store.skill_evidence(reader.person_id, shared)
        if reader.share is not None:
            # The audience sees what the shared credentials show, and nothing unverified.
            evidence = [e for e in evidence if e.verified]
        result = match_view(profile, evidence, store.taxonomy)
        if reader.share is not None:
            now = datetime.now(UTC)
            await store.record_access(
                reader.share,
                "share_matched",
                now,
                [outgoing("ShareOpened", reader.share, now, access="match")],
                {"role": profile.role_id},
            )
            wake_relay()
        result["scope"] = "share" if reader.share else "wallet"
        return result

    @app.post(
        "/v1/wallets/{person_id}/shares",
        status_code=201,
        response_model=ShareOut,
        tags=["shares"],
        summary="Share chosen verified records with an audience (owner); the token is shown once",
    )
    async def create_share(person_id: WalletId, body: ShareIn, caller: CurrentPerson) -> ShareOut:
        if caller != person_id.lower():
            raise ApiError(404, "no such wallet")
        if body.expires_in > settings.share_max_seconds:
            raise ApiError(
                422,
                "the request is invalid",
                [problem("expires_in", f"at most {settings.share_max_seconds} seconds")],
            )
        wallet = await store.wallet(caller)
        if wallet is None:
            raise ApiError(404, "no such wallet")
        problems = share_record_problems(body.record_ids, wallet["records"])
        if problems:
            raise ApiError(
                422,
                "only verified records of this wallet can be shared",
                [problem(f"record_ids[{i}]", reason) for i, reason in problems],
            )
        now = datetime.now(UTC).replace(microsecond=0)
        token = new_secret("ler_share")
        share = Share(
            share_id=str(uuid.uuid4()),
            person_id=caller,
            token_sha256=token_hash(token),
            audience=body.audience.strip() or body.audience,
            record_ids=tuple(r.lower() for r in body.record_ids),
            include_demographics=body.include_demographics,
            created_at=now,
            expires_at=now + timedelta(seconds=body.expires_in),
        )
        await store.create_share(share, [outgoing("ShareCreated", share, now)])
        wake_relay()
        log.info("share %s created (%d records)", share.share_id, len(share.record_ids))
        url = f"{public_url}/v1/shares/{token}"
        return ShareOut(
            share_id=share.share_id,
            token=token,
            url=url,
            qr_url=f"{url}/qr.svg",
            expires_at=share.expires_at,
        )

    @app.get("/v1/wallets/{person_id}/shares", tags=["shares"], summary="The owner's shares")
    async def list_shares(person_id: WalletId, caller: CurrentPerson) -> dict[str, Any]:
        if caller != person_id.lower():
            raise ApiError(404, "no such wallet")
        return {"shares": await store.shares_of(caller)}

    @app.delete(
        "/v1/wallets/{person_id}/shares/{share_id}",
        status_code=204,
        tags=["shares"],
        summary="Revoke a share (owner): it answers 410 from now on",
    )
    async def revoke_share(
        person_id: WalletId,
        share_id: Annotated[str, Path(pattern=UUID_PATTERN)],
        caller: CurrentPerson,
    ) -> Response:
        if caller != person_id.lower():
            raise ApiError(404, "no such wallet")
        share = await store.share(caller, share_id.lower())
        if share is None:
            raise ApiError(404, "no such share")
        now = datetime.now(UTC)
        if await store.revoke_share(share, now, [outgoing("ShareRevoked", share, now)]):
            wake_relay()
        return Response(status_code=204)

    @app.get("/v1/wallets/{person_id}/audit", tags=["shares"], summary="Who read the wallet")
    async def audit(person_id: WalletId, caller: CurrentPerson) -> dict[str, Any]:
        if caller != person_id.lower():
            raise ApiError(404, "no such wallet")
        return {"entries": await store.audit_of(caller)}

    @app.get(
        "/v1/shares/{token}",
        tags=["shares"],
        summary="A share's Verifiable Presentation (anyone with the link)",
    )
    async def open_share(token: ShareToken) -> JsonResponse:
        share = await active_share(token)
        wallet = await store.wallet(share.person_id)
        if wallet is None:
            raise ApiError(404, "no such share")
        by_id = {r["record_id"]: r for r in wallet["records"]}
        # A record revoked since the share was made is left out: only standing credentials.
        credentials = [
            by_id[r]["credential"]
            for r in share.record_ids
            if r in by_id and by_id[r].get("status") == "verified" and by_id[r].get("credential")
        ]
        demographics = (
            await store.demographics_of(share.person_id) if share.include_demographics else None
        )
        presentation = share_presentation(share, credentials, demographics)
        now = datetime.now(UTC)
        await store.record_access(share, "share_opened", now, [outgoing("ShareOpened", share, now)])
        wake_relay()
        return JsonResponse(
            presentation,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @app.get(
        "/v1/shares/{token}/qr.svg",
        tags=["shares"],
        summary="A QR code of the share's link",
        response_class=Response,
        responses={200: {"content": {"image/svg+xml": {}}}},
    )
    async def share_qr(token: ShareToken) -> Response:
        await active_share(token)
        buffer = io.BytesIO()
        segno.make_qr(f"{public_url}/v1/shares/{token}", error="m").save(
            buffer, kind="svg", scale=6, border=4, title="QR code of the share link"
        )
        return Response(
            buffer.getvalue(),
            media_type="image/svg+xml",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    @app.get("/wallet", tags=["page"], summary="The wallet page", response_class=HTMLResponse)
    async def wallet_page() -> HTMLResponse:
        return HTMLResponse(
            WALLET_PAGE,
            headers={
                "Cache-Control": "no-store",
                "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
                "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; "
                "frame-ancestors 'none'",
            },
        )

    return app


def _skill_ref(taxonomy: Any, skill_id: str) -> dict[str, str]:
    skill = taxonomy.skills.get(skill_id)
    return {"skill_id": skill_id, "name": skill.name if skill else skill_id}


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": "Bearer"}

"""Access that can be taken back: an organization rotates or revokes its API key, a registry
admin resets a person's access token. Each change is an event on ``ler.enrollment.v1`` from
which every other service learns the new hash (docs/security.md, "Revoking access")."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field

from ler import telemetry
from ler.envelope import TRACEPARENT, event, new_traceparent
from ler.outbox import OutgoingMessage
from ler.topics import ENROLLMENT
from ler.web import ApiError, bearer_token, new_secret, token_hash
from services.enrollment.deps import Admin, PersonPath, context, forget_issuer, is_admin
from services.enrollment.domain import envelope_for

log = logging.getLogger(__name__)
router = APIRouter(tags=["access"])
OrganizationPath = Annotated[uuid.UUID, Path(description="The organization's id")]
CHALLENGE = {"WWW-Authenticate": "Bearer"}


class ApiKeyOut(BaseModel):
    organization_id: uuid.UUID
    api_key: str = Field(description="Shown once; the previous key no longer works.")


class AccessTokenOut(BaseModel):
    person_id: uuid.UUID
    access_token: str = Field(description="Shown once; the previous token no longer works.")


async def organization_or_admin(request: Request, organization_id: OrganizationPath) -> str:
    """The registry admin, or the organization itself by its current API key."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, "an organization's API key is required", headers=CHALLENGE)
    ctx = context(request)
    if is_admin(ctx, token):
        return "admin"
    org = await ctx.store.organization_by_key(token_hash(token))
    if org is None:
        raise ApiError(401, "unknown API key", headers=CHALLENGE)
    if org.organization_id != str(organization_id):
        raise ApiError(403, "an organization may change only its own API key")
    return "organization"


OrganizationOrAdmin = Annotated[str, Depends(organization_or_admin)]


def _message(request: Request, key: str, event_type: str, **fields: object) -> OutgoingMessage:
    record = event(envelope_for(event_type, str(uuid.uuid4())), **fields)
    trace = telemetry.current_traceparent() or new_traceparent()
    return OutgoingMessage(
        ENROLLMENT.name,
        key.encode(),
        context(request).codec.encode(record),
        [(TRACEPARENT, trace.encode())],
    )


async def _replace_key(request: Request, org_id: str, actor: str, api_key: str | None) -> None:
    """Store the new key's hash (or, on revocation, the hash of a secret nobody holds) and
    publish the change; the API's own cache of keys forgets this organization at once."""
    store = context(request).store
    published = token_hash(api_key) if api_key else None
    stored = published or token_hash(new_secret("revoked"))
    message = _message(
        request,
        org_id,
        "OrganizationApiKeyChanged",
        organization_id=org_id,
        api_key_sha256=published,
        changed_by=actor,
    )
    if not await store.set_api_key(org_id, stored, message):
        raise ApiError(404, "no organization with this id")
    forget_issuer(request, org_id)
    request.app.state.wake_relay()


@router.post(
    "/v1/organizations/{organization_id}/api-key",
    status_code=201,
    response_model=ApiKeyOut,
    summary="Rotate the organization's API key (the organization or an admin); shown once",
)
async def rotate_api_key(
    organization_id: OrganizationPath, actor: OrganizationOrAdmin, request: Request
) -> ApiKeyOut:
    api_key = new_secret("ler_org")
    await _replace_key(request, str(organization_id), actor, api_key)
    log.info("organization %s API key rotated by %s", organization_id, actor)
    return ApiKeyOut(organization_id=organization_id, api_key=api_key)


@router.delete(
    "/v1/organizations/{organization_id}/api-key",
    status_code=204,
    summary="Revoke the organization's API key (the organization or an admin)",
)
async def revoke_api_key(
    organization_id: OrganizationPath, actor: OrganizationOrAdmin, request: Request
) -> Response:
    await _replace_key(request, str(organization_id), actor, None)
    log.info("organization %s API key revoked by %s", organization_id, actor)
    return Response(status_code=204)


@router.post(
    "/v1/persons/{person_id}/access-token",
    status_code=201,
    response_model=AccessTokenOut,
    summary="Reset a person's access token (admin); the new token is shown once",
)
async def reset_access_token(person_id: PersonPath, _: Admin, request: Request) -> AccessTokenOut:
    token = new_secret("ler_person")
    message = _message(
        request,
        str(person_id),
        "PersonAccessTokenReset",
        person_id=str(person_id),
        access_token_sha256=token_hash(token),
    )
    if not await context(request).store.set_person_token(
        str(person_id), token_hash(token), message
    ):
        raise ApiError(404, "no enrolled person has this id")
    request.app.state.wake_relay()
    log.info("person %s access token reset by admin", person_id)
    return AccessTokenOut(person_id=person_id, access_token=token)


class LookupIn(BaseModel):
    sha256: str = Field(
        pattern="^[0-9a-f]{64}$", description="SHA-256 (hex) of an API key or an access token"
    )


class HolderOut(BaseModel):
    kind: str = Field(description="organization or person")
    organization_id: uuid.UUID | None = None
    name: str | None = None
    organization_kind: str | None = None
    person_id: uuid.UUID | None = None


@router.post(
    "/v1/access/lookup",
    response_model=HolderOut,
    response_model_exclude_none=True,
    summary="Who holds this credential now (admin: the other services ask on every cache miss)",
)
async def lookup(body: LookupIn, _: Admin, request: Request) -> HolderOut:
    store = context(request).store
    org = await store.organization_by_key(body.sha256)
    if org is not None:
        return HolderOut(
            kind="organization",
            organization_id=uuid.UUID(org.organization_id),
            name=org.name,
            organization_kind=org.kind,
        )
    person_id = await store.person_by_token(body.sha256)
    if person_id is None:
        raise ApiError(404, "no organization or person holds this credential")
    return HolderOut(kind="person", person_id=uuid.UUID(person_id))

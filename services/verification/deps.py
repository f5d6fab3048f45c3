"""FastAPI dependencies of the verification API: who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ler.access_lookup import Holder, access_of
from ler.web import ApiError, bearer_token, same_secret, token_hash
from services.verification.bootstrap import VerificationContext
from services.verification.domain import organization_actor, reviewer_actor
from services.verification.store import Caller


def context(request: Request) -> VerificationContext:
    ctx: VerificationContext = request.app.state.ctx
    return ctx


def _token(request: Request, what: str) -> str:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, f"{what} is required", headers={"WWW-Authenticate": "Bearer"})
    return token


def _is_admin(ctx: VerificationContext, token: str) -> bool:
    expected = ctx.platform.admin_token
    return expected is not None and same_secret(token, expected.get_secret_value())


async def require_admin(request: Request) -> Caller:
    if not _is_admin(context(request), _token(request, "the admin token")):
        raise ApiError(403, "this endpoint is for registry administrators")
    return Caller("admin")


async def reviewer_or_admin(request: Request) -> Caller:
    token = _token(request, "a reviewer's access token")
    ctx = context(request)
    if _is_admin(ctx, token):
        return Caller("admin")
    reviewer_id = await ctx.store.reviewer_by_token(token_hash(token))
    if reviewer_id is None:
        raise ApiError(401, "unknown reviewer token", headers={"WWW-Authenticate": "Bearer"})
    return Caller(reviewer_actor(reviewer_id))


async def current_person(request: Request) -> Caller:
    token = _token(request, "the person's access token")
    digest = token_hash(token)
    store = context(request).store
    person_id = await access_of(request.app.state).person(
        digest, lambda: store.person_by_token(digest)
    )
    if person_id is None:
        raise ApiError(401, "unknown access token", headers={"WWW-Authenticate": "Bearer"})
    return Caller("person", person_id=person_id)


async def any_caller(request: Request) -> Caller:
    """An admin, a reviewer, an organization (API key) or a person (access token)."""
    token = _token(request, "a token")
    ctx = context(request)
    if _is_admin(ctx, token):
        return Caller("admin")
    digest = token_hash(token)
    reviewer_id = await ctx.store.reviewer_by_token(digest)
    if reviewer_id is not None:
        return Caller(reviewer_actor(reviewer_id))
    access = access_of(request.app.state)
    org = await access.organization(digest, lambda: ctx.store.organization_by_key(digest))
    if org is not None:
        organization_id = org.organization_id if isinstance(org, Holder) else org
        return Caller(organization_actor(organization_id), organization_id=organization_id)
    person_id = await access.person(digest, lambda: ctx.store.person_by_token(digest))
    if person_id is not None:
        return Caller("person", person_id=person_id)
    raise ApiError(401, "unknown token", headers={"WWW-Authenticate": "Bearer"})


Admin = Annotated[Caller, Depends(require_admin)]
Staff = Annotated[Caller, Depends(reviewer_or_admin)]
Person = Annotated[Caller, Depends(current_person)]
AnyCaller = Annotated[Caller, Depends(any_caller)]

"""FastAPI dependencies of the enrollment API: who is calling."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import Depends, Path, Request

from ler.web import ApiError, bearer_token, same_secret, token_hash
from services.enrollment.bootstrap import EnrollmentContext
from services.enrollment.store import Organization

PersonPath = Annotated[uuid.UUID, Path(description="The person's id")]


def context(request: Request) -> EnrollmentContext:
    ctx: EnrollmentContext = request.app.state.ctx
    return ctx


#: How long an API key found in the database is trusted without looking again: a key rotated or
#: revoked through another replica stops working within this (docs/security.md).
ISSUER_CACHE_SECONDS = 0.5


def is_admin(ctx: EnrollmentContext, token: str) -> bool:
    return _is_admin(ctx, token)


def _is_admin(ctx: EnrollmentContext, token: str) -> bool:
    expected = ctx.platform.admin_token
    return expected is not None and same_secret(token, expected.get_secret_value())


def _required(request: Request, what: str) -> str:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, f"{what} is required", headers={"WWW-Authenticate": "Bearer"})
    return token


async def require_admin(request: Request) -> None:
    token = _required(request, "the admin token")
    if not _is_admin(context(request), token):
        raise ApiError(403, "this endpoint is for registry administrators")


async def current_issuer(request: Request) -> Organization:
    token = _required(request, "an organization's API key")
    ctx = context(request)
    digest = token_hash(token)
    cache: dict[str, tuple[Organization, float]] = request.app.state.issuers
    now = time.monotonic()
    cached = cache.get(digest)
    org = cached[0] if cached and cached[1] > now else await ctx.store.organization_by_key(digest)
    if org is None:
        cache.pop(digest, None)
        raise ApiError(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (org, now + ISSUER_CACHE_SECONDS)
    if org.kind == "partner":
        raise ApiError(403, "partners cannot submit records")
    return org


def forget_issuer(request: Request, organization_id: str) -> None:
    """Drop this organization's cached keys (its key was just rotated or revoked here)."""
    cache: dict[str, tuple[Organization, float]] = request.app.state.issuers
    for digest, (org, _) in list(cache.items()):
        if org.organization_id == organization_id:
            cache.pop(digest, None)


async def _token_owner(request: Request, person_id: uuid.UUID, token: str) -> str:
    owner = await context(request).store.person_by_token(token_hash(token))
    if owner is None:
        raise ApiError(401, "unknown access token", headers={"WWW-Authenticate": "Bearer"})
    if owner != str(person_id):
        raise ApiError(403, "a person may act only for themselves")
    return owner


async def person_or_admin(request: Request, person_id: PersonPath) -> str:
    token = _required(request, "the person's access token")
    if _is_admin(context(request), token):
        return "admin"
    await _token_owner(request, person_id, token)
    return "person"


async def owner(request: Request, person_id: PersonPath) -> str:
    return await _token_owner(request, person_id, _required(request, "the person's access token"))


Admin = Annotated[None, Depends(require_admin)]
Issuer = Annotated[Organization, Depends(current_issuer)]
PersonOrAdmin = Annotated[str, Depends(person_or_admin)]
Owner = Annotated[str, Depends(owner)]

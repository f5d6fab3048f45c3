"""FastAPI dependencies of the notifications API: who is calling."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path, Request

from ler.access_lookup import access_of
from ler.web import ApiError, bearer_token, same_secret, token_hash
from services.notifications.bootstrap import NotificationsContext
from services.notifications.store import NotificationsRepo

PersonPath = Annotated[uuid.UUID, Path(description="The person's id")]
PartnerPath = Annotated[uuid.UUID, Path(description="The partner's organization id")]
CHALLENGE = {"WWW-Authenticate": "Bearer"}


def context(request: Request) -> NotificationsContext:
    ctx: NotificationsContext = request.app.state.ctx
    return ctx


def repo_of(request: Request) -> NotificationsRepo:
    repo: NotificationsRepo = request.app.state.repo
    return repo


def _required(request: Request, what: str) -> str:
    token = bearer_token(request)
    if token is None:
        raise ApiError(401, f"{what} is required", headers=CHALLENGE)
    return token


async def require_admin(request: Request) -> None:
    token = _required(request, "the admin token")
    expected = context(request).platform.admin_token
    if expected is None or not same_secret(token, expected.get_secret_value()):
        raise ApiError(403, "this endpoint is for registry administrators")


async def current_organization(request: Request) -> Any:
    """The organization whose API key this is (known from OrganizationRegistered events)."""
    token = _required(request, "an organization's API key")
    digest, repo = token_hash(token), repo_of(request)
    org = await access_of(request.app.state).organization(
        digest, lambda: repo.organization_by_key(digest)
    )
    if org is None:
        raise ApiError(401, "unknown API key", headers=CHALLENGE)
    return org


async def person_self(request: Request, person_id: PersonPath) -> str:
    token = _required(request, "the person's access token")
    digest, repo = token_hash(token), repo_of(request)
    owner = await access_of(request.app.state).person(digest, lambda: repo.person_by_token(digest))
    if owner is None:
        raise ApiError(401, "unknown access token", headers=CHALLENGE)
    if owner != str(person_id):
        raise ApiError(403, "a person may act only for themselves")
    return owner


Admin = Annotated[None, Depends(require_admin)]
Organization = Annotated[Any, Depends(current_organization)]
PersonSelf = Annotated[str, Depends(person_self)]
Repo = Annotated[NotificationsRepo, Depends(repo_of)]

"""Affiliations: which organizations employ or train a person, in the person's (or a registry
admin's) word. Only an affiliated organization's records about the person verify automatically;
intake stamps each record event with it (``affiliated``), so verification never races the
``AffiliationAdded`` event across topics."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel

from ler import telemetry
from ler.envelope import TRACEPARENT, event, new_traceparent
from ler.outbox import OutgoingMessage
from ler.topics import ENROLLMENT
from ler.web import ApiError, problem
from services.enrollment.deps import PersonOrAdmin, PersonPath, context
from services.enrollment.domain import envelope_for
from services.enrollment.models import Strict

log = logging.getLogger(__name__)
router = APIRouter(tags=["affiliations"])
AFFILIABLE = ("employer", "training_provider")
OrganizationPath = Annotated[uuid.UUID, Path(description="The organization's id")]


class AffiliationIn(Strict):
    organization_id: uuid.UUID


class AffiliationOut(BaseModel):
    person_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    kind: str
    added_by: str
    added_at: datetime


class AffiliationsOut(BaseModel):
    person_id: uuid.UUID
    affiliations: list[AffiliationOut]


def _message(
    request: Request, event_type: str, person_id: str, org_id: str, actor: str
) -> OutgoingMessage:
    ctx = context(request)
    record = event(
        envelope_for(event_type, str(uuid.uuid4())),
        person_id=person_id,
        organization_id=org_id,
        changed_by=actor,
    )
    trace = telemetry.current_traceparent() or new_traceparent()
    return OutgoingMessage(
        ENROLLMENT.name,
        person_id.encode(),
        ctx.codec.encode(record),
        [(TRACEPARENT, trace.encode())],
    )


async def _enrolled(request: Request, person_id: str) -> None:
    # An admin may name anyone; a person's token was already checked against the path.
    if not await context(request).store.enrolled({person_id}):
        raise ApiError(404, "no enrolled person has this id")


async def _listed(request: Request, person_id: str) -> list[AffiliationOut]:
    rows = await context(request).store.affiliations(person_id)
    return [AffiliationOut(person_id=uuid.UUID(person_id), **row) for row in rows]


@router.post(
    "/v1/persons/{person_id}/affiliations",
    status_code=201,
    response_model=AffiliationOut,
    summary="Affiliate an employer or training provider with the person (the person or an admin)",
    responses={200: {"model": AffiliationOut, "description": "The affiliation existed already"}},
)
async def add_affiliation(
    person_id: PersonPath,
    body: AffiliationIn,
    actor: PersonOrAdmin,
    request: Request,
    response: Response,
) -> AffiliationOut:
    person, org_id = str(person_id), str(body.organization_id)
    await _enrolled(request, person)
    store = context(request).store
    org = await store.organization(org_id)
    if org is None or org.kind not in AFFILIABLE:
        raise ApiError(
            422,
            "the request is invalid",
            [problem("organization_id", "must be a registered employer or training provider")],
        )
    added = await store.add_affiliation(
        person, org_id, actor, _message(request, "AffiliationAdded", person, org_id, actor)
    )
    if added:
        request.app.state.wake_relay()
        log.info("organization %s affiliated with person %s by %s", org_id, person, actor)
    else:
        response.status_code = 200
    return next(a for a in await _listed(request, person) if str(a.organization_id) == org_id)


@router.delete(
    "/v1/persons/{person_id}/affiliations/{organization_id}",
    status_code=204,
    summary="End an organization's affiliation with the person (the person or an admin)",
)
async def remove_affiliation(
    person_id: PersonPath, organization_id: OrganizationPath, actor: PersonOrAdmin, request: Request
) -> Response:
    person, org_id = str(person_id), str(organization_id)
    removed = await context(request).store.remove_affiliation(
        person, org_id, _message(request, "AffiliationRemoved", person, org_id, actor)
    )
    if not removed:
        raise ApiError(404, "this organization is not affiliated with the person")
    request.app.state.wake_relay()
    log.info("organization %s no longer affiliated with person %s (%s)", org_id, person, actor)
    return Response(status_code=204)


@router.get(
    "/v1/persons/{person_id}/affiliations",
    response_model=AffiliationsOut,
    summary="The organizations affiliated with the person (the person or an admin)",
)
async def list_affiliations(
    person_id: PersonPath, _: PersonOrAdmin, request: Request
) -> AffiliationsOut:
    await _enrolled(request, str(person_id))
    return AffiliationsOut(person_id=person_id, affiliations=await _listed(request, str(person_id)))

"""Enrollment HTTP API: organizations, persons, consents and record intake."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Header, Request
from pydantic import TypeAdapter, ValidationError

from ler import telemetry
from ler.envelope import TRACEPARENT, event, new_id, new_traceparent
from ler.kafka import started_producer
from ler.outbox import BackgroundRelay, OutgoingMessage, SqlOutbox
from ler.topics import ENROLLMENT, RECORDS
from ler.web import (
    ApiError,
    ErrorBody,
    JsonResponse,
    RateLimiter,
    new_app,
    new_secret,
    problem,
    pydantic_problems,
    token_hash,
    too_many_requests,
)
from services.enrollment import access, affiliations
from services.enrollment.bootstrap import EnrollmentContext
from services.enrollment.deps import Admin, Issuer, Owner, PersonOrAdmin, PersonPath
from services.enrollment.domain import (
    IdentityKeys,
    envelope_for,
    record_dates_problems,
    record_event,
)
from services.enrollment.models import (
    ConsentIn,
    CredentialIn,
    EmploymentIn,
    LearningIn,
    OrganizationIn,
    OrganizationOut,
    PersonIn,
    PersonOut,
    RecordIn,
    RecordsAccepted,
)
from services.enrollment.store import IdempotencyConflict, Organization

log = logging.getLogger(__name__)

RECORD_ADAPTER: TypeAdapter[EmploymentIn | LearningIn | CredentialIn] = TypeAdapter(RecordIn)
RECORDS_BODY = {
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/EmploymentIn"},
                    {"$ref": "#/components/schemas/LearningIn"},
                    {"$ref": "#/components/schemas/CredentialIn"},
                    {
                        "type": "object",
                        "required": ["records"],
                        "additionalProperties": False,
                        "properties": {
                            "records": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 1000,
                                "items": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/EmploymentIn"},
                                        {"$ref": "#/components/schemas/LearningIn"},
                                        {"$ref": "#/components/schemas/CredentialIn"},
                                    ]
                                },
                            }
                        },
                    },
                ]
            }
        }
    },
    "required": True,
}


def create_app(ctx: EnrollmentContext) -> FastAPI:
    store, codec, settings = ctx.store, ctx.codec, ctx.settings
    known_persons: set[str] = set()
    request_limit = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    record_limit = RateLimiter(
        settings.record_rate_limit_per_second, settings.record_rate_limit_burst
    )

    relay = BackgroundRelay(
        SqlOutbox(store.db, store.outbox),
        lambda: started_producer(ctx.kafka, "ler-enrollment-relay"),
        name="enrollment-outbox-relay",
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            async with relay:
                yield
        finally:
            await store.close()

    def wake_relay() -> None:
        relay.wake()

    async def readiness() -> dict[str, Any]:
        broker = "ok" if relay.connected else "connecting"
        return {"database": "ok", "broker": broker, "outbox": await relay.pending()}

    app = new_app(
        "LER enrollment",
        "Enrollment of organizations and persons, consents, and record intake.",
        readiness,
        service="ler-enrollment",
        max_body_bytes=settings.max_body_bytes,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.issuers = {}
    app.state.wake_relay = relay.wake
    app.include_router(affiliations.router)
    app.include_router(access.router)

    def outgoing(topic: str, key: str, record: dict[str, Any], traceparent: str) -> OutgoingMessage:
        return OutgoingMessage(
            topic, key.encode(), codec.encode(record), [(TRACEPARENT, traceparent.encode())]
        )

    def trace_of(_: Request) -> str:
        # The request's span (which continues the caller's traceparent, if any).
        return telemetry.current_traceparent() or new_traceparent()

    @app.post(
        "/v1/organizations",
        status_code=201,
        response_model=OrganizationOut,
        tags=["enrollment"],
        summary="Register an organization (admin); its API key is returned once",
    )
    async def register_organization(
        body: OrganizationIn, _: Admin, request: Request
    ) -> OrganizationOut:
        org = Organization(str(uuid.uuid4()), body.name, body.kind)
        api_key = new_secret("ler_org")
        envelope = envelope_for("OrganizationRegistered", str(uuid.uuid4()))
        record = event(
            envelope,
            organization_id=org.organization_id,
            name=org.name,
            kind=org.kind,
            api_key_sha256=token_hash(api_key),
        )
        await store.add_organization(
            org,
            token_hash(api_key),
            outgoing(ENROLLMENT.name, org.organization_id, record, trace_of(request)),
        )
        wake_relay()
        log.info("organization %s registered (%s)", org.organization_id, org.kind)
        return OrganizationOut(
            organization_id=uuid.UUID(org.organization_id),
            name=org.name,
            kind=org.kind,
            api_key=api_key,
        )

    @app.post(
        "/v1/persons",
        status_code=201,
        response_model=PersonOut,
        tags=["enrollment"],
        summary="Enroll a person (admin); the access token is returned once",
        responses={409: {"description": "A likely duplicate of an enrolled person"}},
    )
    async def enroll_person(body: PersonIn, _: Admin, request: Request) -> PersonOut:
        if body.birth_date >= datetime.now(UTC).date():
            raise ApiError(
                422,
                "the request is invalid",
                [problem("birth_date", "must be in the past")],
            )
        keys = IdentityKeys.of(body.given_name, body.family_name, body.email, body.birth_date)
        duplicate = await store.likely_duplicate(keys)
        if duplicate is not None and not body.confirm_not_duplicate:
            raise ApiError(
                409,
                "a likely duplicate of an enrolled person (same e-mail, or same name and birth "
                "date); set confirm_not_duplicate to enroll a distinct person",
                [problem("email", "must not match an enrolled person")],
                possible_duplicate_of=duplicate,
            )
        person_id = str(uuid.uuid4())
        token = new_secret("ler_person")
        person = body.model_dump(exclude={"confirm_not_duplicate"})
        person.update(person_id=person_id, possible_duplicate_of=duplicate)
        envelope = envelope_for("PersonEnrolled", str(uuid.uuid4()))
        record = event(
            envelope,
            person_id=person_id,
            given_name=body.given_name,
            family_name=body.family_name,
            email=body.email,
            birth_date=body.birth_date,
            county=body.county,
            education_level=body.education_level,
            demographics=dict(body.demographics),
            access_token_sha256=token_hash(token),
            possible_duplicate_of=duplicate,
        )
        await store.add_person(
            person,
            keys,
            token_hash(token),
            outgoing(ENROLLMENT.name, person_id, record, trace_of(request)),
        )
        known_persons.add(person_id)
        wake_relay()
        log.info("person %s enrolled%s", person_id, " (flagged duplicate)" if duplicate else "")
        return PersonOut(
            person_id=uuid.UUID(person_id),
            access_token=token,
            possible_duplicate_of=uuid.UUID(duplicate) if duplicate else None,
        )

    @app.post(
        "/v1/persons/{person_id}/consents",
        tags=["enrollment"],
        summary="Grant or withdraw consent to share with a partner (the person or an admin)",
    )
    async def change_consent(
        person_id: PersonPath, body: ConsentIn, actor: PersonOrAdmin, request: Request
    ) -> dict[str, Any]:
        partner = await store.organization(str(body.partner_id))
        if partner is None or partner.kind != "partner":
            raise ApiError(
                422,
                "the request is invalid",
                [problem("partner_id", "must be a registered partner organization")],
            )
        envelope = envelope_for("ConsentChanged", str(uuid.uuid4()))
        record = event(
            envelope,
            person_id=str(person_id),
            partner_id=str(body.partner_id),
            granted=body.granted,
            changed_by=actor,
        )
        await store.set_consent(
            str(person_id),
            str(body.partner_id),
            body.granted,
            outgoing(ENROLLMENT.name, str(person_id), record, trace_of(request)),
        )
        wake_relay()
        return {"person_id": str(person_id), "partner_id": str(body.partner_id), **_granted(body)}

    async def read_json(request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise ApiError(413, f"request body larger than {settings.max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            raise ApiError(413, f"request body larger than {settings.max_body_bytes} bytes")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise ApiError(
                422, "the request is invalid", [problem("body", "must be valid JSON")]
            ) from None

    async def unknown_persons(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        wanted = {r["person_id"] for r in records} - known_persons
        if wanted:
            found = await store.enrolled(wanted)
            known_persons.update(found)
            wanted -= found
        return [
            problem(
                "person_id",
                "must be an enrolled person",
                f"records[{i}].person_id: no enrolled person has this id",
                index=i,
            )
            for i, r in enumerate(records)
            if r["person_id"] in wanted
        ]

    @app.post(
        "/v1/records",
        status_code=202,
        response_model=RecordsAccepted,
        tags=["intake"],
        summary="Submit one record or a batch of up to 1,000 (issuer API key)",
        openapi_extra={"requestBody": RECORDS_BODY},
        responses={
            409: {"model": ErrorBody, "description": "Idempotency-Key reused with another body"},
            413: {"model": ErrorBody, "description": "Body too large"},
            429: {
                "model": ErrorBody,
                "description": "Too many requests or records for this organization",
                "headers": {
                    "Retry-After": {
                        "description": "Seconds to wait",
                        "schema": {"type": "integer"},
                    }
                },
            },
        },
    )
    async def submit_records(
        request: Request,
        issuer: Issuer,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", max_length=255, min_length=1)
        ] = None,
    ) -> JsonResponse:
        wait = request_limit.take(issuer.organization_id)
        if wait:
            raise too_many_requests(
                wait, f"{settings.rate_limit_per_second:g} requests a second", "ler-enrollment"
            )
        raw = await read_json(request)
        request_sha256 = hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()
        if idempotency_key is not None:
            stored = await store.stored_response(issuer.organization_id, idempotency_key)
            if stored is not None:
                return replay_or_conflict(stored.request_sha256, request_sha256, stored.body)
        batch = isinstance(raw, dict) and "records" in raw
        items = raw["records"] if batch else [raw]
        if batch and (set(raw) != {"records"} or not isinstance(items, list)):
            raise ApiError(
                422,
                "the request is invalid",
                [problem("records", "a batch is an object with only a records list")],
            )
        if not 1 <= len(items) <= settings.max_batch:
            raise ApiError(
                422,
                "the request is invalid",
                [problem("records", f"must hold between 1 and {settings.max_batch} records")],
            )
        wait = record_limit.take(issuer.organization_id, len(items))
        if wait:
            raise too_many_requests(
                wait,
                f"{settings.record_rate_limit_per_second:g} records a second",
                "ler-enrollment",
            )
        records = await checked_records(items, batch)
        affiliated = await store.affiliated_persons(
            issuer.organization_id, {r["person_id"] for r in records}
        )
        trace = trace_of(request)
        correlation_id = str(new_id())
        record_ids = [new_id() for _ in records]
        messages = [
            outgoing(
                RECORDS.name,
                r["person_id"],
                record_event(
                    r,
                    record_id,
                    submitted_by=issuer.organization_id,
                    submitter_kind="organization",
                    correlation_id=correlation_id,
                    affiliated=r["person_id"] in affiliated,
                ),
                trace,
            )
            for r, record_id in zip(records, record_ids, strict=True)
        ]
        body = {"record_ids": [str(i) for i in record_ids]}
        key = (issuer.organization_id, idempotency_key, request_sha256) if idempotency_key else None
        try:
            await store.accept(messages, idempotency=key, body=body)
        except IdempotencyConflict:
            stored = await store.stored_response(issuer.organization_id, idempotency_key or "")
            if stored is None:
                raise
            return replay_or_conflict(stored.request_sha256, request_sha256, stored.body)
        wake_relay()
        return JsonResponse(body, status_code=202)

    def validate_records(items: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Each item checked on its own, so every bad record of a batch is reported at once."""
        records: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        today = datetime.now(UTC).date()
        for index, item in enumerate(items):
            try:
                record = RECORD_ADAPTER.validate_python(item).model_dump(mode="python")
            except ValidationError as exc:
                errors += record_problems(index, exc)
                continue
            record["person_id"] = str(record["person_id"])
            errors += [
                problem(field, rule, f"records[{index}].{field}: {rule}", index=index)
                for field, rule in record_dates_problems(record, today)
            ]
            records.append(record)
        return records, errors

    async def checked_records(items: list[Any], batch: bool) -> list[dict[str, Any]]:
        records, errors = validate_records(items)
        if not errors:
            errors = await unknown_persons(records)
        if errors:
            raise ApiError(422, invalid_batch(batch, errors), errors)
        return records

    def replay_or_conflict(stored_sha: str, request_sha: str, body: dict[str, Any]) -> JsonResponse:
        if stored_sha != request_sha:
            raise ApiError(
                409,
                "this Idempotency-Key was used with a different body",
                [problem("Idempotency-Key", "must be reused only with the same body")],
            )
        return JsonResponse(body, status_code=202, headers={"Idempotent-Replayed": "true"})

    @app.post(
        "/v1/persons/{person_id}/records",
        status_code=202,
        response_model=RecordsAccepted,
        tags=["intake"],
        summary="Self-report a record (the person's own access token); it goes to review",
    )
    async def self_report(person_id: PersonPath, caller: Owner, request: Request) -> JsonResponse:
        raw = await read_json(request)
        if isinstance(raw, dict) and "person_id" not in raw:
            raw = {**raw, "person_id": str(person_id)}
        records = await checked_records([raw], batch=False)
        if records[0]["person_id"] != caller:
            raise ApiError(
                422,
                "the request is invalid",
                [problem("person_id", "must be your own person id", index=0)],
            )
        record_id = uuid.uuid4()
        message = outgoing(
            RECORDS.name,
            caller,
            record_event(
                records[0],
                record_id,
                submitted_by=caller,
                submitter_kind="person",
                correlation_id=str(uuid.uuid4()),
            ),
            trace_of(request),
        )
        await store.accept([message], idempotency=None, body={})
        wake_relay()
        return JsonResponse({"record_ids": [str(record_id)]}, status_code=202)

    return app


def record_problems(index: int, exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if loc and loc[0] in {"employment", "learning", "credential"}:
            loc = loc[1:]
        field = ".".join(loc) or "type"
        (item,) = pydantic_problems([{**error, "loc": tuple(loc) or ("type",)}])
        item.update(index=index, message=f"records[{index}].{field}: {error['msg']}")
        out.append(item)
    return out


def invalid_batch(batch: bool, errors: list[dict[str, Any]]) -> str:
    if not batch:
        return "the record is invalid"
    bad = len({e.get("index") for e in errors})
    return f"{bad} record(s) of the batch are invalid; nothing was accepted"


def _granted(body: ConsentIn) -> dict[str, Any]:
    return {"granted": body.granted}

"""Notifications HTTP API: webhook subscriptions and deliveries, people's preferences and
messages, partner agreements and the partner-feed export."""

from __future__ import annotations

import base64
import binascii
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, Query
from fastapi.responses import Response

from ler.web import ApiError, JsonResponse, new_app, problem
from services.notifications.bootstrap import NotificationsContext
from services.notifications.deps import (
    Admin,
    Organization,
    PartnerPath,
    PersonPath,
    PersonSelf,
    Repo,
)
from services.notifications.domain import (
    NOTICE_KINDS,
    ORGANIZATION_EVENT_TYPES,
    PARTNER_EVENT_TYPES,
    REQUIRED_NOTICES,
    event_types_problem,
    new_webhook_secret,
    preferences_problems,
    url_problem,
)
from services.notifications.feed import ELEMENTS, elements_problem
from services.notifications.models import (
    AgreementIn,
    AgreementOut,
    DeliveryOut,
    DeliveryPage,
    PreferencesIn,
    PreferencesOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
)
from services.notifications.store import aware
from services.notifications.withdrawals import refuse_withdrawn_retry


def create_app(ctx: NotificationsContext) -> FastAPI:
    repo = ctx.repo()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await repo.open()
        try:
            yield
        finally:
            await repo.close()

    async def readiness() -> dict[str, Any]:
        await repo.delivery_counts()
        return {"database": "ok"}

    app = new_app(
        "LER notifications",
        "Messages to people, signed webhooks to organizations and partners, partner feeds.",
        readiness,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.repo = repo

    def invalid(field: str, rule: str) -> ApiError:
        return ApiError(422, "the request is invalid", [problem(field, rule)])

    @app.get("/v1/webhook-event-types", tags=["webhooks"], summary="The documented event types")
    async def event_types() -> dict[str, Any]:
        return {
            "organization": ORGANIZATION_EVENT_TYPES,
            "partner": PARTNER_EVENT_TYPES,
        }

    @app.post(
        "/v1/subscriptions",
        status_code=201,
        response_model=SubscriptionCreated,
        tags=["webhooks"],
        summary="Subscribe to webhooks (organization or partner API key); the secret is shown once",
    )
    async def subscribe(body: SubscriptionIn, org: Organization, repo: Repo) -> SubscriptionCreated:
        reason = url_problem(body.url, allow_private=ctx.allow_private_urls)
        if reason:
            raise invalid("url", reason)
        reason = event_types_problem(body.event_types, org.kind)
        if reason:
            raise invalid("event_types", reason)
        event_types = sorted(set(body.event_types))
        row = await repo.add_subscription(
            org.organization_id, body.url, event_types, new_webhook_secret()
        )
        return SubscriptionCreated(
            subscription_id=uuid.UUID(row["subscription_id"]),
            url=row["url"],
            event_types=event_types,
            created_at=row["created_at"],
            secret=row["secret"],
        )

    @app.get(
        "/v1/subscriptions",
        response_model=list[SubscriptionOut],
        tags=["webhooks"],
        summary="Your active subscriptions",
    )
    async def subscriptions(org: Organization, repo: Repo) -> list[SubscriptionOut]:
        return [
            SubscriptionOut(
                subscription_id=uuid.UUID(r.subscription_id),
                url=r.url,
                event_types=list(r.event_types),
                created_at=aware(r.created_at) or r.created_at,
            )
            for r in await repo.subscriptions_of(org.organization_id)
        ]

    @app.delete(
        "/v1/subscriptions/{subscription_id}",
        status_code=204,
        tags=["webhooks"],
        summary="Stop a subscription (pending deliveries are dropped)",
    )
    async def unsubscribe(subscription_id: uuid.UUID, org: Organization, repo: Repo) -> Response:
        if not await repo.deactivate_subscription(org.organization_id, str(subscription_id)):
            raise ApiError(404, "no such subscription")
        return Response(status_code=204)

    @app.get(
        "/v1/deliveries",
        response_model=DeliveryPage,
        tags=["webhooks"],
        summary="Your webhook deliveries, newest first",
    )
    async def deliveries(
        org: Organization,
        repo: Repo,
        state: Annotated[str | None, Query(pattern="^(pending|delivered|dead)$")] = None,
        subscription_id: uuid.UUID | None = None,
        before: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> DeliveryPage:
        rows = await repo.deliveries_of(
            org.organization_id,
            state=state,
            subscription_id=str(subscription_id) if subscription_id else None,
            before=_page_key(before) if before else None,
            limit=limit,
        )
        page = [_delivery(r) for r in rows]
        after = _page_cursor(rows[-1]) if len(rows) == limit else None
        return DeliveryPage(deliveries=page, next=after)

    @app.post(
        "/v1/deliveries/{delivery_id}/retry",
        status_code=202,
        response_model=DeliveryOut,
        tags=["webhooks"],
        summary="Send a delivery again now (same webhook-id, a fresh attempt budget)",
    )
    async def retry(delivery_id: str, org: Organization, repo: Repo) -> DeliveryOut:
        await refuse_withdrawn_retry(repo, org.organization_id, delivery_id)
        row = await repo.retry_delivery(org.organization_id, delivery_id)
        if row is None:
            raise ApiError(404, "no such delivery")
        return _delivery(row)

    @app.get(
        "/v1/persons/{person_id}/notification-preferences",
        response_model=PreferencesOut,
        tags=["people"],
        summary="Your notification preferences (your access token)",
    )
    async def get_preferences(person_id: PersonPath, me: PersonSelf, repo: Repo) -> PreferencesOut:
        prefs = await repo.preferences(me)
        return PreferencesOut(
            person_id=person_id,
            email=prefs["email"],
            events=prefs["events"],
            always_sent=sorted(REQUIRED_NOTICES),
        )

    @app.put(
        "/v1/persons/{person_id}/notification-preferences",
        response_model=PreferencesOut,
        tags=["people"],
        summary="Set your notification preferences (your access token)",
    )
    async def put_preferences(
        person_id: PersonPath, body: PreferencesIn, me: PersonSelf, repo: Repo
    ) -> PreferencesOut:
        problems = preferences_problems(body.events)
        if problems:
            raise ApiError(
                422, "the request is invalid", [problem(field, rule) for field, rule in problems]
            )
        await repo.set_preferences(me, body.email, dict(body.events))
        return PreferencesOut(
            person_id=person_id,
            email=body.email,
            events=dict(body.events),
            always_sent=sorted(REQUIRED_NOTICES),
        )

    @app.get(
        "/v1/persons/{person_id}/notifications",
        tags=["people"],
        summary="The messages sent (or held back) for you, with their delivery state",
    )
    async def my_messages(person_id: PersonPath, me: PersonSelf, repo: Repo) -> JsonResponse:
        return JsonResponse(
            {"person_id": me, "kinds": NOTICE_KINDS, "messages": await repo.messages_of(me)}
        )

    @app.get(
        "/v1/partner-feed-elements",
        tags=["partner feeds"],
        summary="The core data elements an agreement may name, and where each comes from",
    )
    async def feed_elements() -> dict[str, str]:
        return ELEMENTS

    @app.post(
        "/v1/agreements",
        status_code=201,
        response_model=AgreementOut,
        tags=["partner feeds"],
        summary="Record a partner's data-sharing agreement (admin); replaces the previous one",
    )
    async def agreement(body: AgreementIn, _: Admin, repo: Repo) -> AgreementOut:
        partner = await repo.organization(str(body.partner_id))
        if partner is None or partner.kind != "partner":
            raise invalid("partner_id", "must be a registered organization of kind partner")
        reason = elements_problem(body.elements)
        if reason:
            raise invalid("elements", reason)
        version = await repo.set_agreement(str(body.partner_id), list(body.elements))
        return AgreementOut(partner_id=body.partner_id, elements=body.elements, version=version)

    @app.get(
        "/v1/partner-feeds/{partner_id}/export",
        tags=["partner feeds"],
        summary="Your feed as NDJSON from a cursor (the partner's API key)",
        response_class=Response,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def export(
        partner_id: PartnerPath,
        org: Organization,
        repo: Repo,
        since: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> Response:
        if org.organization_id != str(partner_id) or org.kind != "partner":
            raise ApiError(403, "a partner may read only its own feed")
        cursor = _feed_cursor(since)
        rows = await repo.feed_entries(str(partner_id), cursor, limit)
        lines = [f'{{"cursor":"{r.seq}",{r.body[1:]}' for r in rows]
        last = str(rows[-1].seq) if rows else str(cursor)
        body = "".join(line + "\n" for line in lines)
        return Response(
            body,
            media_type="application/x-ndjson",
            headers={"Feed-Cursor": last, "Feed-More": "true" if len(rows) == limit else "false"},
        )

    return app


def _feed_cursor(since: str | None) -> int:
    if since is None or since == "":
        return 0
    if not since.isdigit():
        raise ApiError(
            422, "the request is invalid", [problem("since", "must be a cursor from this feed")]
        )
    return int(since)


def _delivery(row: Any) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=row.delivery_id,
        subscription_id=uuid.UUID(row.subscription_id),
        event_type=row.event_type,
        event_id=uuid.UUID(row.event_id),
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at) if row.state == "pending" else None,
        last_status=row.last_status,
        last_error=row.last_error,
        created_at=aware(row.created_at) or row.created_at,
        delivered_at=aware(row.delivered_at),
    )


def _page_cursor(row: Any) -> str:
    created = aware(row.created_at) or row.created_at
    raw = f"{created.isoformat()}|{row.delivery_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_key(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, delivery_id = raw.partition("|")
        return datetime.fromisoformat(at), delivery_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(
            422, "the request is invalid", [problem("before", "must be a cursor from this list")]
        ) from None

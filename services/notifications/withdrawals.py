"""What a consent withdrawal takes back from a partner (docs/partner-feed.md, "Withdrawal"):
in the transaction that writes the retraction, the pseudonym's publications leave the export,
their deliveries that have not gone yet are cancelled, every delivery of them is refused a retry,
and the retraction's own deliveries wait until no delivery of a publication is in flight."""

from __future__ import annotations

from datetime import datetime

import orjson
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.web import ApiError, problem
from services.notifications.store import NotificationsRepo, utcnow
from services.notifications.tables import Tables

PUBLISHED = "PartnerRecordPublished"
CANCELLED = "cancelled"


async def withdraw(
    conn: AsyncConnection, t: Tables, partner_id: str, pseudonym: str
) -> datetime | None:
    """Take back everything published to the partner under ``pseudonym``; returns when the
    retraction may be sent (the end of the last in-flight lease), or None for at once."""
    e, d = t.feed_entries, t.deliveries
    entries = (
        await conn.execute(
            select(e.c.seq, e.c.body).where(
                e.c.partner_id == partner_id,
                e.c.pseudonymous_id == pseudonym,
                e.c.event_type == PUBLISHED,
            )
        )
    ).all()
    if not entries:
        return None
    event_ids = [str(orjson.loads(row.body)["event_id"]) for row in entries]
    now = utcnow()
    known = set(
        (
            await conn.execute(
                select(t.feed_withdrawn.c.event_id).where(
                    t.feed_withdrawn.c.event_id.in_(event_ids)
                )
            )
        ).scalars()
    )
    fresh = [
        {"event_id": i, "partner_id": partner_id, "pseudonymous_id": pseudonym, "withdrawn_at": now}
        for i in event_ids
        if i not in known
    ]
    if fresh:
        await conn.execute(t.feed_withdrawn.insert(), fresh)
    await conn.execute(
        e.delete().where(e.c.partner_id == partner_id, e.c.seq.in_([r.seq for r in entries]))
    )
    in_flight = await conn.scalar(
        select(func.max(d.c.leased_until)).where(
            d.c.event_id.in_(event_ids), d.c.state == "pending", d.c.leased_until > now
        )
    )
    await conn.execute(
        update(d)
        .where(d.c.event_id.in_(event_ids), d.c.state == "pending")
        .values(state=CANCELLED, last_error="consent withdrawn", leased_until=None)
    )
    return in_flight if isinstance(in_flight, datetime) else None


async def hold(conn: AsyncConnection, t: Tables, event_id: str, until: datetime) -> None:
    """Keep the retraction's deliveries from going before ``until``."""
    d = t.deliveries
    await conn.execute(
        update(d)
        .where(d.c.event_id == event_id, d.c.state == "pending")
        .values(next_attempt_at=until)
    )


async def refuse_withdrawn_retry(
    repo: NotificationsRepo, organization_id: str, delivery_id: str
) -> None:
    """A delivery of data the person has since withdrawn is never sent again (409); another
    organization's delivery is left to answer 404 as usual."""
    d, w = repo.t.deliveries, repo.t.feed_withdrawn
    async with repo.db.read() as conn:
        withdrawn = await conn.scalar(
            select(func.count())
            .select_from(d.join(w, w.c.event_id == d.c.event_id))
            .where(d.c.delivery_id == delivery_id, d.c.organization_id == organization_id)
        )
    if withdrawn:
        raise ApiError(
            409,
            "the person withdrew consent: this delivery's data is no longer the partner's",
            [problem("delivery_id", "must not carry data of a person who withdrew consent")],
        )

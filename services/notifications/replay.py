"""``ler replay notifications`` and ``ler replay partner-feed``: rebuild the two projections of the
notifications database from the topics, and the split between what a replay rebuilds and what
only the API writes (docs/operations.md, "Disaster recovery").

- **API-owned state, kept (restored from a backup), never replayed**: webhook subscriptions,
  people's notification preferences, partner agreements. No topic carries them.
- **Projections, rebuilt**: what the processors derive from ``ler.enrollment.v1``,
  ``ler.records.v1``, ``ler.verification.v1`` and ``ler.sla.v1``.
- **Sending state, not a projection**: whether and when a message or delivery was sent, its
  attempts and leases. A replay marks what it rebuilds ``replayed``: nothing is sent twice (a
  delivery can be sent again on purpose with ``POST /v1/deliveries/{id}/retry``).
- **The partner feed's output log**: what each partner was sent (``partner_feed_published``:
  pseudonym and published/retracted; the feed entries, their sequence numbers and event ids;
  the partner webhooks announcing them; ``partner_feed_withdrawn``), also on
  ``ler.partner-feed.v1``. It is not compared: the store publishes once per batch from the
  batch's final facts, so the same log cut into other batches publishes differently (a consent
  granted and withdrawn within one batch publishes nothing; live it published and then
  retracted). A replay re-derives it from the current facts (see docs/operations.md for what
  that means for partners).
"""

from __future__ import annotations

from sqlalchemy import Table, update

from ler.projection import Dump, dump_tables
from ler.replay import replay as replay_log
from services.notifications.bootstrap import (
    bootstrap,
    notifications_runner,
    partner_feed_runner,
)
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.store import SqlNotificationStore
from services.notifications.tables import Tables

SENDING = (
    "state",
    "attempts",
    "next_attempt_at",
    "leased_until",
    "last_status",
    "last_error",
    "created_at",
    "delivered_at",
    "sent_at",
    "to_address",
    "subject",
)


def api_owned(t: Tables) -> list[Table]:
    return [t.subscriptions, t.preferences, t.agreements]


def notifications_projection(t: Tables) -> list[Table]:
    return [t.persons, t.organizations, t.records, t.messages, t.deliveries]


def partner_feed_projection(t: Tables) -> list[Table]:
    return [t.feed_persons, t.feed_consents, t.feed_records]


async def notifications_dump(store: SqlNotificationStore) -> Dump:
    """The notifications projection as a replay must rebuild it (the partner feed's webhook
    deliveries are the feed's output log, not this projection)."""
    t = store.t
    return await dump_tables(
        store.db,
        [*notifications_projection(t), store.notice_versions],
        exclude={t.messages.name: SENDING, t.deliveries.name: SENDING},
        where={t.deliveries.name: t.deliveries.c.event_type.not_like("partner_feed.%")},
    )


async def partner_feed_dump(store: SqlPartnerFeedStore) -> Dump:
    """The feed's facts, and the order gates (latest consent time, record version) kept with them."""
    gates = [store.order.consent_clocks, store.order.status_versions]
    return await dump_tables(store.db, [*partner_feed_projection(store.t), *gates])


async def replay_notifications(database_url: str | None = None) -> int:
    ctx = bootstrap(database_url=database_url)
    store = SqlNotificationStore(ctx.database_url)
    store.replaying = True
    try:
        return await replay_log(notifications_runner(store, emit=False), ctx.kafka)
    finally:
        await store.close()


async def replay_partner_feed(database_url: str | None = None) -> int:
    ctx = bootstrap(database_url=database_url)
    store = SqlPartnerFeedStore(ctx.database_url, ctx.pseudonym_secret, ctx.codec)
    try:
        read = await replay_log(partner_feed_runner(store, emit=False), ctx.kafka)
        await mark_feed_deliveries_replayed(store)
        return read
    finally:
        await store.close()


async def mark_feed_deliveries_replayed(store: SqlPartnerFeedStore) -> None:
    """The feed webhooks a replay queued announce entries partners already had: not sent."""
    d = store.t.deliveries
    async with store.db.transaction() as conn:
        await conn.execute(
            update(d)
            .where(d.c.state == "pending", d.c.event_type.like("partner_feed.%"))
            .values(state="replayed")
        )

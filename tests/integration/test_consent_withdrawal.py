"""Issue 11, item 4, on SQLite and PostgreSQL: after a person withdraws consent, the partner's
export from any cursor holds only the retraction for that person, retrying an old delivery of the
person's data is refused, pending deliveries of it are cancelled (a backed-off one never goes,
an in-flight one cannot come back as a retry), the retraction waits for what was in flight, and
no publication ever follows a retraction under the same pseudonym.

Failed on main before the fix: the export from cursor 0 still held both publications, and the
retry of the delivered one answered 202."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from ler.web import token_hash
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.bootstrap import notifications_runner, partner_feed_runner
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.settings import NotificationsSettings
from services.notifications.store import Attempt, NotificationsRepo, SqlNotificationStore
from tests.helpers import client_for

pytestmark = pytest.mark.integration
CODEC = default_codec()
PARTNER_KEY = "ler_org_partner-key-for-the-withdrawal-test"


class Log:
    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}

    def __call__(self, topic: str, key: str, event_type: str, **fields: Any) -> list[Message]:
        offset = self.offsets[topic] = self.offsets.get(topic, -1) + 1
        record = event(new_envelope(event_type, "test"), **fields)
        return [Message(topic, 0, offset, key.encode(), CODEC.encode(record))]


def person_enrolled(log: Log, person_id: str) -> list[Message]:
    return log(
        "ler.enrollment.v1",
        person_id,
        "PersonEnrolled",
        person_id=person_id,
        given_name="Wren",
        family_name="Withdrawn",
        email="wren@example.org",
        birth_date=date(1990, 5, 6),
        county="Marin",
        education_level="bachelor",
        demographics={},
        access_token_sha256="b" * 64,
        possible_duplicate_of=None,
    )


def learning(log: Log, person_id: str, org_id: str, hours: float) -> list[Message]:
    return log(
        "ler.records.v1",
        person_id,
        "LearningRecordSubmitted",
        record_id=str(uuid.uuid4()),
        person_id=person_id,
        submitted_by=org_id,
        submitter_kind="organization",
        title="Course",
        description=None,
        evidence=[],
        completed_on=date(2025, 1, 2),
        hours=hours,
        competencies=[],
    )


def consent(log: Log, person_id: str, partner_id: str, granted: bool) -> list[Message]:
    return log(
        "ler.enrollment.v1",
        person_id,
        "ConsentChanged",
        person_id=person_id,
        partner_id=partner_id,
        granted=granted,
        changed_by="person",
    )


def lines(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines()]


async def deliveries(repo: NotificationsRepo) -> dict[str, Any]:
    d = repo.t.deliveries
    async with repo.db.read() as conn:
        return {r.event_id: r for r in await conn.execute(select(d))}


async def register_partner(database_url: str, log: Log, partner_id: str) -> None:
    """The notifications processor learns the partner and its API key."""
    notifications = SqlNotificationStore(database_url)
    await notifications.open()
    runner = notifications_runner(notifications, emit=False)
    await runner.load_positions()
    await runner.process(
        log(
            "ler.enrollment.v1",
            partner_id,
            "OrganizationRegistered",
            organization_id=partner_id,
            name="Alliance",
            kind="partner",
            api_key_sha256=token_hash(PARTNER_KEY),
        )
    )
    await notifications.close()


async def hold_deliveries(
    repo: NotificationsRepo, delivered: str, backed_off: str, in_flight: str
) -> datetime:
    """One publication was delivered, one waits in back-off, one is being sent right now;
    returns the end of the in-flight one's lease."""
    d = repo.t.deliveries
    now = datetime.now(UTC)
    lease_end = now + timedelta(seconds=60)
    async with repo.db.transaction() as conn:
        await conn.execute(update(d).where(d.c.event_id == delivered).values(state="delivered"))
        await conn.execute(
            update(d)
            .where(d.c.event_id == backed_off)
            .values(attempts=2, next_attempt_at=now + timedelta(seconds=30))
        )
        await conn.execute(
            update(d).where(d.c.event_id == in_flight).values(leased_until=lease_end)
        )
    return lease_end


async def test_a_withdrawal_leaves_the_partner_only_the_retraction(
    kafka: KafkaSettings, platform: PlatformSettings, database_url: str
) -> None:
    ctx = notifications_bootstrap(
        platform, kafka, NotificationsSettings(), database_url=database_url
    )
    partner_id, org_id, person_id = (str(uuid.uuid4()) for _ in range(3))
    log = Log()
    await register_partner(database_url, log, partner_id)
    feed = SqlPartnerFeedStore(database_url, ctx.pseudonym_secret, CODEC)
    await feed.open()
    feeder = partner_feed_runner(feed, emit=False)
    await feeder.load_positions()
    partner = {"Authorization": f"Bearer {PARTNER_KEY}"}
    assert platform.admin_token is not None
    admin = {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}
    export = f"/v1/partner-feeds/{partner_id}/export"
    async with client_for(notifications_app(ctx)) as api:
        types = ["partner_feed.record_published", "partner_feed.record_retracted"]
        subscribed = await api.post(
            "/v1/subscriptions",
            json={"url": "https://partner.example/hook", "event_types": types},
            headers=partner,
        )
        assert subscribed.status_code == 201, subscribed.text
        agreed = await api.post(
            "/v1/agreements",
            json={"partner_id": partner_id, "elements": ["county", "training_hours"]},
            headers=admin,
        )
        assert agreed.status_code == 201, agreed.text
        await feed.refresh_agreements()
        await feeder.process(
            person_enrolled(log, person_id) + consent(log, person_id, partner_id, True)
        )
        for hours in (2.0, 3.0, 4.0):
            await feeder.process(learning(log, person_id, org_id, hours))
        published = lines(await api.get(export, headers=partner))
        # At consent, then after each record.
        assert [e["event_type"] for e in published] == ["PartnerRecordPublished"] * 4
        first, backed_off, in_flight, waiting = (e["event_id"] for e in published)
        pseudonym = published[0]["pseudonymous_id"]

        repo = NotificationsRepo.at(database_url)
        lease_end = await hold_deliveries(repo, first, backed_off, in_flight)

        await feeder.process(consent(log, person_id, partner_id, False))

        everything = lines(await api.get(export, headers=partner))
        assert [(e["event_type"], e["pseudonymous_id"]) for e in everything] == [
            ("PartnerRecordRetracted", pseudonym)
        ]
        for cursor in ("1", "2", "3", "4"):
            again = lines(await api.get(f"{export}?since={cursor}", headers=partner))
            assert {e["event_type"] for e in again} == {"PartnerRecordRetracted"}

        rows = await deliveries(repo)
        assert rows[waiting].state == "cancelled"
        assert rows[backed_off].state == "cancelled"
        assert rows[in_flight].state == "cancelled"
        retraction = rows[everything[0]["event_id"]]
        held = retraction.next_attempt_at
        held = held if held.tzinfo else held.replace(tzinfo=UTC)
        assert held >= lease_end - timedelta(seconds=1)  # not sent before the in-flight one ends
        # The in-flight attempt fails and asks for a retry: it stays cancelled.
        await repo.deliveries.record(
            [Attempt(rows[in_flight].delivery_id, ok=False, retry_in=1)], "delivered_at"
        )
        assert (await deliveries(repo))[in_flight].state == "cancelled"

        for event_id in (first, backed_off, in_flight, waiting):
            refused = await api.post(
                f"/v1/deliveries/{rows[event_id].delivery_id}/retry", headers=partner
            )
            assert refused.status_code == 409, refused.text
            assert refused.json()["errors"][0]["field"] == "delivery_id"
        resent = await api.post(f"/v1/deliveries/{retraction.delivery_id}/retry", headers=partner)
        assert resent.status_code == 202, resent.text

        # Consent given again: a new pseudonym, never a publication after the retraction.
        await feeder.process(consent(log, person_id, partner_id, True))
        after = lines(await api.get(export, headers=partner))
        assert [e["event_type"] for e in after] == [
            "PartnerRecordRetracted",
            "PartnerRecordPublished",
        ]
        assert after[1]["pseudonymous_id"] != pseudonym
        await repo.close()
    await feed.close()

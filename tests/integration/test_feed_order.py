"""Issue 12, item 4, on SQLite and PostgreSQL: the partner feed's outcome does not depend on the
order consents and statuses are read in. Kafka may hold a person's withdrawal before the grant it
withdraws (two outboxes, or an older release's relays), and a record's revocation before its
verification (the verification API's outbox and its verifier's are two): the newest consent by
``occurred_at`` and the highest ``record_version`` decide.

Failed on main before the fix: the feed took the last one it read, so the withdrawn person was
published and the revoked credential came back into the partner's record.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.bootstrap import partner_feed_runner
from services.notifications.feed import pseudonymous_id
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.settings import NotificationsSettings
from tests.helpers import client_for
from tests.integration.test_consent_withdrawal import (
    PARTNER_KEY,
    Log,
    lines,
    person_enrolled,
    register_partner,
)

pytestmark = pytest.mark.integration
CODEC = default_codec()


def reversed_on_the_log(
    log: Log, topic: str, key: str, records: list[dict[str, Any]]
) -> list[Message]:
    """``records`` (made in the order they happened) at consecutive offsets, newest first."""
    out = []
    for record in reversed(records):
        offset = log.offsets[topic] = log.offsets.get(topic, -1) + 1
        out.append(Message(topic, 0, offset, key.encode(), CODEC.encode(record)))
    return out


def consent_record(person_id: str, partner_id: str, granted: bool) -> dict[str, Any]:
    envelope = new_envelope("ConsentChanged", "enrollment")
    return event(
        envelope, person_id=person_id, partner_id=partner_id, granted=granted, changed_by="person"
    )


def status_record(
    event_type: str, person_id: str, record_id: str, version: int, **more: Any
) -> dict[str, Any]:
    return event(
        new_envelope(event_type, "verification"),
        person_id=person_id,
        record_id=record_id,
        organization_id=None,
        record_type="credential",
        actor="system",
        record_version=version,
        submitted_at=datetime.now(UTC) - timedelta(hours=1),
        credential_id=str(uuid.uuid4()),
        **more,
    )


def credential_submitted(log: Log, person_id: str, record_id: str) -> list[Message]:
    return log(
        "ler.records.v1",
        person_id,
        "CredentialRecordSubmitted",
        record_id=record_id,
        person_id=person_id,
        submitted_by=str(uuid.uuid4()),
        submitter_kind="organization",
        title="CDA",
        description=None,
        evidence=[],
        issued_on=datetime.now(UTC).date(),
        credential_type="CDA",
    )


async def test_the_newest_consent_and_the_highest_record_version_decide(
    kafka: KafkaSettings, platform: PlatformSettings, database_url: str
) -> None:
    ctx = notifications_bootstrap(
        platform, kafka, NotificationsSettings(), database_url=database_url
    )
    partner_id, withdrawn, revoked, record_id = (str(uuid.uuid4()) for _ in range(4))
    log = Log()
    await register_partner(database_url, log, partner_id)
    feed = SqlPartnerFeedStore(database_url, ctx.pseudonym_secret, CODEC)
    await feed.open()
    feeder = partner_feed_runner(feed, emit=False)
    await feeder.load_positions()
    assert platform.admin_token is not None
    admin = {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}
    async with client_for(notifications_app(ctx)) as api:
        agreed = await api.post(
            "/v1/agreements",
            json={"partner_id": partner_id, "elements": ["county", "credential_types"]},
            headers=admin,
        )
        assert agreed.status_code == 201, agreed.text
        await feed.refresh_agreements()
        for person_id in (withdrawn, revoked):
            await feeder.process(person_enrolled(log, person_id))

        # Granted, then withdrawn; the log holds the withdrawal first. One fetch each.
        grant = consent_record(withdrawn, partner_id, True)
        withdraw = consent_record(withdrawn, partner_id, False)
        for message in reversed_on_the_log(log, "ler.enrollment.v1", withdrawn, [grant, withdraw]):
            await feeder.process([message])

        # Verified (version 2), then revoked (version 3); the log holds the revocation first.
        await feeder.process(
            log(
                "ler.enrollment.v1",
                revoked,
                "ConsentChanged",
                person_id=revoked,
                partner_id=partner_id,
                granted=True,
                changed_by="person",
            )
            + credential_submitted(log, revoked, record_id)
        )
        verified = status_record(
            "RecordVerified",
            revoked,
            record_id,
            2,
            queue="auto_verification",
            credential_type="CDA",
            credential="{}",
        )
        revocation = status_record("CredentialRevoked", revoked, record_id, 3, reason="in error")
        for message in reversed_on_the_log(
            log, "ler.verification.v1", revoked, [verified, revocation]
        ):
            await feeder.process([message])

        export = f"/v1/partner-feeds/{partner_id}/export"
        entries = lines(await api.get(export, headers={"Authorization": f"Bearer {PARTNER_KEY}"}))
    await feed.close()
    by_person = {
        who: [
            e
            for e in entries
            if e["pseudonymous_id"] == pseudonymous_id(ctx.pseudonym_secret, partner_id, who)
        ]
        for who in (withdrawn, revoked)
    }
    assert by_person[withdrawn] == [], "a withdrawn person is never published"
    assert by_person[revoked], "the consenting person is published"
    assert by_person[revoked][-1]["data"]["credential_types"] == [], "the revocation stands"

"""Partner feeds: consented, de-identified core data elements under a per-partner pseudonym.

Real parts: the embedded broker, the enrollment API (consents), ``ler process notifications`` and
``ler process partner-feed`` as their own processes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.avro import default_codec
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.feed import ELEMENTS, pseudonymous_id
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.settings import NotificationsSettings
from tests.conftest import Databases
from tests.helpers import client_for, read_topic, start_processor, stop_process, wait_until
from tests.integration.test_notifications import (
    admin,
    bearer,
    enroll,
    processor_env,
    publish,
    register,
    submit,
    until_status,
    verification_event,
)

pytestmark = pytest.mark.integration
CODEC = default_codec()
TOPICS = ("ler.enrollment.v1", "ler.records.v1", "ler.verification.v1")
# Every person enrolled by these tests: no feed record may ever carry what identifies them.
ENROLLED: list[dict[str, Any]] = []


@pytest.fixture
def kafka(own_kafka: KafkaSettings) -> KafkaSettings:
    """Each test on a broker of its own (see tests/conftest.py:own_kafka)."""
    return own_kafka


@pytest.fixture
async def enrollment(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield client


def records_for(person: dict[str, Any]) -> list[dict[str, Any]]:
    """An employment, a training and a credential, with the person's identity in free text."""
    who = f"{person['given_name']} {person['family_name']}"
    note = f"Contact {person['email']}; born {person['birth_date']}"
    common = {"person_id": person["person_id"], "description": note}
    return [
        {
            **common,
            "type": "employment",
            "title": f"Lead teacher {who}",
            "action": "hired",
            "start_date": "2024-01-08",
            "soc_code": "25-2011",
        },
        {
            **common,
            "type": "learning",
            "title": f"Infant care for {who}",
            "completed_on": "2025-02-01",
            "hours": 12,
        },
        {
            **common,
            "type": "credential",
            "title": f"CDA of {who}",
            "issued_on": "2025-01-15",
            "credential_type": "CDA",
        },
    ]


async def export(
    api: httpx.AsyncClient, partner: dict[str, Any], since: str | None = None
) -> tuple[list[dict[str, Any]], httpx.Response]:
    query = f"?since={since}" if since is not None else ""
    response = await api.get(
        f"/v1/partner-feeds/{partner['organization_id']}/export{query}",
        headers=bearer(partner["api_key"]),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()], response


async def caught_up(kafka: KafkaSettings, store: SqlPartnerFeedStore) -> bool:
    """The partner-feed processor has applied everything on its input topics."""
    ends: dict[tuple[str, int], int] = {}
    for topic in TOPICS:
        for record in await read_topic(kafka, topic):
            ends[(topic, record.partition)] = record.offset
    positions = await store.positions()
    return all(positions.get(tp, -1) >= offset for tp, offset in ends.items())


def identifying_strings(person: dict[str, Any]) -> list[str]:
    birth = person["birth_date"]
    year, month, day = birth.split("-")
    return [
        person["given_name"],
        person["family_name"],
        person["email"],
        birth,
        f"{month}/{day}/{year}",
        person["person_id"],
    ]


async def test_partner_feed_holds_only_consented_deidentified_records(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    tmp_path: Path,
) -> None:
    url = databases.new_url()
    env = processor_env(kafka, platform, url, tmp_path)
    secret = env["NOTIFICATIONS_PSEUDONYM_SECRET"].encode()
    partner = await register(enrollment, platform, "Registry Alliance", "partner")
    second = await register(enrollment, platform, "State Workforce Board", "partner")
    employer = await register(enrollment, platform, "Sunrise Child Care", "employer")
    ada = await enroll(
        enrollment, platform, "Ada", county="Dane County", education_level="associate"
    )
    bo = await enroll(enrollment, platform, "Bo", county="Iron County")
    cy = await enroll(enrollment, platform, "Cy", county="Dane County")
    ENROLLED.extend([ada, bo, cy])
    record_ids: dict[str, list[str]] = {}
    for person in (ada, bo, cy):
        record_ids[person["given_name"]] = [
            await submit(enrollment, employer["api_key"], r) for r in records_for(person)
        ]

    def psn(person: dict[str, Any], who: dict[str, Any] = partner) -> str:
        return pseudonymous_id(secret, who["organization_id"], person["person_id"])

    async def consent(person: dict[str, Any], who: dict[str, Any], granted: bool) -> None:
        response = await enrollment.post(
            f"/v1/persons/{person['person_id']}/consents",
            json={"partner_id": who["organization_id"], "granted": granted},
            headers=bearer(person["access_token"]),
        )
        assert response.status_code == 200, response.text

    # Ada and Cy consent to the partner, Ada also to the second one; Bo never consents.
    await consent(ada, partner, True)
    await consent(cy, partner, True)
    await consent(ada, second, True)
    await publish(
        kafka,
        "ler.verification.v1",
        [
            verification_event(
                "RecordVerified",
                ada["person_id"],
                record_ids["Ada"][2],
                employer["organization_id"],
                queue="auto_verification",
                credential_id=str(uuid.uuid4()),
                credential_type="EmploymentCredential",
                credential="{}",
            ),
            verification_event(
                "RecordRejected",
                ada["person_id"],
                record_ids["Ada"][1],
                employer["organization_id"],
                queue="manual_review",
                reason_code="insufficient_evidence",
                note=f"{ada['given_name']} sent no certificate",
            ),
        ],
    )
    workers = [
        start_processor("notifications", env, tmp_path / "notifications.log"),
        start_processor("partner-feed", env, tmp_path / "partner-feed.log"),
    ]
    ctx = notifications_bootstrap(platform, kafka, NotificationsSettings(), database_url=url)
    store = SqlPartnerFeedStore(url, secret, CODEC)
    try:
        async with client_for(notifications_app(ctx)) as api:
            # The admin records the agreements once the partners are known to the service.
            agreement = {"partner_id": partner["organization_id"], "elements": sorted(ELEMENTS)}
            await until_status(
                lambda: api.post("/v1/agreements", json=agreement, headers=admin(platform)), 201
            )
            narrow = {"partner_id": second["organization_id"], "elements": ["age_band", "county"]}
            created = await until_status(
                lambda: api.post("/v1/agreements", json=narrow, headers=admin(platform)), 201
            )
            assert created.json()["version"] == 1
            for body, field_name in (
                ({**agreement, "elements": ["county", "name"]}, "elements"),
                ({**agreement, "partner_id": employer["organization_id"]}, "partner_id"),
                ({**agreement, "partner_id": str(uuid.uuid4())}, "partner_id"),
            ):
                bad = await api.post("/v1/agreements", json=body, headers=admin(platform))
                assert bad.status_code == 422, bad.text
                assert bad.json()["errors"][0]["field"] == field_name
            assert (await api.post("/v1/agreements", json=agreement)).status_code == 401
            forbidden = await api.post(
                "/v1/agreements", json=agreement, headers=bearer(partner["api_key"])
            )
            assert forbidden.status_code == 403

            # Ada's and Cy's records arrive in the partner's feed; Bo's never do.
            async def both() -> list[dict[str, Any]] | None:
                lines, _ = await export(api, partner)
                ids = {line["pseudonymous_id"] for line in lines}
                return lines if {psn(ada), psn(cy)} <= ids else None

            await wait_until(both, timeout=90)
            await wait_until(lambda: caught_up(kafka, store), timeout=60)
            lines, _ = await export(api, partner)
            latest = {line["pseudonymous_id"]: line for line in lines}
            assert psn(bo) not in latest
            assert set(latest) == {psn(ada), psn(cy)}
            assert latest[psn(ada)]["data"] == {
                "age_band": latest[psn(ada)]["data"]["age_band"],
                "birth_year": 1988,
                "county": "Dane County",
                "credential_types": ["CDA"],
                "education_level": "associate",
                "employment_status": "employed",
                "role_category": "25-0000",
                "training_hours": None,  # the training was rejected
            }
            assert latest[psn(ada)]["data"]["age_band"] in {"35-44", "25-34"}
            assert latest[psn(cy)]["data"]["credential_types"] == []  # not verified
            assert latest[psn(cy)]["data"]["training_hours"] == 12.0

            # The second partner sees only its two elements, under another pseudonym.
            theirs, _ = await wait_until(lambda: _nonempty(export(api, second)), timeout=60)
            assert {line["pseudonymous_id"] for line in theirs} == {psn(ada, second)}
            assert psn(ada, second) != psn(ada)
            assert set(theirs[-1]["data"]) == {"age_band", "county"}
            wrong = await api.get(
                f"/v1/partner-feeds/{partner['organization_id']}/export",
                headers=bearer(second["api_key"]),
            )
            assert wrong.status_code == 403
            employer_try = await api.get(
                f"/v1/partner-feeds/{partner['organization_id']}/export",
                headers=bearer(employer["api_key"]),
            )
            assert employer_try.status_code == 403
            bad_cursor = await api.get(
                f"/v1/partner-feeds/{partner['organization_id']}/export?since=abc",
                headers=bearer(partner["api_key"]),
            )
            assert bad_cursor.status_code == 422

            # Cy withdraws: one retraction, then nothing new about Cy, while Ada's feed moves on.
            _, before = await export(api, partner)
            cursor = before.headers["Feed-Cursor"]
            await consent(cy, partner, False)

            async def retracted() -> list[dict[str, Any]] | None:
                lines, _ = await export(api, partner, cursor)
                done = [x for x in lines if x["event_type"] == "PartnerRecordRetracted"]
                return lines if done else None

            after = await wait_until(retracted, timeout=60)
            assert [(x["pseudonymous_id"], x["reason"]) for x in after] == [
                (psn(cy), "consent_withdrawn")
            ]
            more = {"type": "learning", "completed_on": "2025-04-01", "hours": 5}
            await submit(
                enrollment,
                employer["api_key"],
                {**more, "person_id": cy["person_id"], "title": "x"},
            )
            await submit(
                enrollment,
                employer["api_key"],
                {**more, "person_id": ada["person_id"], "title": "y"},
            )
            await consent(cy, second, True)  # consent to another partner says nothing here

            async def ada_moved() -> list[dict[str, Any]] | None:
                lines, _ = await export(api, partner, after_cursor)
                return lines or None

            after_cursor = str(int(cursor) + len(after))
            moved = await wait_until(ada_moved, timeout=60)
            await wait_until(lambda: caught_up(kafka, store), timeout=60)
            moved, _ = await export(api, partner, after_cursor)
            assert [x["pseudonymous_id"] for x in moved] == [psn(ada)]
            assert moved[0]["data"]["training_hours"] == 5.0
            cursors = [int(x["cursor"]) for x in (await export(api, partner))[0]]
            assert cursors == sorted(cursors)
            assert len(set(cursors)) == len(cursors)

            # The topic carries the same events, keyed by the pseudonymous id.
            published = [
                (r.key.decode(), CODEC.decode(r.value))
                for r in await read_topic(kafka, "ler.partner-feed.v1")
            ]
            mine = [
                (k, v) for k, v in published if str(v["partner_id"]) == partner["organization_id"]
            ]
            assert all(k == v["pseudonymous_id"] for k, v in published)
            assert {k for k, _ in mine} == {psn(ada), psn(cy)}
            # Cy's publications left the export with the withdrawal; the log keeps them.
            withdrawn = [
                v["sequence"]
                for k, v in mine
                if k == psn(cy) and v["event_type"] == "PartnerRecordPublished"
            ]
            assert withdrawn
            assert sorted(v["sequence"] for _, v in mine) == sorted(cursors + withdrawn)

            # No feed record anywhere names, addresses or dates any enrolled test person.
            everything = [json.dumps(v, default=str) for _, v in published]
            for who in (partner, second):
                everything += [json.dumps(x) for x in (await export(api, who))[0]]
            assert everything
            leaks = [
                (text, s)
                for text in everything
                for person in ENROLLED
                for s in identifying_strings(person)
                if s in text
            ]
            assert leaks == []
    finally:
        for worker in workers:
            stop_process(worker)
        await store.close()


async def _nonempty(call: Any) -> Any:
    result = await call
    return result if result[0] else None

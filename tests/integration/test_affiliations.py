"""Issue 11, item 2, on the real broker and both SQL stores: affiliations are the person's (or an
admin's) word, published on ``ler.enrollment.v1``; only an affiliated organization's records
verify automatically, the rest wait for review and the person can decline them; a credential's
subject id is not the person's internal id.

Failed on main before the fix: ``POST /v1/persons/{id}/affiliations`` answered 404 and an
employer's record about anyone was verified automatically."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ler.avro import default_codec
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.bootstrap import new_runner
from services.verification.settings import VerificationSettings
from tests.conftest import Databases
from tests.helpers import client_for, read_topic, wait_until

pytestmark = pytest.mark.integration
CODEC = default_codec()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def enrollment(
    kafka: KafkaSettings, platform: PlatformSettings, databases: Databases
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = enrollment_bootstrap(
        platform, kafka, EnrollmentSettings(), database_url=databases.new_url()
    )
    async with client_for(enrollment_app(ctx)) as client:
        assert platform.admin_token is not None
        client.headers["Authorization"] = f"Bearer {platform.admin_token.get_secret_value()}"
        yield client


async def _created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def org(client: httpx.AsyncClient, kind: str = "employer") -> dict[str, Any]:
    return await _created(client, "/v1/organizations", {"name": f"Org {kind}", "kind": kind})


async def person(client: httpx.AsyncClient) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    body = {
        "given_name": "Ada",
        "family_name": f"Aff{tag}",
        "email": f"{tag}@example.org",
        "birth_date": "1990-03-04",
    }
    return await _created(client, "/v1/persons", body)


async def messages(kafka: KafkaSettings, topic: str, keys: set[str], count: int) -> list[Message]:
    wanted = {k.encode() for k in keys}

    async def found() -> list[Message] | None:
        got = [
            Message(m.topic, m.partition, m.offset, m.key, m.value)
            for m in await read_topic(kafka, topic)
            if m.key in wanted
        ]
        return got if len(got) >= count else None

    result: list[Message] = await wait_until(found, timeout=30)
    return result


async def test_affiliations_are_added_listed_and_removed_by_the_person_or_an_admin(
    enrollment: httpx.AsyncClient, kafka: KafkaSettings
) -> None:
    employer, provider, partner = (
        await org(enrollment),
        await org(enrollment, "training_provider"),
        (await org(enrollment, "partner")),
    )
    ada, bob = await person(enrollment), await person(enrollment)
    path = f"/v1/persons/{ada['person_id']}/affiliations"

    by_admin = await enrollment.post(path, json={"organization_id": employer["organization_id"]})
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["added_by"] == "admin"
    again = await enrollment.post(path, json={"organization_id": employer["organization_id"]})
    assert again.status_code == 200  # already affiliated: nothing new published
    own = bearer(ada["access_token"])
    by_person = await enrollment.post(
        path, json={"organization_id": provider["organization_id"]}, headers=own
    )
    assert by_person.status_code == 201, by_person.text
    assert by_person.json()["added_by"] == "person"

    refused = await enrollment.post(
        path,
        json={"organization_id": employer["organization_id"]},
        headers=bearer(bob["access_token"]),
    )
    assert refused.status_code == 403
    for bad in (partner["organization_id"], str(uuid.uuid4())):
        answer = await enrollment.post(path, json={"organization_id": bad}, headers=own)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == "organization_id"
    nobody = await enrollment.post(
        f"/v1/persons/{uuid.uuid4()}/affiliations",
        json={"organization_id": employer["organization_id"]},
    )
    assert nobody.status_code == 404

    listed = (await enrollment.get(path, headers=own)).json()["affiliations"]
    assert [a["organization_id"] for a in listed] == [
        employer["organization_id"],
        provider["organization_id"],
    ]
    gone = await enrollment.delete(f"{path}/{employer['organization_id']}", headers=own)
    assert gone.status_code == 204
    assert (await enrollment.delete(f"{path}/{employer['organization_id']}")).status_code == 404
    left = (await enrollment.get(path)).json()["affiliations"]
    assert [a["organization_id"] for a in left] == [provider["organization_id"]]

    events = [
        CODEC.decode(m.value or b"")
        for m in await messages(kafka, "ler.enrollment.v1", {ada["person_id"]}, 4)
    ]
    changes = [
        (e["event_type"], str(e["organization_id"]), e["changed_by"])
        for e in events
        if e["event_type"].startswith("Affiliation")
    ]
    assert changes == [
        ("AffiliationAdded", employer["organization_id"], "admin"),
        ("AffiliationAdded", provider["organization_id"], "person"),
        ("AffiliationRemoved", employer["organization_id"], "person"),
    ]


async def test_only_affiliated_records_verify_automatically_and_the_person_declines_the_rest(
    enrollment: httpx.AsyncClient,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    databases: Databases,
    tmp_path: Path,
) -> None:
    employer = await org(enrollment)
    staff, stranger = await person(enrollment), await person(enrollment)
    added = await enrollment.post(
        f"/v1/persons/{staff['person_id']}/affiliations",
        json={"organization_id": employer["organization_id"]},
    )
    assert added.status_code == 201, added.text
    hired = {
        "type": "employment",
        "title": "Teacher",
        "action": "hired",
        "start_date": "2024-01-02",
    }
    batch = {"records": [{**hired, "person_id": p["person_id"]} for p in (staff, stranger)]}
    accepted = await enrollment.post("/v1/records", json=batch, headers=bearer(employer["api_key"]))
    assert accepted.status_code == 202, accepted.text
    staff_record, stranger_record = accepted.json()["record_ids"]

    people = {staff["person_id"], stranger["person_id"]}
    records = await messages(kafka, "ler.records.v1", people, 2)
    stamped = {str(CODEC.decode(m.value or b"")["record_id"]): m for m in records}
    assert CODEC.decode(stamped[staff_record].value or b"")["affiliated"] is True
    assert CODEC.decode(stamped[stranger_record].value or b"")["affiliated"] is False

    ctx = verification_bootstrap(
        platform, kafka, VerificationSettings(), database_url=databases.new_url()
    )
    await ctx.store.open()
    runner = new_runner(ctx.store)
    await runner.load_positions()
    keys = people | {employer["organization_id"]}
    await runner.process(await messages(kafka, "ler.enrollment.v1", keys, 4))
    await runner.process(records)
    await ctx.store.close()

    async with client_for(verification_app(ctx)) as verification:
        admin = dict(enrollment.headers)
        pending = (await verification.get("/v1/reviews", headers=admin)).json()["items"]
        waiting = {i["record_id"]: i["policy_rule"] for i in pending}
        assert waiting.get(stranger_record) == "unaffiliated-organization"
        assert staff_record not in waiting

        decline = f"/v1/records/{stranger_record}/decline"
        not_yours = await verification.post(decline, headers=bearer(staff["access_token"]))
        assert not_yours.status_code == 404
        declined = await verification.post(decline, headers=bearer(stranger["access_token"]))
        assert declined.status_code == 200, declined.text
        assert declined.json()["reason_code"] == "declined_by_person"
        twice = await verification.post(decline, headers=bearer(stranger["access_token"]))
        assert twice.status_code == 409
        assert twice.json()["errors"][0]["field"] == "record_id"
        own_verified = await verification.post(
            f"/v1/records/{staff_record}/decline", headers=bearer(staff["access_token"])
        )
        assert own_verified.status_code == 409  # a credential in force is revoked, not declined

        async with ctx.store.db.read() as conn:
            t = ctx.store.credentials
            document = (
                await conn.execute(select(t.c.document).where(t.c.record_id == staff_record))
            ).scalar_one()
        subject = document["credentialSubject"]["id"]
        assert staff["person_id"] not in json.dumps(document)
        assert subject.startswith("urn:uuid:")
        # The subject id addresses nothing: no wallet, no enrollment resource answers to it.
        as_person = subject.removeprefix("urn:uuid:")
        probe = await enrollment.get(f"/v1/persons/{as_person}/affiliations")
        assert probe.status_code == 404

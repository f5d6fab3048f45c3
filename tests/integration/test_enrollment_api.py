"""Enrollment API on the real broker and real stores (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from ler.avro import default_codec
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app
from services.enrollment.bootstrap import bootstrap
from services.enrollment.settings import EnrollmentSettings
from tests.helpers import client_for, read_topic, wait_until

pytestmark = pytest.mark.integration
CODEC = default_codec()


@pytest.fixture
async def api(
    kafka: KafkaSettings, platform: PlatformSettings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = bootstrap(platform, kafka, EnrollmentSettings(), database_url=database_url)
    async with client_for(create_app(ctx)) as client:
        client.headers["x-test-db"] = database_url
        yield client


def admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}


async def organization(
    api: httpx.AsyncClient, platform: PlatformSettings, kind: str = "employer"
) -> dict[str, Any]:
    response = await api.post(
        "/v1/organizations",
        json={"name": f"Org {uuid.uuid4().hex[:6]}", "kind": kind},
        headers=admin(platform),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def person(
    api: httpx.AsyncClient, platform: PlatformSettings, **extra: Any
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "given_name": "Pat",
        "family_name": f"Tester{tag}",
        "email": f"pat.{tag}@example.org",
        "birth_date": "1991-02-03",
        **extra,
    }
    response = await api.post("/v1/persons", json=body, headers=admin(platform))
    assert response.status_code == 201, response.text
    return dict(response.json())


def employment(person_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "person_id": person_id,
        "type": "employment",
        "title": "Assistant Teacher",
        "action": "hired",
        "start_date": "2024-08-19",
        "soc_code": "25-9042",
        **extra,
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def records_on_topic(kafka: KafkaSettings, record_ids: set[str]) -> list[dict[str, Any]]:
    found = []
    for message in await read_topic(kafka, "ler.records.v1"):
        record = CODEC.decode(message.value)
        if str(record["record_id"]) in record_ids:
            found.append({"record": record, "key": message.key, "headers": dict(message.headers)})
    return found


async def test_an_issuer_batch_reaches_the_records_topic_in_input_order(
    api: httpx.AsyncClient, platform: PlatformSettings, kafka: KafkaSettings
) -> None:
    org = await organization(api, platform)
    people = [await person(api, platform) for _ in range(3)]
    batch = [employment(p["person_id"], title=f"Role {i}") for i, p in enumerate(people * 4)]
    response = await api.post(
        "/v1/records", json={"records": batch}, headers=bearer(org["api_key"])
    )
    assert response.status_code == 202, response.text
    record_ids = response.json()["record_ids"]
    assert len(record_ids) == 12

    published = await wait_until(lambda: _complete(kafka, set(record_ids)), timeout=20)
    by_id = {str(p["record"]["record_id"]): p for p in published}
    for i, record_id in enumerate(record_ids):
        message = by_id[record_id]
        assert message["record"]["title"] == f"Role {i}"
        assert message["record"]["submitted_by"] == org["organization_id"]
        assert message["key"] == batch[i]["person_id"].encode()
        assert message["headers"]["traceparent"].startswith(b"00-")
        assert message["record"]["event_type"] == "EmploymentRecordSubmitted"


async def _complete(kafka: KafkaSettings, ids: set[str]) -> list[dict[str, Any]] | None:
    found = await records_on_topic(kafka, ids)
    return found if len(found) == len(ids) else None


async def test_same_idempotency_key_and_body_answers_the_same_and_publishes_nothing_new(
    api: httpx.AsyncClient, platform: PlatformSettings, kafka: KafkaSettings
) -> None:
    org = await organization(api, platform)
    p = await person(api, platform)
    body = {"records": [employment(p["person_id"])]}
    headers = {**bearer(org["api_key"]), "Idempotency-Key": "batch-0001"}
    first = await api.post("/v1/records", json=body, headers=headers)
    again = await api.post("/v1/records", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = await api.post(
        "/v1/records",
        json={"records": [employment(p["person_id"], title="Other")]},
        headers=headers,
    )
    assert other.status_code == 409
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    # Another organization may use the same key for its own request.
    org2 = await organization(api, platform)
    mine = await api.post(
        "/v1/records",
        json=body,
        headers={**bearer(org2["api_key"]), "Idempotency-Key": "batch-0001"},
    )
    assert mine.status_code == 202
    assert mine.json() != first.json()
    ids = set(first.json()["record_ids"]) | set(mine.json()["record_ids"])
    await wait_until(lambda: _complete(kafka, ids))
    assert len(await records_on_topic(kafka, ids)) == 2


async def test_a_batch_with_invalid_records_is_rejected_whole_naming_index_field_and_rule(
    api: httpx.AsyncClient, platform: PlatformSettings, kafka: KafkaSettings
) -> None:
    org = await organization(api, platform)
    p = await person(api, platform)
    good = employment(p["person_id"], title="Never published")
    bad = [
        good,
        {**employment(p["person_id"]), "start_date": "2024-02-30"},
        {
            "person_id": p["person_id"],
            "type": "learning",
            "title": "CPR",
            "completed_on": "2024-01-01",
            "hours": -3,
        },
        {
            "person_id": p["person_id"],
            "type": "credential",
            "title": "CDA",
            "issued_on": "2024-01-01",
            "expires_on": "2023-01-01",
        },
        {"person_id": p["person_id"], "type": "badge", "title": "x"},
        {
            "person_id": p["person_id"],
            "type": "employment",
            "title": "x",
            "action": "hired",
            "start_date": "2024-01-01",
            "salary": 1,
        },
    ]
    response = await api.post("/v1/records", json={"records": bad}, headers=bearer(org["api_key"]))
    assert response.status_code == 422
    problems = {(e["index"], e["field"], e["rule"]) for e in response.json()["errors"]}
    assert problems == {
        (1, "start_date", "must be a date (YYYY-MM-DD)"),
        (2, "hours", "too small"),
        (3, "expires_on", "must not be before issued_on"),
        (4, "type", "not one of the allowed values"),
        (5, "salary", "unknown field"),
    }
    assert "5 record(s)" in response.json()["detail"]
    unknown = await api.post(
        "/v1/records",
        json={"records": [good, employment(str(uuid.uuid4()))]},
        headers=bearer(org["api_key"]),
    )
    assert unknown.status_code == 422
    assert [(e["index"], e["field"], e["rule"]) for e in unknown.json()["errors"]] == [
        (1, "person_id", "must be an enrolled person")
    ]
    titles = [m["record"]["title"] for m in await records_on_topic(kafka, set())]
    assert "Never published" not in titles


async def test_batch_limits_and_bad_bodies(
    api: httpx.AsyncClient, platform: PlatformSettings
) -> None:
    org = await organization(api, platform)
    p = await person(api, platform)
    headers = bearer(org["api_key"])
    too_many = await api.post(
        "/v1/records", json={"records": [employment(p["person_id"])] * 1001}, headers=headers
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "records"
    empty = await api.post("/v1/records", json={"records": []}, headers=headers)
    assert empty.status_code == 422
    broken = await api.post(
        "/v1/records", content=b"{not json", headers={**headers, "content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["rule"] == "must be valid JSON"
    single = await api.post("/v1/records", json=employment(p["person_id"]), headers=headers)
    assert single.status_code == 202
    assert len(single.json()["record_ids"]) == 1
    full = await api.post(
        "/v1/records", json={"records": [employment(p["person_id"])] * 1000}, headers=headers
    )
    assert full.status_code == 202
    assert len(set(full.json()["record_ids"])) == 1000


async def test_who_may_call_what(api: httpx.AsyncClient, platform: PlatformSettings) -> None:
    org = await organization(api, platform)
    partner = await organization(api, platform, kind="partner")
    p = await person(api, platform)
    other = await person(api, platform)
    record = employment(p["person_id"])
    assert (await api.post("/v1/records", json=record)).status_code == 401
    assert (
        await api.post("/v1/records", json=record, headers=bearer("ler_org_nope"))
    ).status_code == 401
    assert (
        await api.post("/v1/records", json=record, headers=bearer(partner["api_key"]))
    ).status_code == 403
    assert (
        await api.post("/v1/records", json=record, headers=bearer(p["access_token"]))
    ).status_code == 401
    org_body = {"name": "X", "kind": "employer"}
    assert (await api.post("/v1/organizations", json=org_body)).status_code == 401
    assert (
        await api.post("/v1/organizations", json=org_body, headers=bearer(org["api_key"]))
    ).status_code == 403
    consent = {"partner_id": partner["organization_id"], "granted": True}
    url = f"/v1/persons/{p['person_id']}/consents"
    assert (
        await api.post(url, json=consent, headers=bearer(other["access_token"]))
    ).status_code == 403
    assert (await api.post(url, json=consent, headers=bearer(p["access_token"]))).status_code == 200
    assert (
        await api.post(url, json={**consent, "granted": False}, headers=admin(platform))
    ).status_code == 200
    not_partner = await api.post(
        url,
        json={"partner_id": org["organization_id"], "granted": True},
        headers=bearer(p["access_token"]),
    )
    assert not_partner.status_code == 422
    assert not_partner.json()["errors"][0]["field"] == "partner_id"


async def test_duplicate_persons_are_flagged_not_silently_created(
    api: httpx.AsyncClient, platform: PlatformSettings
) -> None:
    first = await person(api, platform, given_name="Zoë", family_name="Nguyen-Smith")
    body = {
        "given_name": "zoe",
        "family_name": "NGUYEN SMITH",
        "email": f"z{uuid.uuid4().hex[:6]}@example.org",
        "birth_date": "1991-02-03",
    }
    response = await api.post("/v1/persons", json=body, headers=admin(platform))
    assert response.status_code == 409
    assert response.json()["possible_duplicate_of"] == first["person_id"]
    confirmed = await api.post(
        "/v1/persons", json={**body, "confirm_not_duplicate": True}, headers=admin(platform)
    )
    assert confirmed.status_code == 201
    assert confirmed.json()["possible_duplicate_of"] == first["person_id"]
    bad = await api.post(
        "/v1/persons",
        json={**body, "email": "not-an-email", "birth_date": "2999-01-01"},
        headers=admin(platform),
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"email"}


async def test_a_person_self_reports_only_for_themselves(
    api: httpx.AsyncClient, platform: PlatformSettings, kafka: KafkaSettings
) -> None:
    p = await person(api, platform)
    other = await person(api, platform)
    body = {
        "type": "credential",
        "title": "CPR/First Aid",
        "issued_on": "2025-05-01",
        "evidence": [{"name": "Card", "url": "https://example.org/card.pdf"}],
    }
    mine = await api.post(
        f"/v1/persons/{p['person_id']}/records", json=body, headers=bearer(p["access_token"])
    )
    assert mine.status_code == 202, mine.text
    theirs = await api.post(
        f"/v1/persons/{other['person_id']}/records", json=body, headers=bearer(p["access_token"])
    )
    assert theirs.status_code == 403
    (published,) = await wait_until(lambda: _complete(kafka, set(mine.json()["record_ids"])))
    assert published["record"]["submitter_kind"] == "person"
    assert published["record"]["evidence"] == [
        {"name": "Card", "url": "https://example.org/card.pdf", "description": None}
    ]


async def test_health_readiness_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"
    spec = (await api.get("/openapi.json")).json()
    assert {
        "/v1/organizations",
        "/v1/persons",
        "/v1/persons/{person_id}/consents",
        "/v1/records",
        "/v1/persons/{person_id}/records",
    } <= set(spec["paths"])

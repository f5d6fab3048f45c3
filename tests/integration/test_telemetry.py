"""One trace per record, from the HTTP request through Kafka into the wallet processor and its
store; metrics per topic and queue; and no personal data in any span or log line.

Real embedded broker, real enrollment service (in-process, its outbox relay running) and the
wallet's processing runner fed with what the broker holds; the ``memory`` exporter keeps spans.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler import telemetry
from ler.envelope import parse_traceparent
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.wallet.api import create_app as wallet_app
from services.wallet.bootstrap import bootstrap as wallet_bootstrap
from services.wallet.bootstrap import new_runner
from services.wallet.settings import WalletSettings
from services.wallet.store import SqlWalletStore
from tests.helpers import client_for, read_topic, wait_until

pytestmark = pytest.mark.integration

CALLER_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def spans_in_memory() -> Iterator[None]:
    telemetry.configure("ler-test", telemetry.TelemetrySettings(exporter="memory"))
    yield
    telemetry.configure("ler-test", telemetry.TelemetrySettings(exporter="none"))


@pytest.fixture
async def enrollment(
    spans_in_memory: None, kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    async with client_for(enrollment_app(ctx)) as client:
        yield client


def _admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}


def _message(record: Any) -> Message:
    return Message(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        tuple(record.headers or ()),
        record.timestamp,
    )


async def test_a_record_has_one_trace_from_request_to_store_and_no_personal_data(
    enrollment: httpx.AsyncClient,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    for name in ("ler", "services"):
        caplog.set_level(logging.DEBUG, logger=name)
    tag = uuid.uuid4().hex[:6]
    person_body: dict[str, Any] = {
        "given_name": f"Wilhelmina{tag}",
        "family_name": f"Zabriskie{tag}",
        "email": f"wilhelmina.{tag}@example.org",
        "birth_date": "1979-02-28",
        "county": f"Grafton{tag}",
        "demographics": {"primary_language": f"Lingua{tag}"},
    }
    org = (
        await enrollment.post(
            "/v1/organizations",
            json={"name": f"Little Acorns {tag}", "kind": "employer"},
            headers=_admin(platform),
        )
    ).json()
    person = await enrollment.post("/v1/persons", json=person_body, headers=_admin(platform))
    assert person.status_code == 201
    person_id, token = person.json()["person_id"], person.json()["access_token"]
    # A rejected duplicate and an invalid body must not leak either.
    assert (
        await enrollment.post("/v1/persons", json=person_body, headers=_admin(platform))
    ).status_code == 409
    bad = {**person_body, "birth_date": "2999-01-01", "email": f"not-an-email-{tag}"}
    assert (
        await enrollment.post("/v1/persons", json=bad, headers=_admin(platform))
    ).status_code == 422

    records = [
        {
            "person_id": person_id,
            "type": "learning",
            "title": f"Module {i}",
            "completed_on": "2025-03-01",
        }
        for i in range(3)
    ]
    accepted = await enrollment.post(
        "/v1/records",
        json={"records": records},
        headers={"Authorization": f"Bearer {org['api_key']}", "traceparent": CALLER_TRACE},
    )
    assert accepted.status_code == 202, accepted.text
    record_ids = accepted.json()["record_ids"]

    async def published() -> list[Any] | None:
        mine = [m for m in await read_topic(kafka, "ler.records.v1") if m.key == person_id.encode()]
        return mine if len(mine) == 3 else None

    on_kafka = await wait_until(published, timeout=30)
    enrolled = [
        m
        for m in await read_topic(kafka, "ler.enrollment.v1")
        if m.key in {person_id.encode(), org["organization_id"].encode()}
    ]
    assert len(enrolled) == 2

    # The wallet's processing runner applies what the broker holds (as its Faust agent does),
    # plus one event keyed by the wrong person, which is dead-lettered.
    store = SqlWalletStore(f"sqlite+aiosqlite:///{tmp_path / 'wallet.db'}")
    await store.open()
    runner = new_runner(store)
    await runner.load_positions()
    messages = [_message(m) for m in sorted(enrolled, key=lambda m: m.key != b"")] + [
        _message(m) for m in on_kafka
    ]
    person_event = next(m for m in enrolled if m.key == person_id.encode())
    wrong_key = Message(
        "ler.enrollment.v1",
        99,
        0,
        b"someone-else",
        person_event.value,
        tuple(person_event.headers or ()),
    )
    assert await runner.process(messages) == 5
    assert await runner.process([wrong_key]) == 1
    assert runner.dead_lettered == 1

    wallet_ctx = wallet_bootstrap(
        platform, kafka, WalletSettings(), database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db"
    )
    wallet_ctx.store = store
    async with client_for(wallet_app(wallet_ctx)) as wallet:
        mine = await wallet.get(
            f"/v1/wallets/{person_id}", headers={"Authorization": f"Bearer {token}"}
        )
    assert mine.status_code == 200
    assert sorted(r["record_id"] for r in mine.json()["records"]) == sorted(record_ids)

    # One trace: caller → POST /v1/records → outbox publish → wallet process → store commit.
    spans = telemetry.finished_spans()
    trace_id = int(CALLER_TRACE.split("-")[1], 16)
    in_trace = [s for s in spans if s.context.trace_id == trace_id]
    by_name = {s.name: s for s in in_trace}
    print("spans of the record's trace:", sorted(by_name))
    server = by_name["POST /v1/records"]
    publish = by_name["outbox publish"]
    process = by_name["wallet process"]
    commit = by_name["wallet store commit"]
    assert server.parent is not None
    assert server.parent.span_id == int(CALLER_TRACE[36:52], 16)
    assert publish.parent is not None
    assert publish.parent.span_id == server.context.span_id
    assert process.parent is not None
    assert process.parent.span_id == publish.context.span_id
    assert commit.parent is not None
    assert commit.parent.span_id == process.context.span_id
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/v1/records"
    assert server.attributes["http.response.status_code"] == 202
    assert process.attributes is not None
    assert process.attributes["messaging.batch.message_count"] == 3
    for message in on_kafka:
        header = dict(message.headers)["traceparent"]
        parsed = parse_traceparent(header)
        assert parsed == (f"{trace_id:032x}", f"{publish.context.span_id:016x}")

    # The enrollment event's trace goes the same way, and so does the dead letter's.
    enroll_trace = parse_traceparent(dict(person_event.headers)["traceparent"])
    assert enroll_trace is not None
    names = {s.name for s in spans if f"{s.context.trace_id:032x}" == enroll_trace[0]}
    assert {"POST /v1/persons", "outbox publish", "wallet process", "wallet store commit"} <= names
    wallet_read = [s for s in spans if s.name == "GET /v1/wallets/{person_id}"]
    assert wallet_read
    assert wallet_read[-1].attributes is not None
    assert wallet_read[-1].attributes["http.response.status_code"] == 200

    # Metrics: events in and out per topic, processing time of the wallet's queue.
    def total(metric: str, **match: Any) -> Any:
        points = telemetry.metric_points(metric)
        return [v for a, v in points if all(a.get(k) == w for k, w in match.items())]

    assert sum(total("ler.events.out", topic="ler.records.v1", producer="enrollment")) >= 3
    assert sum(total("ler.events.in", topic="ler.records.v1", consumer="wallet")) >= 3
    assert sum(total("ler.events.dead_lettered", consumer="wallet")) >= 1
    durations = total("ler.processing.duration", queue="processor.wallet")
    assert durations
    assert durations[0][1] >= 2

    # No personal data anywhere: span names, attributes, events, links, resources; log lines.
    secrets = [
        person_body["given_name"],
        person_body["family_name"],
        person_body["email"],
        person_body["county"],
        person_body["demographics"]["primary_language"],
        "1979-02-28",
        "28/02/1979",
        "02/28/1979",
        "19790228",
        f"not-an-email-{tag}",
        token,
        org["api_key"],
        platform.admin_token.get_secret_value() if platform.admin_token else "",
    ]
    texts = [text for span in spans for text in _span_texts(span)]
    texts += [r.getMessage() for r in caplog.records]
    texts += [repr(r.args) for r in caplog.records]
    assert len(texts) > 50
    leaks = [(s, t) for s in secrets for t in texts if s and s in t]
    assert not leaks, f"personal data in telemetry: {leaks[:3]}"
    print(f"checked {len(spans)} spans and {len(caplog.records)} log records for personal data")
    await store.close()


def _span_texts(span: Any) -> Iterator[str]:
    yield span.name
    for attributes in (
        span.attributes,
        span.resource.attributes,
        *(e.attributes for e in span.events),
        *(link.attributes for link in span.links),
    ):
        for key, value in (attributes or {}).items():
            yield f"{key}={value}"
    for event in span.events:
        yield event.name
    if span.status.description:
        yield span.status.description

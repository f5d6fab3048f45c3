"""People hear about their records by e-mail; organizations through signed webhooks.

Real parts: the embedded broker, the enrollment API, ``ler process notifications`` as its own
process on SQLite and PostgreSQL, an SMTP server (aiosmtpd) and an HTTP receiver started here
on 127.0.0.1. The receiver checks signatures with its own Standard Webhooks verifier, written
from the specification (not the service's code).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller

from ler.avro import default_codec
from ler.envelope import event, new_envelope
from ler.kafka import client_options
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.settings import NotificationsSettings
from tests.conftest import Databases
from tests.helpers import client_for, start_processor, stop_process, wait_until

pytestmark = pytest.mark.integration
CODEC = default_codec()


# ------------------------------------------------------------------ Standard Webhooks, from the spec


def verify_standard_webhook(
    secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300
) -> bool:
    """The receiver side of https://www.standardwebhooks.com/ (spec section "Verifying")."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures and timestamp.isdigit()):
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :])
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


@dataclass
class Receiver:
    """A local webhook endpoint: /ok answers 500 to the first attempt of the first message,
    /down always 500, /slow never in time."""

    url: str = ""
    secrets: dict[str, str] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)
    failed_once: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        valid = verify_standard_webhook(self.secrets.get(path, "whsec_"), headers, body)
        self.seen.append(
            {"path": path, "id": headers.get("webhook-id"), "valid": valid, "body": body}
        )
        if not valid:
            return web.Response(status=401)
        if path == "down":
            return web.Response(status=500)
        if path == "slow":
            await asyncio.sleep(30)
        if path == "ok" and not self.failed_once:
            self.failed_once.add(headers["webhook-id"])
            return web.Response(status=500)
        return web.Response(status=204)

    def ids(self, path: str, valid: bool = True) -> list[str]:
        return [s["id"] for s in self.seen if s["path"] == path and s["valid"] is valid]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/{path}", recv.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    recv.url = f"http://{host}:{port}/hooks"
    try:
        yield recv
    finally:
        await runner.cleanup()


class Mailbox:
    """aiosmtpd handler: keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


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


# ------------------------------------------------------------------ helpers shared with the feed test


def admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    enrollment: httpx.AsyncClient, platform: PlatformSettings, name: str, kind: str
) -> dict[str, Any]:
    response = await enrollment.post(
        "/v1/organizations", json={"name": name, "kind": kind}, headers=admin(platform)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def enroll(
    enrollment: httpx.AsyncClient, platform: PlatformSettings, given: str, **extra: Any
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    body = {
        "given_name": given,
        "family_name": f"Quill{tag}",
        "email": f"{given.lower()}.{tag}@example.org",
        "birth_date": "1988-07-14",
        **extra,
    }
    response = await enrollment.post("/v1/persons", json=body, headers=admin(platform))
    assert response.status_code == 201, response.text
    return {**body, **response.json()}


async def submit(enrollment: httpx.AsyncClient, api_key: str, record: dict[str, Any]) -> str:
    response = await enrollment.post("/v1/records", json=record, headers=bearer(api_key))
    assert response.status_code == 202, response.text
    return str(response.json()["record_ids"][0])


def verification_event(
    event_type: str, person_id: str, record_id: str, organization_id: str | None, **fields: Any
) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "person_id": person_id,
        "record_id": record_id,
        "organization_id": organization_id,
    }
    if not event_type.startswith("Sla"):
        base.update(
            record_type="learning",
            actor="system",
            record_version=2,
            submitted_at=now - timedelta(hours=1),
        )
    base.update(fields)
    return event(new_envelope(event_type, "verification"), **base)


async def publish(kafka: KafkaSettings, topic: str, events: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all")
    await producer.start()
    try:
        for record in events:
            await producer.send_and_wait(
                topic, CODEC.encode(record), key=str(record["person_id"]).encode()
            )
    finally:
        await producer.stop()


def processor_env(
    kafka: KafkaSettings, platform: PlatformSettings, url: str, tmp: Path
) -> dict[str, str]:
    assert platform.admin_token is not None
    return {
        **kafka.environment(),
        "NOTIFICATIONS_DATABASE_URL": url,
        "LER_DATA_DIR": str(tmp),
        "LER_ADMIN_TOKEN": platform.admin_token.get_secret_value(),
        "NOTIFICATIONS_BATCH_WINDOW_MS": "10",
        "NOTIFICATIONS_POLL_INTERVAL_MS": "100",
        "NOTIFICATIONS_PSEUDONYM_SECRET": "test-pseudonym-secret-" + "s" * 20,
    }


async def until_status(call: Any, status: int, timeout: float = 60) -> httpx.Response:
    async def attempt() -> httpx.Response | None:
        response: httpx.Response = await call()
        return response if response.status_code == status else None

    result: httpx.Response = await wait_until(attempt, timeout=timeout, interval=0.3)
    return result


# ------------------------------------------------------------------ the test


async def test_people_get_email_and_organizations_get_signed_webhooks(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    receiver: Receiver,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    mailbox, smtp_port = smtp
    url = databases.new_url()
    env = {
        **processor_env(kafka, platform, url, tmp_path),
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "NOTIFICATIONS_WEBHOOK_RETRY_BASE_SECONDS": "0.3",
        "NOTIFICATIONS_WEBHOOK_MAX_ATTEMPTS": "3",
        "NOTIFICATIONS_WEBHOOK_TIMEOUT_SECONDS": "2",
        "NOTIFICATIONS_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION": "2",
        # The receiver listens on this machine: allowed by the development-only setting.
        "NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_URLS": "true",
    }
    employer = await register(enrollment, platform, "Sunrise Child Care", "employer")
    other = await register(enrollment, platform, "Elsewhere Academy", "training_provider")
    ada = await enroll(enrollment, platform, "Ada")
    bo = await enroll(enrollment, platform, "Bo")
    worker = start_processor("notifications", env, tmp_path / "notifications.log")
    allow_local = NotificationsSettings(webhook_allow_private_urls=True)
    ctx = notifications_bootstrap(platform, kafka, allow_local, database_url=url)
    try:
        async with client_for(notifications_app(ctx)) as api:
            key = bearer(employer["api_key"])

            def subscribe(path: str, types: list[str], who: dict[str, str] = key) -> Any:
                return api.post(
                    "/v1/subscriptions",
                    json={"url": f"{receiver.url}/{path}", "event_types": types},
                    headers=who,
                )

            # The organization is known once its OrganizationRegistered event is consumed.
            types = ["record.verified", "record.rejected", "sla.breached", "appeal.decided"]
            created = (await until_status(lambda: subscribe("ok", types), 201)).json()
            assert created["secret"].startswith("whsec_")
            assert len(base64.b64decode(created["secret"][6:])) >= 24
            receiver.secrets["ok"] = created["secret"]
            for path in ("down", "slow"):
                sub = await subscribe(path, ["record.verified"])
                assert sub.status_code == 201
                receiver.secrets[path] = sub.json()["secret"]
            other_sub = await until_status(
                lambda: subscribe("other", ["record.verified"], bearer(other["api_key"])), 201
            )
            receiver.secrets["other"] = other_sub.json()["secret"]
            assert receiver.secrets["other"] != created["secret"]

            # Bad input is a 4xx naming the field.
            for body, field_name in (
                ({"url": "ftp://127.0.0.1/x", "event_types": ["record.verified"]}, "url"),
                ({"url": "file:///etc/passwd", "event_types": ["record.verified"]}, "url"),
                ({"url": "not a url", "event_types": ["record.verified"]}, "url"),
                ({"url": f"{receiver.url}/ok", "event_types": ["record.eaten"]}, "event_types"),
                (
                    {"url": f"{receiver.url}/ok", "event_types": ["partner_feed.record_published"]},
                    "event_types",
                ),
                ({"url": f"{receiver.url}/ok", "event_types": []}, "event_types"),
            ):
                bad = await api.post("/v1/subscriptions", json=body, headers=key)
                assert bad.status_code == 422, (body, bad.text)
                assert bad.json()["errors"][0]["field"] == field_name
            assert (
                await api.post("/v1/subscriptions", json={"url": "http://x"})
            ).status_code == 401
            assert (
                await api.post(
                    "/v1/subscriptions",
                    json={"url": f"{receiver.url}/ok", "event_types": ["record.verified"]},
                    headers=bearer("ler_org_unknown"),
                )
            ).status_code == 401

            # Bo does not want to hear about verified records; due-process notices stay on.
            prefs_url = f"/v1/persons/{bo['person_id']}/notification-preferences"
            put = await until_status(
                lambda: api.put(
                    prefs_url,
                    json={"events": {"record.verified": False}},
                    headers=bearer(bo["access_token"]),
                ),
                200,
            )
            assert put.json()["always_sent"] == [
                "credential.revoked",
                "credential.suspended",
                "record.rejected",
            ]
            refused = await api.put(
                prefs_url,
                json={"events": {"record.rejected": False}},
                headers=bearer(bo["access_token"]),
            )
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["field"] == "events.record.rejected"
            assert (
                await api.put(prefs_url, json={}, headers=bearer(ada["access_token"]))
            ).status_code == 403

            # Records are submitted through enrollment; the decisions arrive on the topics.
            def learning(person: dict[str, Any], title: str) -> dict[str, Any]:
                return {
                    "person_id": person["person_id"],
                    "type": "learning",
                    "title": title,
                    "completed_on": "2025-03-01",
                    "hours": 12,
                }

            ada_cda = await submit(enrollment, employer["api_key"], learning(ada, "CDA coursework"))
            ada_cpr = await submit(enrollment, employer["api_key"], learning(ada, "CPR refresher"))
            bo_rec = await submit(enrollment, employer["api_key"], learning(bo, "Safe sleep"))
            elsewhere = await submit(enrollment, other["api_key"], learning(ada, "Other course"))
            org_id = employer["organization_id"]
            credential_id = str(uuid.uuid4())
            now = datetime.now(UTC)
            decisions = [
                verification_event(
                    "RecordVerified",
                    ada["person_id"],
                    ada_cda,
                    org_id,
                    queue="auto_verification",
                    credential_id=credential_id,
                    credential_type="OpenBadgeCredential",
                    credential="{}",
                ),
                verification_event(
                    "RecordRejected",
                    ada["person_id"],
                    ada_cpr,
                    org_id,
                    queue="manual_review",
                    reason_code="insufficient_evidence",
                    note="The certificate scan is unreadable.",
                ),
                verification_event(
                    "RecordVerified",
                    bo["person_id"],
                    bo_rec,
                    org_id,
                    queue="auto_verification",
                    credential_id=str(uuid.uuid4()),
                    credential_type="OpenBadgeCredential",
                    credential="{}",
                ),
                verification_event(
                    "RecordVerified",
                    ada["person_id"],
                    elsewhere,
                    other["organization_id"],
                    queue="auto_verification",
                    credential_id=str(uuid.uuid4()),
                    credential_type="OpenBadgeCredential",
                    credential="{}",
                ),
            ]
            breach = verification_event(
                "SlaBreached",
                bo["person_id"],
                bo_rec,
                org_id,
                item_id=f"manual_review:{bo_rec}",
                queue="manual_review",
                submitted_at=now - timedelta(days=3),
                deadline=now - timedelta(days=1),
                elapsed_seconds=3 * 86400.0,
            )
            await publish(kafka, "ler.verification.v1", decisions)
            await publish(kafka, "ler.sla.v1", [breach])

            # E-mail: Ada hears her record was verified and the other one rejected, with how
            # to appeal; Bo's verified notice is held back by his preferences.
            async def ada_mail() -> list[EmailMessage] | None:
                got = mailbox.to(ada["email"])
                return got if len(got) >= 3 else None

            ada_messages = await wait_until(ada_mail, timeout=60)
            subjects = sorted(str(m["Subject"]) for m in ada_messages)
            assert 'Your record "CDA coursework" is verified' in subjects
            assert 'Your record "CPR refresher" was not verified' in subjects
            assert 'Your record "Other course" is verified' in subjects
            rejected = next(m for m in ada_messages if "not verified" in str(m["Subject"]))
            text = rejected.get_body(("plain",))
            markup = rejected.get_body(("html",))
            assert text is not None
            assert markup is not None
            assert "The certificate scan is unreadable." in text.get_content()
            assert f"/v1/records/{ada_cpr}/appeals" in text.get_content()
            assert "You can appeal this decision" in markup.get_content()
            assert "Hello Ada," in text.get_content()
            verified = next(m for m in ada_messages if "CDA" in str(m["Subject"]))
            verified_text = verified.get_body(("plain",))
            assert verified_text is not None
            assert credential_id in verified_text.get_content()

            bo_mail = await wait_until(lambda: _async(mailbox.to(bo["email"])), timeout=60)
            assert [str(m["Subject"]) for m in bo_mail] == [
                'The review of "Safe sleep" is taking longer than promised'
            ]
            # The mail is out before its message is marked sent: wait for the states to settle.
            want = {("record.verified", "suppressed"), ("sla.breached", "sent")}

            async def bo_states() -> set[tuple[str, str]] | None:
                listed = await api.get(
                    f"/v1/persons/{bo['person_id']}/notifications",
                    headers=bearer(bo["access_token"]),
                )
                states = {(m["kind"], m["state"]) for m in listed.json()["messages"]}
                return states if states == want else None

            assert await wait_until(bo_states, timeout=60) == want

            # Webhooks: signed, retried after a 500, each webhook-id received at least once.
            expected = {"record.verified": 2, "record.rejected": 1, "sla.breached": 1}

            async def delivered() -> list[Any] | None:
                page = (await api.get("/v1/deliveries?state=delivered", headers=key)).json()
                rows = page["deliveries"]
                return rows if len(rows) >= sum(expected.values()) else None

            rows = await wait_until(delivered, timeout=60)
            assert sorted(r["event_type"] for r in rows) == sorted(
                t for t, n in expected.items() for _ in range(n)
            )
            ok_ids = set(receiver.ids("ok"))
            assert {r["delivery_id"] for r in rows} <= ok_ids
            assert receiver.ids("ok", valid=False) == []
            (retried,) = receiver.failed_once
            assert receiver.ids("ok").count(retried) >= 2
            assert next(r for r in rows if r["delivery_id"] == retried)["attempts"] >= 2
            bodies = [s["body"] for s in receiver.seen if s["path"] == "ok"]
            assert all(b'"type":"' in b and b'"data":' in b for b in bodies)
            # Entitlement: each organization hears only about the records it submitted.
            assert all(elsewhere.encode() not in b for b in bodies)
            await wait_until(lambda: _async(receiver.ids("other")), timeout=30)
            theirs = [s["body"] for s in receiver.seen if s["path"] == "other"]
            assert all(elsewhere.encode() in b for b in theirs)
            assert all(
                r["event_id"] != decisions[3]["event_id"]
                for r in (await api.get("/v1/deliveries", headers=key)).json()["deliveries"]
            )

            # The endpoint that always fails ends dead after the configured attempts; the slow
            # one never held the others up.
            async def dead() -> list[Any] | None:
                page = (await api.get("/v1/deliveries?state=dead", headers=key)).json()
                return page["deliveries"] if len(page["deliveries"]) >= 4 else None

            dead_rows = await wait_until(dead, timeout=60)
            assert all(r["attempts"] == 3 for r in dead_rows)
            assert {r["last_error"] for r in dead_rows} <= {"HTTP 500", "no answer within 2 s"}
            assert len(receiver.ids("down")) == 2 * 3

            # A dead delivery is re-sent on request, with the same webhook-id.
            target = next(r for r in dead_rows if r["delivery_id"] in receiver.ids("down"))
            again = await api.post(f"/v1/deliveries/{target['delivery_id']}/retry", headers=key)
            assert again.status_code == 202
            assert again.json()["state"] == "pending"
            await wait_until(
                lambda: _async(receiver.ids("down").count(target["delivery_id"]) >= 4), timeout=30
            )
            others = (await api.get("/v1/deliveries", headers=bearer(other["api_key"]))).json()
            assert {r["delivery_id"] for r in others["deliveries"]}.isdisjoint(
                {r["delivery_id"] for r in rows}
            )
            stolen = await api.post(
                f"/v1/deliveries/{target['delivery_id']}/retry", headers=bearer(other["api_key"])
            )
            assert stolen.status_code == 404
    finally:
        stop_process(worker)


async def _async(value: Any) -> Any:
    return value

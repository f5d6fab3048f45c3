"""The world of the authorization matrix: every service built on one directory of stores, and the
people, organizations, reviewer, records, credentials, appeals, shares, subscriptions and
deliveries its rows name, all made through the services' own APIs and projectors.

Enrollment's events are read back from the broker and applied by each processor's own runner
(verification, wallet, notifications), as ``ler process ...`` would; what the verifier emits is
relayed to the broker and read back the same way, so the wallet holds the real credentials.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from ler.avro import default_codec
from ler.kafka import new_producer
from ler.outbox import OutboxRelay
from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.bootstrap import notifications_runner
from services.notifications.settings import NotificationsSettings
from services.notifications.store import SqlNotificationStore
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.bootstrap import new_runner as verification_runner
from services.verification.settings import VerificationSettings
from services.wallet.api import create_app as wallet_app
from services.wallet.bootstrap import bootstrap as wallet_bootstrap
from services.wallet.bootstrap import new_runner as wallet_runner
from services.wallet.settings import WalletSettings
from tests.helpers import client_for, read_topic, wait_until

SPARE = "spare"
ISSUED = (
    "get",
    "revoke:issuer",
    "revoke:admin",
    f"revoke:{SPARE}",
    *(f"{action}:{role}" for action in ("suspend", "unsuspend") for role in ("admin", "reviewer")),
    f"suspend:{SPARE}",
    f"unsuspend:{SPARE}",
)
# Employers the affiliation rows add (one per allowed role) and remove (``name:role``).
AFFILIABLE = ("affiliable:admin", "affiliable:person")
AFFILIATED = ("affiliation:admin", "affiliation:person", f"affiliation:{SPARE}")
DECLINED = ("decline:person", f"decline:{SPARE}")
KEY_ORGS = ("keyorg:admin", f"keyorg:{SPARE}", "revokeorg:admin", f"revokeorg:{SPARE}")
RESETTABLE = ("resettable:admin", f"resettable:{SPARE}")
REVIEWERS = ("reviewer:admin", f"reviewer:{SPARE}")
SELF_REPORTED = (
    "review:admin",
    "review:reviewer",
    f"review:{SPARE}",
    "appeal:admin",
    "appeal:reviewer",
    f"appeal:{SPARE}",
    "file:person",
    f"file:{SPARE}",
)


@dataclass
class World:
    """Credentials of each role, and the ids the rows' paths name (``{name}`` -> ``ids[name]``;
    ``name:role`` for an object a role's allowed call consumes, ``name:spare`` for the roles
    refused, so a refusal is always tried on an object the call could really change)."""

    tokens: dict[str, str | None] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        token = self.tokens.get(role)
        return {"Authorization": f"Bearer {token}"} if token else {}

    @property
    def person_id(self) -> str:
        return self.ids["person_id"]

    @property
    def partner_id(self) -> str:
        return self.ids["partner_id"]


def enrollment(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> FastAPI:
    return enrollment_app(
        enrollment_bootstrap(
            platform,
            kafka,
            EnrollmentSettings(),
            database_url=f"sqlite+aiosqlite:///{tmp / 'enrollment.db'}",
        )
    )


def verification(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> FastAPI:
    return verification_app(_verification_ctx(platform, kafka, tmp))


def _verification_ctx(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> Any:
    return verification_bootstrap(
        platform,
        kafka,
        VerificationSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp / 'verification.db'}",
    )


def wallet(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> FastAPI:
    return wallet_app(_wallet_ctx(platform, kafka, tmp))


def _wallet_ctx(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> Any:
    return wallet_bootstrap(
        platform, kafka, WalletSettings(), database_url=f"sqlite+aiosqlite:///{tmp / 'w.db'}"
    )


def _notifications_url(tmp: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp / 'notifications.db'}"


def notifications(platform: PlatformSettings, kafka: KafkaSettings, tmp: Path) -> FastAPI:
    return notifications_app(
        notifications_bootstrap(
            platform, kafka, NotificationsSettings(), database_url=_notifications_url(tmp)
        )
    )


def new_person(_: World, __: str = "") -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return {
        "given_name": "Row",
        "family_name": tag,
        "email": f"{tag}@example.org",
        "birth_date": "1985-06-01",
    }


Topics = dict[str, list[Message]]


def _messages(records: Sequence[Any]) -> list[Message]:
    return [Message(m.topic, m.partition, m.offset, m.key, m.value) for m in records]


async def _keyed(
    kafka: KafkaSettings, topic: str, keys: set[bytes], count: int, what: str
) -> list[Message]:
    async def found() -> list[Any] | None:
        got = [m for m in await read_topic(kafka, topic) if m.key in keys]
        return got if len(got) >= count else None

    try:
        return _messages(await wait_until(found, timeout=60))
    except AssertionError:
        raise AssertionError(f"{what}: fewer than {count} messages on {topic}") from None


def _ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.url}: {response.text[:300]}"
    return response.json() if response.content else None


async def build_world(kafka: KafkaSettings, platform: PlatformSettings, tmp: Path) -> World:
    assert platform.admin_token is not None
    world = World(tokens={"admin": platform.admin_token.get_secret_value(), "anonymous": None})
    # The world's messages per topic, read back from the broker.
    topics: Topics = {}
    await _enroll(world, topics, kafka, platform, tmp)
    await _verify(world, topics, kafka, platform, tmp)
    await _fill_wallet(world, topics, kafka, platform, tmp)
    await _notify(world, topics, kafka, platform, tmp)
    return world


async def _enroll(
    world: World, topics: Topics, kafka: KafkaSettings, platform: PlatformSettings, tmp: Path
) -> None:
    """Two organizations and two people; the issuer's records (auto-verified: it is an employer)
    and the person's self-reported ones (they go to review)."""
    admin = world.headers("admin")
    async with client_for(enrollment(platform, kafka, tmp)) as client:

        async def post(path: str, body: Any, headers: dict[str, str]) -> Any:
            return _ok(await client.post(path, json=body, headers=headers), 201)

        issuer = await post("/v1/organizations", {"name": "Maple Tree", "kind": "employer"}, admin)
        partner = await post("/v1/organizations", {"name": "Alliance", "kind": "partner"}, admin)
        person = await post("/v1/persons", new_person(world), admin)
        other = await post("/v1/persons", new_person(world), admin)
        world.tokens.update(
            issuer=issuer["api_key"],
            partner=partner["api_key"],
            person=person["access_token"],
            other_person=other["access_token"],
        )
        world.ids.update(
            person_id=person["person_id"],
            other_person_id=other["person_id"],
            issuer_id=issuer["organization_id"],
            partner_id=partner["organization_id"],
        )
        issued = {
            "records": [
                {
                    "person_id": world.person_id,
                    "type": "credential",
                    "title": f"CDA Credential ({name})",
                    "issued_on": "2024-05-01",
                }
                for name in ISSUED
            ]
        }
        extra_orgs = await _affiliations(world, post)
        accepted = _ok(
            await client.post("/v1/records", json=issued, headers=world.headers("issuer")), 202
        )
        world.ids.update(
            {f"record:{n}": r for n, r in zip(ISSUED, accepted["record_ids"], strict=True)}
        )
        for name in SELF_REPORTED:
            own = {"type": "learning", "title": f"First aid ({name})", "completed_on": "2025-01-10"}
            answer = await client.post(
                f"/v1/persons/{world.person_id}/records", json=own, headers=world.headers("person")
            )
            world.ids[f"record:{name}"] = _ok(answer, 202)["record_ids"][0]
        # An unaffiliated employer's records wait for review: the person declines them.
        unasked = {
            "records": [
                {
                    "person_id": world.person_id,
                    "type": "learning",
                    "title": f"Course ({name})",
                    "completed_on": "2025-01-10",
                }
                for name in DECLINED
            ]
        }
        declined = await client.post(
            "/v1/records", json=unasked, headers={"Authorization": f"Bearer {extra_orgs[1]}"}
        )
        world.ids.update(zip(DECLINED, _ok(declined, 202)["record_ids"], strict=True))
        # Read back while the enrollment API's relay is still publishing.
        people = {world.person_id.encode(), world.ids["other_person_id"].encode()}
        orgs = {world.ids["issuer_id"].encode(), world.partner_id.encode(), extra_orgs[0]}
        orgs |= {world.ids[name].encode() for name in AFFILIABLE + AFFILIATED}
        world_keys = people | orgs
        total = len(ISSUED) + len(SELF_REPORTED) + len(DECLINED)
        enrolled = len(world_keys) + 1 + len(AFFILIATED)  # and the affiliations
        topics["enrollment"] = await _keyed(
            kafka, "ler.enrollment.v1", world_keys, enrolled, "enrolled"
        )
        topics["records"] = await _keyed(kafka, "ler.records.v1", people, total, "records")


async def _affiliations(world: World, post: Any) -> tuple[bytes, str]:
    """The issuer is affiliated with the person (an admin said so, so its records verify
    automatically); employers for the affiliation rows; and an employer the person never named.
    Returns the stranger's id (a message key) and API key."""
    admin = world.headers("admin")
    path = f"/v1/persons/{world.person_id}/affiliations"
    await post(path, {"organization_id": world.ids["issuer_id"]}, admin)
    for name in AFFILIABLE + AFFILIATED:
        made = await post("/v1/organizations", {"name": name, "kind": "employer"}, admin)
        world.ids[name] = made["organization_id"]
        if name in AFFILIATED:
            await post(path, {"organization_id": made["organization_id"]}, admin)
    # Objects of the access rows: organizations whose key is rotated or revoked, persons whose
    # token is reset (the issuer rotates its own key: ``keyorg:issuer``).
    for name in KEY_ORGS:
        made = await post("/v1/organizations", {"name": name, "kind": "employer"}, admin)
        world.ids[name] = made["organization_id"]
    world.ids["keyorg:issuer"] = world.ids["issuer_id"]
    for name in RESETTABLE:
        world.ids[name] = (await post("/v1/persons", new_person(world), admin))["person_id"]
    stranger = await post("/v1/organizations", {"name": "Stranger", "kind": "employer"}, admin)
    return stranger["organization_id"].encode(), stranger["api_key"]


async def _verify(
    world: World, topics: Topics, kafka: KafkaSettings, platform: PlatformSettings, tmp: Path
) -> None:
    """The verifier applies the world's events; a real reviewer (``POST /v1/reviewers``) and the
    admin reject the records the appeal rows need, and the person appeals three of them."""
    ctx = _verification_ctx(platform, kafka, tmp)
    await ctx.store.open()
    runner = verification_runner(ctx.store)
    await runner.load_positions()
    await runner.process(topics["enrollment"])
    await runner.process(topics["records"])
    producer = new_producer(kafka, "ler-authz-world")
    await producer.start()
    try:
        await OutboxRelay(ctx.store.outbox_source(), None, producer).publish_pending()
    finally:
        await producer.stop()
    await ctx.store.close()

    async with client_for(verification_app(ctx)) as client:
        admin = world.headers("admin")
        reviewer = _ok(
            await client.post("/v1/reviewers", json={"name": "Rowan"}, headers=admin), 201
        )
        world.tokens["reviewer"] = reviewer["access_token"]
        for name in REVIEWERS:  # reviewers the revocation row revokes
            made = await client.post("/v1/reviewers", json={"name": name}, headers=admin)
            world.ids[name] = _ok(made, 201)["reviewer_id"]
        rejections = {
            "appeal:admin": "reviewer",
            "appeal:reviewer": "admin",
            f"appeal:{SPARE}": "admin",
            "file:person": "admin",
            f"file:{SPARE}": "admin",
        }
        for name, by in rejections.items():
            _ok(
                await client.post(
                    f"/v1/reviews/{world.ids[f'record:{name}']}/decision",
                    json={"decision": "rejected", "reason_code": "insufficient_evidence"},
                    headers=world.headers(by),
                ),
                200,
            )
        for name in ("appeal:admin", "appeal:reviewer", f"appeal:{SPARE}"):
            appeal = _ok(
                await client.post(
                    f"/v1/records/{world.ids[f'record:{name}']}/appeals",
                    json={"statement": "I did the course"},
                    headers=world.headers("person"),
                ),
                201,
            )
            world.ids[name] = appeal["appeal_id"]
        for name in rejections:
            if name.startswith("file:"):
                world.ids[name] = world.ids[f"record:{name}"]
        for name in SELF_REPORTED:
            if name.startswith("review:"):
                world.ids[name] = world.ids[f"record:{name}"]

        people = {world.person_id.encode()}
        verified = await _keyed(kafka, "ler.verification.v1", people, len(ISSUED), "verified")
        codec = default_codec()
        credentials = {}
        for message in verified:
            assert message.value is not None
            decoded = codec.decode(message.value)
            if decoded.get("credential_id"):
                credentials[str(decoded["record_id"])] = str(decoded["credential_id"])
        for name in ISSUED:
            world.ids[f"credential:{name}"] = credentials[world.ids[f"record:{name}"]]
        for name in ISSUED:  # what the unsuspend rows lift is suspended first
            if name.startswith("unsuspend:"):
                _ok(
                    await client.post(
                        f"/v1/credentials/{world.ids[f'credential:{name}']}/suspend",
                        json={"reason_code": "disputed"},
                        headers=admin,
                    ),
                    200,
                )
        world.ids["credential_id"] = world.ids["credential:get"]
        world.ids["record_id"] = world.ids["record:get"]
        document = _ok(
            await client.get(f"/v1/credentials/{world.ids['credential_id']}", headers=admin), 200
        )
        (status,) = [e for e in document["credentialStatus"] if e["statusPurpose"] == "revocation"]
        world.ids["list_id"] = status["statusListCredential"].rstrip("/").rsplit("/", 1)[1]
        topics["verification"] = verified


async def _fill_wallet(
    world: World, topics: Topics, kafka: KafkaSettings, platform: PlatformSettings, tmp: Path
) -> None:
    """The wallet's projector applies the same events; the person makes three shares."""
    ctx = _wallet_ctx(platform, kafka, tmp)
    await ctx.store.open()
    runner = wallet_runner(ctx.store, emit=False)
    await runner.load_positions()
    for topic in ("enrollment", "records", "verification"):
        await runner.process(topics[topic])
    await ctx.store.close()
    async with client_for(wallet_app(ctx)) as client:
        for name in ("share", "share:person", f"share:{SPARE}"):
            share = _ok(
                await client.post(
                    f"/v1/wallets/{world.person_id}/shares",
                    json={
                        "record_ids": [world.ids["record_id"]],
                        "audience": "A",
                        "expires_in": 600,
                    },
                    headers=world.headers("person"),
                ),
                201,
            )
            world.ids[name] = share["share_id"]
            world.ids[f"token:{name}"] = share["token"]
    world.ids["token"] = world.ids["token:share"]
    world.ids["share_id"] = world.ids["share"]


async def _notify(
    world: World, topics: Topics, kafka: KafkaSettings, platform: PlatformSettings, tmp: Path
) -> None:
    """The notifications processor learns the organizations and people; the organizations
    subscribe; the processor then applies the records' events, which queues the issuer's
    deliveries."""
    store = SqlNotificationStore(_notifications_url(tmp))
    await store.open()
    runner = notifications_runner(store, emit=False)
    await runner.load_positions()
    await runner.process(topics["enrollment"])
    async with client_for(notifications(platform, kafka, tmp)) as client:
        subscriptions = {
            "delivering": ("issuer", ["record.verified"]),
            "subscription:issuer": ("issuer", ["record.rejected"]),
            "subscription:partner": ("partner", ["partner_feed.record_published"]),
            f"subscription:{SPARE}": ("issuer", ["appeal.filed"]),
        }
        for name, (role, types) in subscriptions.items():
            made = _ok(
                await client.post(
                    "/v1/subscriptions",
                    json={"url": "https://hooks.example.org/hook", "event_types": types},
                    headers=world.headers(role),
                ),
                201,
            )
            world.ids[name] = made["subscription_id"]
        await runner.process(topics["records"])
        await runner.process(topics["verification"])
        page = _ok(await client.get("/v1/deliveries", headers=world.headers("issuer")), 200)
        assert page["deliveries"], "the issuer's subscription queued no delivery"
        world.ids["delivery_id"] = page["deliveries"][0]["delivery_id"]
    await store.close()

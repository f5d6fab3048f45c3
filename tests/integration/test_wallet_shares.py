"""Transmit and interpret, on the real broker and both stores: Pete shares chosen verified records
(a Verifiable Presentation with exactly those credentials and no demographic field), the share
answers 410 once expired or revoked, every read by the audience is audited and published on
``ler.notifications.v1``; anyone verifies credentials and presentations (tampering, revocation,
expiry and other issuers' did:key credentials); skills are matched against a role for the owner
and, for the shared records only, for the share's audience; nobody reads anyone else's wallet."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.avro import default_codec
from ler.credentials import SigningKey, add_proof, did_key_from_public_key
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3
from ler.settings import KafkaSettings, PlatformSettings
from ler.topics import NOTIFICATIONS
from services.wallet.api import create_app
from services.wallet.bootstrap import bootstrap
from services.wallet.domain import Share
from services.wallet.settings import WalletSettings
from services.wallet.store import SqlWalletStore
from tests.helpers import client_for, read_topic, wait_until
from tests.integration.wallet_world import PeteWorld, build_world, project, registry_documents

pytestmark = pytest.mark.integration
CODEC = default_codec()
DEMOGRAPHIC_VALUES = ("1988-07-14", "Kent County", "Associate degree", "male", "English")


@dataclass
class Wallet:
    client: httpx.AsyncClient
    world: PeteWorld
    store: SqlWalletStore
    registry: Any

    def owner(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.pete_token}"}

    def olive(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.world.olive_token}"}

    async def share(self, *names: str, **extra: Any) -> dict[str, Any]:
        body = {
            "record_ids": [self.world.records[n] for n in names],
            "audience": "Company B",
            "expires_in": 3600,
            **extra,
        }
        response = await self.client.post(
            f"/v1/wallets/{self.world.pete}/shares", json=body, headers=self.owner()
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
async def wallet(
    database_url: str, kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[Wallet]:
    with registry_documents() as registry:
        world, messages = build_world(tmp_path / "keys", registry)
        settings = WalletSettings(
            public_url="https://wallet.test",
            verification_url=registry.url,
            verification_public_url=registry.url,
        )
        ctx = bootstrap(platform, kafka, settings, database_url=database_url)
        assert isinstance(ctx.store, SqlWalletStore)
        await project(ctx.store, messages)
        await ctx.store.close()
        async with client_for(create_app(ctx)) as client:
            yield Wallet(client, world, ctx.store, registry)


def _token_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


async def test_a_share_presents_exactly_the_chosen_credentials_and_no_demographics(
    wallet: Wallet, kafka: KafkaSettings
) -> None:
    world = wallet.world
    share = await wallet.share("employment", "cda")
    token = share["token"]
    assert share["url"] == f"https://wallet.test/v1/shares/{token}"
    # At least 128 bits of randomness after the prefix (base64url: 6 bits a character).
    assert len(token.removeprefix("ler_share_")) * 6 >= 128

    response = await wallet.client.get(f"/v1/shares/{token}")
    assert response.status_code == 200, response.text
    presentation = response.json()
    assert "VerifiablePresentation" in presentation["type"]
    ids = [c["id"] for c in presentation["verifiableCredential"]]
    assert ids == [world.credentials["employment"]["id"], world.credentials["cda"]["id"]]
    assert presentation["verifiableCredential"][0] == world.credentials["employment"]
    text = json.dumps(presentation)
    for value in DEMOGRAPHIC_VALUES:
        assert value not in text
    assert "holderDemographics" not in presentation

    # The presentation verifies (status lists and the DID document read over HTTP).
    verdict = (await wallet.client.post("/v1/verify", json=presentation)).json()
    assert verdict["verified"] is True, verdict
    assert verdict["problems"] == []
    assert {c["name"]: c["outcome"] for c in verdict["credentials"][0]["checks"]}["status"] == (
        "passed"
    )

    # The QR code is an SVG of the share link.
    qr = await wallet.client.get(f"/v1/shares/{token}/qr.svg")
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert qr.text.lstrip().startswith("<?xml") or "<svg" in qr.text[:200]

    # Only the hash of the token is stored.
    dump = json.dumps(await _table(wallet.store, "wallet_shares"), default=str)
    assert token not in dump
    assert hashlib.sha256(token.encode()).hexdigest() in dump

    # Demographic fields only when the owner includes them.
    with_demo = await wallet.share("cda", include_demographics=True)
    opened = (await wallet.client.get(f"/v1/shares/{with_demo['token']}")).json()
    assert opened["holderDemographics"]["county"] == "Kent County"
    assert opened["holderDemographics"]["birth_date"] == "1988-07-14"
    assert (await wallet.client.post("/v1/verify", json=opened)).json()["verified"] is True

    # The owner sees the share and each access: when, by which audience.
    listed = (
        await wallet.client.get(f"/v1/wallets/{world.pete}/shares", headers=wallet.owner())
    ).json()["shares"]
    first = next(s for s in listed if s["share_id"] == share["share_id"])
    assert first["state"] == "active"
    assert [(a["action"], a["audience"]) for a in first["accesses"]] == [
        ("share_opened", "Company B")
    ]
    audit = (
        await wallet.client.get(f"/v1/wallets/{world.pete}/audit", headers=wallet.owner())
    ).json()["entries"]
    assert {"share_created", "share_opened"} <= {e["action"] for e in audit}

    # Every share event is on the topic, keyed by the owner, and carries no token.
    async def published() -> list[dict[str, Any]] | None:
        records = [
            CODEC.decode(m.value)
            for m in await read_topic(kafka, NOTIFICATIONS.name)
            if m.key == world.pete.encode()
        ]
        wanted = {share["share_id"], with_demo["share_id"]}
        mine = [r for r in records if str(r["share_id"]) in wanted]
        return mine if len(mine) >= 4 else None

    events = await wait_until(published, timeout=30)
    kinds = sorted(e["event_type"] for e in events)
    assert kinds == ["ShareCreated", "ShareCreated", "ShareOpened", "ShareOpened"]
    assert all(token not in json.dumps(e, default=str) for e in events)


async def test_only_verified_records_of_ones_own_wallet_can_be_shared(wallet: Wallet) -> None:
    world = wallet.world
    for names in (["cpr"], ["food"], ["cda", "olive_job"]):
        response = await wallet.client.post(
            f"/v1/wallets/{world.pete}/shares",
            json={
                "record_ids": [world.records[n] for n in names],
                "audience": "Company B",
                "expires_in": 3600,
            },
            headers=wallet.owner(),
        )
        assert response.status_code == 422, response.text
        field = f"record_ids[{len(names) - 1}]"
        assert [e["field"] for e in response.json()["errors"]] == [field]
    too_short = await wallet.client.post(
        f"/v1/wallets/{world.pete}/shares",
        json={"record_ids": [world.records["cda"]], "audience": "B", "expires_in": 5},
        headers=wallet.owner(),
    )
    assert too_short.status_code == 422
    assert too_short.json()["errors"][0]["field"] == "expires_in"
    assert await _table(wallet.store, "wallet_shares") == []


async def test_expired_and_revoked_shares_answer_410_and_nothing_else(wallet: Wallet) -> None:
    world = wallet.world
    share = await wallet.share("employment")
    token = share["token"]
    assert (await wallet.client.get(f"/v1/shares/{token}")).status_code == 200
    revoked = await wallet.client.delete(
        f"/v1/wallets/{world.pete}/shares/{share['share_id']}", headers=wallet.owner()
    )
    assert revoked.status_code == 204
    for path in (f"/v1/shares/{token}", f"/v1/shares/{token}/qr.svg"):
        gone = await wallet.client.get(path)
        assert gone.status_code == 410
        assert gone.json() == {"detail": "this share has expired or was revoked", "errors": []}
    match = await wallet.client.get(
        f"/v1/wallets/{world.pete}/match?role=childcare-worker",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert match.status_code == 410

    # An expired share (stored through the store's own method, a day past its expiry).
    now = datetime.now(UTC).replace(microsecond=0)
    expired_token = "ler_share_expired_" + "x" * 40
    expired = Share(
        share_id="7b0d1f4e-8a52-4c1e-9d0b-2f5b1c3d4e5f",
        person_id=world.pete,
        token_sha256=hashlib.sha256(expired_token.encode()).hexdigest(),
        audience="Company C",
        record_ids=(world.records["cda"],),
        include_demographics=False,
        created_at=now - timedelta(days=2),
        expires_at=now - timedelta(days=1),
    )
    await wallet.store.create_share(expired, [])
    gone = await wallet.client.get(f"/v1/shares/{expired_token}")
    assert gone.status_code == 410
    assert gone.json() == {"detail": "this share has expired or was revoked", "errors": []}
    listed = (
        await wallet.client.get(f"/v1/wallets/{world.pete}/shares", headers=wallet.owner())
    ).json()["shares"]
    assert {s["share_id"]: s["state"] for s in listed} == {
        share["share_id"]: "revoked",
        expired.share_id: "expired",
    }
    # Revoking twice changes nothing; unknown tokens are 404.
    again = await wallet.client.delete(
        f"/v1/wallets/{world.pete}/shares/{share['share_id']}", headers=wallet.owner()
    )
    assert again.status_code == 204
    assert (await wallet.client.get("/v1/shares/ler_share_" + "A" * 43)).status_code == 404


async def test_matching_splits_matched_unverified_and_missing(wallet: Wallet) -> None:
    world = wallet.world
    response = await wallet.client.get(
        f"/v1/wallets/{world.pete}/match?role=childcare-worker", headers=wallet.owner()
    )
    assert response.status_code == 200, response.text
    result = response.json()
    matched = {m["skill_id"]: m for m in result["matched"]}
    assert set(matched) == {
        "ler:ece.child-development",
        "ler:ece.health-safety",
        "ler:ece.positive-guidance",
        "ler:ece.learning-environment",
        "ler:ece.family-engagement",
        "onet:2.A.1.b",
        "onet:2.B.1.a",
    }
    # Each matched skill names the credential that supports it.
    employment_id = world.credentials["employment"]["id"].removeprefix("urn:uuid:")
    assert matched["onet:2.A.1.b"]["credential_ids"] == [employment_id]
    assert matched["onet:2.A.1.b"]["record_ids"] == [world.records["employment"]]
    # Self-reported, unverified records, and the revoked food handler card, are not matched.
    assert {m["skill_id"] for m in result["unverified"]} == {
        "ler:ece.pediatric-first-aid",
        "ler:ece.pediatric-cpr",
        "ler:ece.child-abuse-reporting",
        "ler:gen.food-safety",
    }
    assert [m["skill_id"] for m in result["missing"]] == ["ler:ece.infant-toddler-care"]
    assert result["score"] == 0.5556
    assert result["scope"] == "wallet"

    # The wallet keeps the skills with the records that support them.
    own = (await wallet.client.get(f"/v1/wallets/{world.pete}", headers=wallet.owner())).json()
    skills = {s["skill_id"]: s for s in own["skills"]}
    assert skills["ler:ece.pediatric-cpr"]["verified"] is False
    assert skills["ler:ece.pediatric-cpr"]["unverified_record_ids"] == [world.records["cpr"]]
    assert skills["ler:gen.food-safety"]["verified"] is False
    assert skills["ler:ece.child-development"]["verified"] is True

    # The audience of a share of the CDA alone sees what the CDA shows, nothing else.
    share = await wallet.share("cda")
    audience = await wallet.client.get(
        f"/v1/wallets/{world.pete}/match?role=childcare-worker",
        headers={"Authorization": f"Bearer {share['token']}"},
    )
    assert audience.status_code == 200, audience.text
    seen = audience.json()
    assert seen["scope"] == "share"
    assert {m["skill_id"] for m in seen["matched"]} == {
        "ler:ece.child-development",
        "ler:ece.health-safety",
        "ler:ece.positive-guidance",
        "ler:ece.learning-environment",
        "ler:ece.family-engagement",
    }
    assert seen["unverified"] == []
    assert all(m["record_ids"] == [world.records["cda"]] for m in seen["matched"])
    listed = (
        await wallet.client.get(f"/v1/wallets/{world.pete}/shares", headers=wallet.owner())
    ).json()["shares"]
    accesses = next(s for s in listed if s["share_id"] == share["share_id"])["accesses"]
    assert [(a["action"], a["role"]) for a in accesses] == [("share_matched", "childcare-worker")]

    roles = (await wallet.client.get("/v1/roles")).json()["roles"]
    assert "childcare-worker" in {r["role_id"] for r in roles}
    unknown = await wallet.client.get(
        f"/v1/wallets/{world.pete}/match?role=astronaut", headers=wallet.owner()
    )
    assert unknown.status_code == 404


async def test_a_share_is_matched_by_its_link_alone_and_names_no_person(wallet: Wallet) -> None:
    """Issue 11, item 2: credentials no longer carry the person's id, so the audience matches
    through the share link; neither the presentation nor the match names the person."""
    world = wallet.world
    share = await wallet.share("cda")
    presentation = (await wallet.client.get(f"/v1/shares/{share['token']}")).json()
    assert world_id_absent(presentation, world.pete)
    answer = await wallet.client.get(f"/v1/shares/{share['token']}/match?role=childcare-worker")
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["scope"] == "share"
    assert seen["unverified"] == []
    assert all(m["record_ids"] == [world.records["cda"]] for m in seen["matched"])
    assert world_id_absent(seen, world.pete)
    unknown = await wallet.client.get(f"/v1/shares/{share['token']}/match?role=astronaut")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["field"] == "role"
    listed = (
        await wallet.client.get(f"/v1/wallets/{world.pete}/shares", headers=wallet.owner())
    ).json()["shares"]
    accesses = next(s for s in listed if s["share_id"] == share["share_id"])["accesses"]
    assert ("share_matched", "childcare-worker") in [(a["action"], a.get("role")) for a in accesses]


def world_id_absent(document: Any, person_id: str) -> bool:
    return person_id.lower() not in json.dumps(document).lower()


async def test_no_endpoint_returns_another_persons_data(wallet: Wallet) -> None:
    world = wallet.world
    share = await wallet.share("cda")
    sid = share["share_id"]
    pete = world.pete
    for method, path in (
        ("GET", f"/v1/wallets/{pete}"),
        ("GET", f"/v1/wallets/{pete}/shares"),
        ("GET", f"/v1/wallets/{pete}/audit"),
        ("GET", f"/v1/wallets/{pete}/match?role=childcare-worker"),
        ("DELETE", f"/v1/wallets/{pete}/shares/{sid}"),
        ("POST", f"/v1/wallets/{pete}/shares"),
    ):
        body = (
            {"record_ids": [world.records["cda"]], "audience": "x", "expires_in": 3600}
            if method == "POST"
            else None
        )
        for headers, allowed in (
            (wallet.olive(), {404}),
            ({}, {401}),
            ({"Authorization": "Bearer ler_person_forged"}, {401}),
        ):
            response = await wallet.client.request(method, path, headers=headers, json=body)
            assert response.status_code in allowed, (method, path, response.status_code)
            assert world.records["cda"] not in response.text
    # A share token reads only the matching of its own wallet, nothing else.
    bearer = {"Authorization": f"Bearer {share['token']}"}
    assert (await wallet.client.get(f"/v1/wallets/{pete}", headers=bearer)).status_code == 401
    assert (
        await wallet.client.get(f"/v1/wallets/{pete}/shares", headers=bearer)
    ).status_code == 401
    other = await wallet.client.get(
        f"/v1/wallets/{world.olive}/match?role=childcare-worker", headers=bearer
    )
    assert other.status_code == 404
    # Olive's share list is empty, Pete's share still active.
    assert (
        await wallet.client.get(f"/v1/wallets/{world.olive}/shares", headers=wallet.olive())
    ).json() == {"shares": []}
    assert (await wallet.client.get(f"/v1/shares/{share['token']}")).status_code == 200


async def test_verify_reports_tampering_revocation_expiry_and_accepts_other_issuers(
    wallet: Wallet,
) -> None:
    world, client = wallet.world, wallet.client
    good = world.credentials["employment"]
    verdict = (await client.post("/v1/verify", json={"credential": good})).json()
    assert verdict["verified"] is True, verdict

    tampered = copy.deepcopy(good)
    tampered["credentialSubject"]["role"] = "Center Director"
    verdict = (await client.post("/v1/verify", json=tampered)).json()
    assert verdict["verified"] is False
    problem = next(p for p in verdict["problems"] if p["check"] == "proof")
    assert problem["title"] == "Content changed after signing"
    assert problem["detail"]

    revoked = (await client.post("/v1/verify", json=world.credentials["food"])).json()
    assert revoked["verified"] is False
    assert [p["title"] for p in revoked["problems"]] == ["Revoked"]

    # A presentation with one credential altered fails and names the credential.
    share = await wallet.share("employment", "cda")
    presentation = (await client.get(f"/v1/shares/{share['token']}")).json()
    altered = copy.deepcopy(presentation)
    altered["verifiableCredential"][1]["credentialSubject"]["achievement"]["name"] = "PhD"
    verdict = (await client.post("/v1/verify", json={"presentation": altered})).json()
    assert verdict["verified"] is False
    assert verdict["problems"][0]["credential"] == world.credentials["cda"]["id"]
    assert verdict["problems"][0]["title"] == "Content changed after signing"
    checks = {c["name"]: c for c in verdict["checks"]}
    assert checks["credentials"]["outcome"] == "failed"

    # An expired presentation fails its expiry check.
    expired = copy.deepcopy(presentation)
    expired["validUntil"] = "2020-01-01T00:00:00Z"
    verdict = (await client.post("/v1/verify", json=expired)).json()
    assert verdict["verified"] is False
    assert any(p["check"] == "expiry" for p in verdict["problems"])

    # An audience that expects a signed presentation for its domain learns it is not one.
    verdict = (
        await client.post(
            "/v1/verify", json={"presentation": presentation, "domain": "company-b.example"}
        )
    ).json()
    assert verdict["verified"] is False
    assert {p["check"] for p in verdict["problems"]} >= {"domain"}

    # Another issuer, same standards: did:key, Open Badges 3.0.
    # A fresh key pair; its id and controller are set below from its own did:key.
    key = SigningKey.generate("did:key:pending#key", "did:key:pending")
    did = did_key_from_public_key(key.public_key)
    key = SigningKey(id=f"{did}#{did.removeprefix('did:key:')}", controller=did, seed=key.seed)
    badge = add_proof(
        {
            "@context": [CREDENTIALS_V2, OPEN_BADGES_V3],
            "id": "urn:uuid:3f6b0d2c-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
            "type": ["VerifiableCredential", "OpenBadgeCredential"],
            "issuer": {"id": did, "type": ["Profile"], "name": "Another College"},
            "validFrom": "2025-01-01T00:00:00Z",
            "name": "Infant and Toddler Care",
            "credentialSubject": {
                "type": ["AchievementSubject"],
                "achievement": {
                    "id": "urn:uuid:5a4b3c2d-1e0f-4a1b-9c8d-7e6f5a4b3c2d",
                    "type": ["Achievement"],
                    "name": "Infant and Toddler Care",
                    "description": "A 45-hour course.",
                    "criteria": {"narrative": "Completed the course."},
                },
            },
        },
        key,
    )
    verdict = (await client.post("/v1/verify", json=badge)).json()
    assert verdict["verified"] is True, verdict
    forged = copy.deepcopy(badge)
    forged["issuer"]["name"] = "Famous University"
    assert (await client.post("/v1/verify", json=forged)).json()["verified"] is False

    bad = await client.post("/v1/verify", json={"hello": "world"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body"
    # The registry's documents were fetched over HTTP once each, then cached.
    assert wallet.registry.requests.count("/.well-known/did.json") == 1


async def _table(store: SqlWalletStore, name: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    table = store.db.metadata.tables[name]
    await store.open()
    async with store.db.read() as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]

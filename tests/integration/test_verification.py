"""Verify, end to end on the real broker and both stores: records become signed credentials in the
wallet, self-reported ones go through review, rejection, appeal and verification, a revocation
sets the credential's bit, and the SLA processor breaches what is left open and meets the rest.

The verifier, the SLA processor and the wallet projector run as their own processes (``ler
process ...``), the enrollment, verification and wallet APIs in-process.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.avro import default_codec
from ler.credentials import (
    StaticDidResolver,
    StaticStatusListFetcher,
    StatusList,
    verify_credential,
)
from ler.credentials.multikey import generate_key_file
from ler.settings import KafkaSettings, PlatformSettings
from ler.topics import SLA, VERIFICATION
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.settings import VerificationSettings
from services.wallet.api import create_app as wallet_app
from services.wallet.bootstrap import bootstrap as wallet_bootstrap
from services.wallet.settings import WalletSettings
from tests.conftest import Databases
from tests.helpers import (
    affiliate,
    client_for,
    read_topic,
    start_processor,
    stop_process,
    wait_until,
)

pytestmark = pytest.mark.integration
CODEC = default_codec()
DID = "did:web:registry.test"
REVIEW_SECONDS = 15


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin(platform: PlatformSettings) -> dict[str, str]:
    assert platform.admin_token is not None
    return bearer(platform.admin_token.get_secret_value())


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("keys")
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    return keys


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


def settings_env(key_dir: Path) -> dict[str, str]:
    return {
        "VERIFICATION_SIGNING_KEY_FILE": str(key_dir),
        "VERIFICATION_DID": DID,
        "VERIFICATION_PUBLIC_URL": "https://registry.test",
        "VERIFICATION_SLA_REVIEW_SECONDS": str(REVIEW_SECONDS),
        "VERIFICATION_SLA_AUTO_SECONDS": "120",
        "VERIFICATION_SLA_APPEAL_SECONDS": "600",
        "VERIFICATION_SLA_TICK_SECONDS": "0.5",
        "VERIFICATION_SLA_LATENESS_SECONDS": "1",
        "VERIFICATION_BATCH_WINDOW_MS": "10",
        "WALLET_BATCH_WINDOW_MS": "10",
    }


class Flow:
    """The clients and identities one test drives."""

    def __init__(
        self,
        enrollment: httpx.AsyncClient,
        verification: httpx.AsyncClient,
        wallet: httpx.AsyncClient,
        platform: PlatformSettings,
    ) -> None:
        self.enrollment = enrollment
        self.verification = verification
        self.wallet = wallet
        self.admin = admin(platform)
        self.org: dict[str, Any] = {}
        self.other_org: dict[str, Any] = {}
        self.pete: dict[str, Any] = {}
        self.other: dict[str, Any] = {}
        self.reviewer: dict[str, str] = {}

    async def setup(self) -> None:
        self.org = await self._org("Bright Start Early Learning")
        self.other_org = await self._org("Another Provider")
        self.pete = await self._person("Pete")
        self.other = await self._person("Olive")
        await affiliate(
            self.enrollment, self.admin, self.pete["person_id"], self.org["organization_id"]
        )
        response = await self.verification.post(
            "/v1/reviewers", json={"name": "Rita Reviewer"}, headers=self.admin
        )
        assert response.status_code == 201, response.text
        self.reviewer = bearer(response.json()["access_token"])

    async def _org(self, name: str) -> dict[str, Any]:
        response = await self.enrollment.post(
            "/v1/organizations",
            json={"name": name, "kind": "training_provider"},
            headers=self.admin,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def _person(self, name: str) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:8]
        body = {
            "given_name": name,
            "family_name": f"Test{tag}",
            "email": f"{tag}@example.org",
            "birth_date": "1988-07-14",
        }
        response = await self.enrollment.post("/v1/persons", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def issue_learning(self) -> str:
        response = await self.enrollment.post(
            "/v1/records",
            json={
                "person_id": self.pete["person_id"],
                "type": "learning",
                "title": "Child Development Foundations",
                "completed_on": "2025-03-01",
                "hours": 12,
                "competencies": ["Child Development"],
            },
            headers=bearer(self.org["api_key"]),
        )
        assert response.status_code == 202, response.text
        return str(response.json()["record_ids"][0])

    async def self_report(self, title: str) -> str:
        response = await self.enrollment.post(
            f"/v1/persons/{self.pete['person_id']}/records",
            json={
                "type": "employment",
                "title": title,
                "action": "hired",
                "start_date": "2023-09-01",
                "soc_code": "25-2011",
                "evidence": [{"name": "Offer letter", "url": "https://example.org/offer.pdf"}],
            },
            headers=bearer(self.pete["access_token"]),
        )
        assert response.status_code == 202, response.text
        return str(response.json()["record_ids"][0])

    async def wallet_record(self, record_id: str, status: str) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            response = await self.wallet.get(
                f"/v1/wallets/{self.pete['person_id']}",
                headers=bearer(self.pete["access_token"]),
            )
            if response.status_code != 200:
                return None
            for record in response.json()["records"]:
                if record["record_id"] == record_id and record["status"] == status:
                    return dict(record)
            return None

        result: dict[str, Any] = await wait_until(found, timeout=90, interval=0.3)
        return result


async def events_of(kafka: KafkaSettings, topic: str, **match: str) -> list[dict[str, Any]]:
    out = []
    for message in await read_topic(kafka, topic):
        record = CODEC.decode(message.value)
        if all(str(record.get(k)) == v for k, v in match.items()):
            out.append(record)
    return out


async def test_records_are_verified_reviewed_appealed_revoked_and_timed(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    key_dir: Path,
    tmp_path: Path,
) -> None:
    url, wallet_url = databases.new_url(), databases.new_url()
    env = {
        **kafka.environment(),
        "LER_DATA_DIR": str(tmp_path),
        "VERIFICATION_DATABASE_URL": url,
        "WALLET_DATABASE_URL": wallet_url,
        **settings_env(key_dir),
    }
    processes = [
        start_processor(name, env, tmp_path / f"{name}.log")
        for name in ("verification", "sla", "wallet")
    ]
    settings = VerificationSettings(
        signing_key_file=key_dir,
        did=DID,
        public_url="https://registry.test",
        sla_review_seconds=REVIEW_SECONDS,
    )
    ctx = verification_bootstrap(platform, kafka, settings, database_url=url)
    wallet_ctx = wallet_bootstrap(platform, kafka, WalletSettings(), database_url=wallet_url)
    try:
        async with (
            client_for(verification_app(ctx)) as verification,
            client_for(wallet_app(wallet_ctx)) as wallet,
        ):
            flow = Flow(enrollment, verification, wallet, platform)
            await flow.setup()
            await issuer_record_becomes_a_signed_credential(flow)
            await self_reported_record_is_reviewed_appealed_and_verified(flow, kafka)
            await revoked_credential_has_its_bit_set(flow)
            await sla_breaches_what_is_left_open_and_meets_the_rest(flow, kafka)
    finally:
        for process in processes:
            stop_process(process)
        logs = "".join((tmp_path / f"{n}.log").read_text() for n in ("verification", "sla"))
        assert "Traceback" not in logs, logs[-4000:]


async def issuer_record_becomes_a_signed_credential(flow: Flow) -> None:
    record_id = await flow.issue_learning()
    record = await flow.wallet_record(record_id, "verified")
    credential = record["credential"]
    assert record["credential_type"] == "OpenBadgeCredential"
    assert credential["id"] == f"urn:uuid:{record['credential_id']}"
    assert credential["issuer"]["id"] == DID
    assert credential["credentialSubject"]["achievement"]["alignment"][0]["targetCode"]
    assert credential["proof"]["cryptosuite"] == "eddsa-rdfc-2022"

    owner = await flow.verification.get(
        f"/v1/credentials/{record['credential_id']}", headers=bearer(flow.pete["access_token"])
    )
    assert owner.status_code == 200
    assert owner.json() == credential
    stranger = await flow.verification.get(
        f"/v1/credentials/{record['credential_id']}", headers=bearer(flow.other["access_token"])
    )
    assert stranger.status_code == 404

    verdict = await check(flow, credential)
    assert verdict.verified, verdict.to_dict()


async def check(flow: Flow, credential: dict[str, Any]) -> Any:
    did = (await flow.verification.get("/.well-known/did.json")).json()
    lists = []
    for entry in credential["credentialStatus"]:  # revocation and suspension
        list_id = entry["statusListCredential"].rsplit("/", 1)[1]
        lists.append((await flow.verification.get(f"/v1/status-lists/{list_id}")).json())
    return verify_credential(credential, StaticDidResolver([did]), StaticStatusListFetcher(lists))


async def self_reported_record_is_reviewed_appealed_and_verified(
    flow: Flow, kafka: KafkaSettings
) -> None:
    v = flow.verification
    record_id = await flow.self_report("Assistant Teacher")
    await flow.wallet_record(record_id, "in_review")
    # The queue also holds other tests' records (one broker per session): walk its pages.
    pending_ids: list[str] = []
    for offset in range(0, 100_000, 500):
        page = await v.get(
            f"/v1/reviews?state=pending&limit=500&offset={offset}", headers=flow.reviewer
        )
        items = page.json()["items"]
        pending_ids += [item["record_id"] for item in items]
        if len(items) < 500 or record_id in pending_ids:
            break
    assert record_id in pending_ids

    unknown = await v.post(
        f"/v1/reviews/{uuid.uuid4()}/decision",
        json={"decision": "verified"},
        headers=flow.reviewer,
    )
    assert unknown.status_code == 404
    no_reason = await v.post(
        f"/v1/reviews/{record_id}/decision", json={"decision": "rejected"}, headers=flow.reviewer
    )
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason_code"
    by_person = await v.post(
        f"/v1/reviews/{record_id}/decision",
        json={"decision": "verified"},
        headers=bearer(flow.pete["access_token"]),
    )
    assert by_person.status_code == 401

    rejected = await v.post(
        f"/v1/reviews/{record_id}/decision",
        json={"decision": "rejected", "reason_code": "insufficient_evidence", "note": "No letter"},
        headers=flow.reviewer,
    )
    assert rejected.status_code == 200, rejected.text
    again = await v.post(
        f"/v1/reviews/{record_id}/decision",
        json={"decision": "verified"},
        headers=flow.reviewer,
    )
    assert again.status_code == 409
    record = await flow.wallet_record(record_id, "rejected")
    assert record["rejection"]["reason_code"] == "insufficient_evidence"

    not_owner = await v.post(
        f"/v1/records/{record_id}/appeals",
        json={"statement": "It is mine"},
        headers=bearer(flow.other["access_token"]),
    )
    assert not_owner.status_code == 404
    filed = await v.post(
        f"/v1/records/{record_id}/appeals",
        json={"statement": "Here is the signed offer letter."},
        headers=bearer(flow.pete["access_token"]),
    )
    assert filed.status_code == 201, filed.text
    appeal_id = filed.json()["appeal_id"]
    twice = await v.post(
        f"/v1/records/{record_id}/appeals", json={}, headers=bearer(flow.pete["access_token"])
    )
    assert twice.status_code == 409

    own_decision = await v.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"decision": "upheld", "note": "I was wrong"},
        headers=flow.reviewer,
    )
    assert own_decision.status_code == 403
    upheld = await v.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"decision": "upheld", "note": "The letter confirms the hire."},
        headers=flow.admin,
    )
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["record_state"] == "verified"
    decided_twice = await v.post(
        f"/v1/appeals/{appeal_id}/decision",
        json={"decision": "denied", "note": "again"},
        headers=flow.admin,
    )
    assert decided_twice.status_code == 409

    record = await flow.wallet_record(record_id, "verified")
    assert record["appeal"]["state"] == "upheld"
    assert record["credential_type"] == "EmploymentCredential"
    assert record["credential"]["credentialSubject"]["role"] == "Assistant Teacher"
    assert (await check(flow, record["credential"])).verified

    trail = (await v.get(f"/v1/records/{record_id}/audit", headers=flow.admin)).json()["trail"]
    assert [(t["event_type"], t["actor"].split(":")[0]) for t in trail] == [
        ("RecordQueuedForReview", "system"),
        ("RecordRejected", "reviewer"),
        ("AppealFiled", "person"),
        ("AppealDecided", "admin"),
        ("RecordVerified", "admin"),
    ]
    # Every transition published once, in version order; the refused commands published nothing.
    published = await events_of(kafka, VERIFICATION.name, record_id=record_id)
    assert sorted((e["record_version"], e["event_type"]) for e in published) == [
        (1, "RecordQueuedForReview"),
        (2, "RecordRejected"),
        (3, "AppealFiled"),
        (4, "AppealDecided"),
        (5, "RecordVerified"),
    ]
    assert all(e["organization_id"] is None for e in published)


async def revoked_credential_has_its_bit_set(flow: Flow) -> None:
    v = flow.verification
    record_id = await flow.issue_learning()
    record = await flow.wallet_record(record_id, "verified")
    credential_id = record["credential_id"]
    reason = {"reason": "Issued to the wrong person"}
    by_person = await v.post(
        f"/v1/credentials/{credential_id}/revoke",
        json=reason,
        headers=bearer(flow.pete["access_token"]),
    )
    assert by_person.status_code == 403
    by_other_org = await v.post(
        f"/v1/credentials/{credential_id}/revoke",
        json=reason,
        headers=bearer(flow.other_org["api_key"]),
    )
    assert by_other_org.status_code == 404
    revoked = await v.post(
        f"/v1/credentials/{credential_id}/revoke",
        json=reason,
        headers=bearer(flow.org["api_key"]),
    )
    assert revoked.status_code == 200, revoked.text
    assert (
        await v.post(
            f"/v1/credentials/{credential_id}/revoke",
            json=reason,
            headers=bearer(flow.org["api_key"]),
        )
    ).status_code == 409

    (status,) = [
        e for e in record["credential"]["credentialStatus"] if e["statusPurpose"] == "revocation"
    ]
    list_id = status["statusListCredential"].rsplit("/", 1)[1]
    listed = (await v.get(f"/v1/status-lists/{list_id}")).json()
    bits = StatusList.decode(listed["credentialSubject"]["encodedList"])
    assert bits.size >= 131_072
    assert bits.get(int(status["statusListIndex"]))
    verdict = await check(flow, record["credential"])
    assert not verdict.verified
    assert verdict.check("status").problem.title == "Revoked"
    record = await flow.wallet_record(record_id, "revoked")
    assert record["revocation"]["reason"] == reason["reason"]


async def sla_breaches_what_is_left_open_and_meets_the_rest(
    flow: Flow, kafka: KafkaSettings
) -> None:
    left_open = await flow.self_report("Floater")
    in_time = await flow.self_report("Cook")
    await flow.wallet_record(in_time, "in_review")
    decided = await flow.verification.post(
        f"/v1/reviews/{in_time}/decision", json={"decision": "verified"}, headers=flow.reviewer
    )
    assert decided.status_code == 200

    async def breached() -> list[dict[str, Any]]:
        return await events_of(
            kafka, SLA.name, item_id=f"manual_review:{left_open}", event_type="SlaBreached"
        )

    (breach,) = await wait_until(breached, timeout=REVIEW_SECONDS + 60, interval=1.0)
    assert breach["elapsed_seconds"] >= REVIEW_SECONDS
    assert breach["queue"] == "manual_review"
    assert breach["deadline"] > breach["submitted_at"]
    events = await events_of(kafka, SLA.name, record_id=left_open)
    assert {e["event_type"] for e in events} == {"SlaMet", "SlaWarning", "SlaBreached"}
    # SlaMet above is the auto_verification step (routing); the review item is the one breached.
    assert [e["item_id"] for e in events if e["event_type"] == "SlaMet"] == [
        f"auto_verification:{left_open}"
    ]

    met = await events_of(kafka, SLA.name, record_id=in_time)
    assert {(e["event_type"], e["item_id"]) for e in met} == {
        ("SlaMet", f"auto_verification:{in_time}"),
        ("SlaMet", f"manual_review:{in_time}"),
    }
    review = next(e for e in met if e["item_id"].startswith("manual_review"))
    assert review["within_deadline"] is True
    assert review["elapsed_seconds"] < REVIEW_SECONDS

    dashboard = await flow.verification.get("/v1/sla", headers=flow.reviewer)
    assert dashboard.status_code == 200
    queue = dashboard.json()["queues"]["manual_review"]
    assert queue["open"] >= 1
    assert queue["open_breached"] >= 1
    assert queue["oldest_open_age_seconds"] >= REVIEW_SECONDS
    assert queue["windows"]["24h"]["decided"] >= 2
    assert queue["windows"]["24h"]["p50_seconds"] is not None
    assert (await flow.verification.get("/v1/sla")).status_code == 401

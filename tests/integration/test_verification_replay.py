"""Issue 12, item 5: ``ler replay verification`` rebuilds the verification store into an empty one,
equal row by row to the live store, with ``ler process verification`` as its own process and the
verification API in-process, on a broker of the test's own, SQLite and PostgreSQL.

The stream goes through auto-verification, review decisions (verified, rejected), an appeal of a
rejection upheld (a new credential), a revocation appealed and upheld (a new credential, the
revoked one keeps its bit), a suspension appealed and upheld (lifted), and a suspension left in
force. Compared: persons, organizations, records, credentials (ids, signed documents, status
indices, issuance times), status lists and entries with their purposes, suspensions, appeals,
the audit trail (without its serial id), positions. Not compared, API-owned and restored from a
backup: reviewers and staff reads (the replayed store has none). Nothing is published again.

Failed on main before: ``ler replay`` had no ``verification`` (argparse refused the choice); and
the live store's times (transition, audit, credential issuance, status-list opening) were each
their own clock reading, none of them the published ``occurred_at``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ler.credentials.multikey import generate_key_file
from ler.projection import Dump, dump_tables
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.settings import VerificationSettings
from services.verification.store import VerificationStore
from tests.conftest import Databases
from tests.helpers import (
    ROOT,
    affiliate,
    client_for,
    read_topic,
    start_processor,
    stop_process,
    wait_until,
)
from tests.integration.test_sla_replay import bearer, own_kafka, processor_env

pytestmark = pytest.mark.integration
_ = own_kafka  # the fixture, imported for this test
DID = "did:web:registry.test"
INPUTS = ("ler.enrollment.v1", "ler.records.v1")


def projection(store: VerificationStore) -> list[Any]:
    s = store
    return [
        s.persons,
        s.organizations,
        s.records,
        s.credentials,
        s.status_lists,
        s.status_entries,
        s.list_purposes,
        s.suspensions,
        s.appeals,
        s.audit,
    ]


async def dump(store: VerificationStore) -> Dump:
    return await dump_tables(store.db, projection(store), exclude={store.audit.name: ["id"]})


async def settled(kafka: KafkaSettings, store: VerificationStore) -> bool:
    """Inputs applied to their ends, both outboxes relayed."""
    ends: dict[tuple[str, int], int] = {}
    for topic in INPUTS:
        for record in await read_topic(kafka, topic):
            ends[(topic, record.partition)] = record.offset
    positions = await store.positions()
    if not ends or any(positions.get(tp, -1) < offset for tp, offset in ends.items()):
        return False
    async with store.db.read() as conn:
        pending = 0
        for outbox in (store.outbox, store.api_outbox):
            pending += int(await conn.scalar(select(func.count()).select_from(outbox)) or 0)
    return pending == 0


async def test_verification_replay_equals_the_live_store(
    own_kafka: KafkaSettings,
    platform: PlatformSettings,
    databases: Databases,
    tmp_path: Path,
) -> None:
    kafka = own_kafka
    keys = tmp_path / "keys"
    keys.mkdir()
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    url = databases.new_url()
    env = processor_env(kafka, url, keys, tmp_path)
    settings = VerificationSettings(signing_key_file=keys, did=DID)
    ctx = verification_bootstrap(platform, kafka, settings, database_url=url)
    live = ctx.store
    worker = start_processor("verification", env, tmp_path / "verification.log")
    try:
        states = await _stream(kafka, platform, ctx, tmp_path)
        await wait_until(lambda: settled(kafka, live), timeout=120, interval=0.5)
    finally:
        stop_process(worker)
    published = len(await read_topic(kafka, "ler.verification.v1"))

    rebuilt_url = databases.new_url()
    command = [sys.executable, "-m", "ler.cli", "replay", "verification"]
    done = subprocess.run(  # noqa: ASYNC221 (the command under test; nothing else runs)
        [*command, "--database-url", rebuilt_url],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rebuilt = verification_bootstrap(platform, kafka, settings, database_url=rebuilt_url).store
    try:
        live_rows = await dump(live)
        rebuilt_rows = await dump(rebuilt)
        seen = {row[8] for row in live_rows["verification_records"]}
        print(f"records by state: {states}; tables: { {k: len(v) for k, v in live_rows.items()} }")
        assert seen == {"verified", "rejected", "suspended"}, seen
        assert len(live_rows["verification_appeals"]) == 3
        assert any(row[8] for row in live_rows["verification_credentials"]), "none revoked"
        for name, rows in live_rows.items():
            assert rebuilt_rows[name] == rows, name
        assert await rebuilt.positions() == await live.positions()
        async with rebuilt.db.read() as conn:
            for table in (rebuilt.outbox, rebuilt.api_outbox, rebuilt.reviewers):
                assert await conn.scalar(select(func.count()).select_from(table)) == 0
        assert len(await read_topic(kafka, "ler.verification.v1")) == published
        again = subprocess.run(  # noqa: ASYNC221
            [*command, "--database-url", rebuilt_url],
            env={**os.environ, **env},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode != 0, "replayed into a full store"
        assert "empty" in again.stderr, again.stderr
    finally:
        await live.close()
        await rebuilt.close()


async def _stream(
    kafka: KafkaSettings, platform: PlatformSettings, ctx: Any, tmp_path: Path
) -> dict[str, int]:
    """An issuer's records (automatic) and self-reported ones (review), then every API decision."""
    assert platform.admin_token is not None
    admin = bearer(platform.admin_token.get_secret_value())
    enrollment_ctx = enrollment_bootstrap(
        platform,
        kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    store: VerificationStore = ctx.store
    async with (
        client_for(enrollment_app(enrollment_ctx)) as enrollment,
        client_for(verification_app(ctx)) as verification,
    ):
        org = (
            await enrollment.post(
                "/v1/organizations", json={"name": "Sunrise", "kind": "employer"}, headers=admin
            )
        ).json()
        body = {"given_name": "Rae", "family_name": "Play", "email": "rae.play@example.org"}
        person = (
            await enrollment.post(
                "/v1/persons", json=body | {"birth_date": "1990-01-01"}, headers=admin
            )
        ).json()
        own = bearer(person["access_token"])
        await affiliate(enrollment, admin, person["person_id"], org["organization_id"])
        stranger = (
            await enrollment.post(
                "/v1/organizations", json={"name": "Elsewhere", "kind": "employer"}, headers=admin
            )
        ).json()
        reviews = []
        for n in range(3):
            response = await enrollment.post(
                f"/v1/persons/{person['person_id']}/records",
                json={"type": "learning", "title": f"Course {n}", "completed_on": "2025-01-10"},
                headers=own,
            )
            assert response.status_code == 202, response.text
            reviews += response.json()["record_ids"]
        issued = await enrollment.post(
            "/v1/records",
            json={
                "records": [
                    {
                        "person_id": person["person_id"],
                        "type": "learning",
                        "title": f"Module {n}",
                        "completed_on": "2025-02-01",
                    }
                    for n in range(3)
                ]
            },
            headers=bearer(org["api_key"]),
        )
        assert issued.status_code == 202, issued.text
        autos = issued.json()["record_ids"]
        unasked = await enrollment.post(  # not affiliated: it waits for review
            "/v1/records",
            json={
                "records": [
                    {
                        "person_id": person["person_id"],
                        "type": "learning",
                        "title": "Unasked",
                        "completed_on": "2025-03-01",
                    }
                ]
            },
            headers=bearer(stranger["api_key"]),
        )
        assert unasked.status_code == 202, unasked.text
        (declined,) = unasked.json()["record_ids"]
        reviewer = (
            await verification.post("/v1/reviewers", json={"name": "Rev"}, headers=admin)
        ).json()
        staff = bearer(reviewer["access_token"])

        async def state(record_id: str) -> dict[str, Any] | None:
            return await store.record(record_id)

        async def post(path: str, json: dict[str, Any], headers: dict[str, str]) -> Any:
            response: httpx.Response = await verification.post(path, json=json, headers=headers)
            assert response.status_code in (200, 201), (path, response.text)
            return response.json()

        for record_id in autos:
            await wait_until(
                lambda r=record_id: _in(state(r), "verified"), timeout=60, interval=0.2
            )
        for record_id in [*reviews, declined]:
            await wait_until(lambda r=record_id: _in(state(r), "pending"), timeout=60, interval=0.2)
        await post(f"/v1/records/{declined}/decline", {}, own)
        decision = "/v1/reviews/{}/decision"
        await post(decision.format(reviews[0]), {"decision": "verified"}, staff)
        for record_id in reviews[1:]:
            rejected = {"decision": "rejected", "reason_code": "insufficient_evidence"}
            await post(decision.format(record_id), rejected, staff)
        appeal = await post(f"/v1/records/{reviews[1]}/appeals", {"statement": "see file"}, own)
        await post(f"/v1/appeals/{appeal['appeal_id']}/decision", _upheld, admin)

        credential = (await state(autos[0]) or {})["credential_id"]
        await post(f"/v1/credentials/{credential}/revoke", {"reason": "issued in error"}, admin)
        appeal = await post(f"/v1/records/{autos[0]}/appeals", {}, own)
        await post(f"/v1/appeals/{appeal['appeal_id']}/decision", _upheld, admin)

        hold = {"reason_code": "under_investigation", "note": "checking"}
        credential = (await state(autos[1]) or {})["credential_id"]
        await post(f"/v1/credentials/{credential}/suspend", hold, staff)
        appeal = await post(f"/v1/records/{autos[1]}/appeals", {"statement": "mine"}, own)
        await post(f"/v1/appeals/{appeal['appeal_id']}/decision", _upheld, admin)
        credential = (await state(autos[2]) or {})["credential_id"]
        await post(f"/v1/credentials/{credential}/suspend", hold, staff)
        await wait_until(lambda: settled(kafka, store), timeout=60, interval=0.3)
        counts: dict[str, int] = {}
        for record_id in [*reviews, *autos, declined]:
            found = await state(record_id) or {}
            counts[found["state"]] = counts.get(found["state"], 0) + 1
    return counts


_upheld = {"decision": "upheld", "note": "on review"}


async def _in(found: Any, wanted: str) -> bool:
    row = await found
    return row is not None and row["state"] == wanted

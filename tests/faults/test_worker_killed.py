"""kill -9 the wallet projector in the middle of a 20,000-event stream, restart it, and compare."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

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
from tests.helpers import start_processor, stop_process, wait_until

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

EVENTS = 20_000
BATCH = 1_000


async def test_wallet_worker_killed_mid_stream_resumes_without_loss_or_double_apply(
    fault_kafka: KafkaSettings,
    intake: Intake,
    databases: Databases,
    tmp_path: Path,
    say: Say,
) -> None:
    url = databases.new_url()
    env = worker_env(fault_kafka, url, tmp_path)
    await intake.setup(persons=40)
    worker = start_processor("wallet", env, tmp_path / "worker.log")
    store = SqlWalletStore(url)
    try:
        await store.open()

        async def produce() -> None:
            for _ in range(EVENTS // BATCH):
                await intake.submit(BATCH)
                await asyncio.sleep(0.05)

        producing = asyncio.create_task(produce())
        killed_at = await wait_until(
            lambda: _at_least(store, EVENTS // 4), timeout=120, interval=0.05
        )
        stop_process(worker, signal.SIGKILL)
        say(f"kill -9 the wallet worker with {killed_at} of {EVENTS} records projected")
        await producing
        frozen = await count_rows(store)
        restarted = time.monotonic()
        worker = start_processor("wallet", env, tmp_path / "worker.log")
        await wait_until(lambda: _equals(store, EVENTS), timeout=150, interval=0.2)
        say(
            f"restarted it ({frozen} projected at restart); all {EVENTS} accepted records "
            f"projected {time.monotonic() - restarted:.1f} s later"
        )
        assert sorted(await record_ids(store)) == sorted(intake.accepted)
        assert len(intake.accepted) == EVENTS
        await replay_equals_live(store, fault_kafka, databases.new_url(), say)
    finally:
        stop_process(worker)
        await store.close()


async def _at_least(store: SqlWalletStore, n: int) -> int | None:
    count = await count_rows(store)
    return count if count >= n else None


async def _equals(store: SqlWalletStore, n: int) -> bool:
    return await count_rows(store) == n

"""Test helpers that talk to the real broker and the real services."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from ler.kafka import client_options
from ler.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]


async def read_topic(kafka: KafkaSettings, topic: str, *, timeout: float = 10.0) -> list[Any]:
    """Every record on a topic, read from the start to the fetch high-water mark."""
    consumer = AIOKafkaConsumer(**client_options(kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = None
        for _ in range(50):
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            await consumer._client.force_metadata_update()
        assert partitions, f"no topic {topic}"
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        pending = set(tps)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out += records
            for tp in list(pending):
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    pending.discard(tp)
        assert not pending, f"could not read {topic} to its end"
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        await consumer.stop()


async def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Await ``predicate()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met after {timeout} s (last: {last!r})")


@contextlib.asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client wired to the app in-process, with its lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def start_processor(name: str, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``ler process <name>`` as its own process, the way ``make run`` starts it."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ler.cli", "process", name],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], sig: int = 15, timeout: float = 20) -> int:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        return process.wait()


async def affiliate(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    person_id: str,
    organization_id: str,
    *,
    base: str = "",
) -> None:
    """The registry admin affiliates the organization with the person: only then do its records
    about the person verify automatically (docs/verification.md, "Affiliations")."""
    response = await client.post(
        f"{base}/v1/persons/{person_id}/affiliations",
        json={"organization_id": organization_id},
        headers=admin,
    )
    assert response.status_code in (200, 201), response.text

"""Webhook deliveries per second: the dispatcher, 50 subscriptions, a local receiver.

Deliveries are queued the way the notifications processor queues them (fan-out into the
deliveries table), then the dispatcher signs and POSTs them to a receiver on 127.0.0.1 running in
its own process, and records each outcome. Measured from the first claim to the last recorded
outcome. ``python -m bench.webhooks`` runs it alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from services.notifications.domain import WebhookEvent, new_webhook_secret
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationsRepo, fan_out
from services.notifications.webhooks import WebhookDispatcher

SUBSCRIPTIONS = 50
EVENTS = 200  # per subscription: 10,000 deliveries
RECEIVER = """
import sys
from aiohttp import web

async def hook(request):
    await request.read()
    return web.Response(status=204)

app = web.Application()
app.router.add_post("/hook/{n}", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_for(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def measure(url: str, port: int) -> dict[str, Any]:
    settings = NotificationsSettings(
        webhook_concurrency=256,
        webhook_concurrency_per_subscription=8,
        poll_interval_ms=50,
        webhook_allow_private_urls=True,  # the receiver is on this machine
    )
    repo = NotificationsRepo.at(url)
    await repo.open()
    organization = str(uuid.uuid4())
    for n in range(SUBSCRIPTIONS):
        await repo.add_subscription(
            organization,
            f"http://127.0.0.1:{port}/hook/{n}",
            ["record.verified"],
            new_webhook_secret(),
        )
    events = [
        WebhookEvent(
            event_id=str(uuid.uuid4()),
            organization_id=organization,
            event_type="record.verified",
            occurred_at="2026-01-01T00:00:00+00:00",
            data={"record_id": str(uuid.uuid4()), "person_id": str(uuid.uuid4())},
        )
        for _ in range(EVENTS)
    ]
    async with repo.db.transaction() as conn:
        queued = await fan_out(repo.db, repo.t, conn, events)
    dispatcher = WebhookDispatcher(repo, settings)
    started = time.perf_counter()
    task = asyncio.create_task(dispatcher.run())
    try:
        while dispatcher.delivered + dispatcher.failed < queued:
            await asyncio.sleep(0.05)
            if time.perf_counter() - started > 300:
                break
        dispatcher.stop()
        await task
        elapsed = time.perf_counter() - started
        counts = await repo.delivery_counts()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await repo.close()
    return {
        "subscriptions": SUBSCRIPTIONS,
        "deliveries": queued,
        "delivered": counts.get("delivered", 0),
        "seconds": round(elapsed, 2),
        "deliveries_per_s": round(counts.get("delivered", 0) / elapsed),
    }


async def run(results: dict[str, Any]) -> None:
    """Add ``webhooks`` figures to ``results`` (SQLite, the embedded default)."""
    port = _free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])  # noqa: ASYNC220
    try:
        await _wait_for(port)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'notifications.db'}"
            figures = await measure(url, port)
        results["webhooks"] = figures
        print(
            f"webhooks: {figures['delivered']} deliveries to {SUBSCRIPTIONS} subscriptions in "
            f"{figures['seconds']} s = {figures['deliveries_per_s']}/s (target >= 1,000/s)",
            flush=True,
        )
    finally:
        receiver.terminate()
        receiver.wait(10)


if __name__ == "__main__":
    out: dict[str, Any] = {}
    asyncio.run(run(out))

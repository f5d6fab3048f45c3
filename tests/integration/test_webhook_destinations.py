"""Webhooks reach only public addresses: the address a name resolves to is checked when the
delivery is sent, the connection goes to the checked address, redirects are not followed, and
private destinations are allowed only outside production by an explicit setting."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from ler.settings import KafkaSettings, PlatformSettings, SettingsError
from services.notifications.bootstrap import bootstrap
from services.notifications.domain import WebhookEvent, new_webhook_secret, url_problem
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationsRepo, fan_out
from services.notifications.webhooks import WebhookDispatcher
from tests.helpers import wait_until

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    port: int = 0
    hits: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path == "/redirect":
            raise web.HTTPFound("/internal")
        return web.Response(text="ok")


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    recv = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recv.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    recv.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield recv
    finally:
        await runner.cleanup()


def loopback_names() -> list[str]:
    """``localhost`` and the other names this machine resolves to a loopback address (its own
    host name, names in /etc/hosts): the first is refused by name when subscribing, the others
    are names like any public one until they are resolved."""
    names = ["localhost"]
    candidates = {socket.gethostname()}
    with contextlib.suppress(OSError):
        for line in Path("/etc/hosts").read_text().splitlines():
            candidates.update(line.split("#", 1)[0].split()[1:])
    for name in sorted(candidates - {"localhost"}):
        with contextlib.suppress(OSError):
            if socket.gethostbyname(name).startswith("127.") and "localhost" not in name:
                names.append(name)
    return names


async def deliver(tmp: Path, urls: list[str], settings: NotificationsSettings) -> list[Any]:
    """Queue one delivery per URL, run the real dispatcher until each has its outcome."""
    repo = NotificationsRepo.at(f"sqlite+aiosqlite:///{tmp / f'{uuid.uuid4().hex}.db'}")
    await repo.open()
    try:
        organization = str(uuid.uuid4())
        for url in urls:
            await repo.add_subscription(
                organization, url, ["record.verified"], new_webhook_secret()
            )
        event = WebhookEvent(
            event_id=str(uuid.uuid4()),
            organization_id=organization,
            event_type="record.verified",
            occurred_at="2026-01-01T00:00:00+00:00",
            data={"record_id": str(uuid.uuid4())},
        )
        async with repo.db.transaction() as conn:
            queued = await fan_out(repo.db, repo.t, conn, [event])
        assert queued == len(urls)
        dispatcher = WebhookDispatcher(repo, settings)
        task = asyncio.create_task(dispatcher.run())

        async def outcomes() -> bool:
            return dispatcher.delivered + dispatcher.failed >= queued

        await wait_until(outcomes, timeout=30, interval=0.02)
        dispatcher.stop()
        await task
        d, s = repo.t.deliveries, repo.t.subscriptions
        async with repo.db.read() as conn:
            query = select(s.c.url, d.c.state, d.c.last_status, d.c.last_error).join(
                s, s.c.subscription_id == d.c.subscription_id
            )
            return list((await conn.execute(query)).all())
    finally:
        await repo.close()


def once(*, allow_private: bool = False) -> NotificationsSettings:
    """One attempt per delivery, polled often."""
    return NotificationsSettings(
        webhook_max_attempts=1,
        poll_interval_ms=20,
        webhook_timeout_seconds=5,
        webhook_allow_private_urls=allow_private,
    )


async def test_names_resolving_to_this_machine_are_accepted_but_never_reached(
    tmp_path: Path,
) -> None:
    async with receiver() as recv:
        urls = [f"http://{name}:{recv.port}/hook" for name in loopback_names()]
        urls.append(f"http://127.0.0.1:{recv.port}/literal")  # stored before a policy change
        assert len(urls) > 2, "no name other than localhost resolves to this machine"
        for url in urls[1:-1]:  # names: accepted when subscribing, checked on delivery
            assert url_problem(url, allow_private=False) is None
        rows = await deliver(tmp_path, urls, once())
    assert recv.hits == [], f"a private destination was reached: {recv.hits}"
    assert len(rows) == len(urls)
    for row in rows:
        assert row.state == "dead", row
        assert row.last_status is None, row  # nothing about the destination is reported back
        assert "not a public address" in (row.last_error or ""), row


async def test_private_destinations_only_by_explicit_setting_and_no_redirects(
    tmp_path: Path,
) -> None:
    allowed = once(allow_private=True)
    async with receiver() as recv:
        urls = [f"http://localhost:{recv.port}/hook", f"http://127.0.0.1:{recv.port}/redirect"]
        rows = await deliver(tmp_path, urls, allowed)
    by_url = {row.url: row for row in rows}
    assert by_url[urls[0]].state == "delivered", by_url[urls[0]]
    assert by_url[urls[1]].state == "dead"
    assert by_url[urls[1]].last_status == 302
    assert sorted(recv.hits) == ["/hook", "/redirect"]  # /internal never asked for


def test_production_refuses_the_private_destinations_setting(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> None:
    production = platform.model_copy(update={"env": "production"})
    with pytest.raises(SettingsError, match="NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_URLS"):
        bootstrap(
            production,
            kafka,
            NotificationsSettings(webhook_allow_private_urls=True, smtp_host="mail.example.org"),
            database_url="postgresql+asyncpg://db.example.org/notifications",
        )
    # Without the setting nothing private is allowed, whatever the mode.
    assert NotificationsSettings().webhook_allow_private_urls is False

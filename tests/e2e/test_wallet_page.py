"""The wallet page in a real browser (Debian's Chromium driven by Playwright): Pete opens his
wallet with his token, sees his records with verification badges and his skills, picks a role and
sees matched and missing skills, creates a share and sees its QR code. A screenshot is saved under
``tests/artifacts/``."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from ler.settings import KafkaSettings, PlatformSettings
from services.wallet.api import create_app
from services.wallet.bootstrap import bootstrap
from services.wallet.settings import WalletSettings
from services.wallet.store import SqlWalletStore
from tests.integration.wallet_world import PeteWorld, build_world, project, registry_documents

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(
    kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> AsyncIterator[tuple[str, PeteWorld]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with registry_documents() as registry:
        world, messages = build_world(tmp_path / "keys", registry)
        settings = WalletSettings(
            public_url=base, verification_url=registry.url, verification_public_url=registry.url
        )
        ctx = bootstrap(
            platform, kafka, settings, database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
        )
        assert isinstance(ctx.store, SqlWalletStore)
        await project(ctx.store, messages)
        await ctx.store.close()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(ctx), host="127.0.0.1", port=port, log_level="warning", access_log=False
            )
        )
        task = asyncio.create_task(server.serve())
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        try:
            yield base, world
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)


async def test_pete_picks_a_role_and_sees_matched_and_missing_skills(
    served: tuple[str, PeteWorld],
) -> None:
    from playwright.async_api import async_playwright

    assert shutil.which(CHROMIUM), "Debian's chromium is needed: apt-get install -y chromium"
    base, world = served
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 1100})
            await page.goto(f"{base}/wallet")
            # The token is typed in, through its label (keyboard only).
            await page.get_by_label("Your access token").fill(world.pete_token)
            await page.get_by_label("Your access token").press("Enter")
            await page.get_by_text("Signed in as Pete Tester.").wait_for()
            assert "token" not in page.url

            records = page.locator("#records tr")
            assert await records.count() == 5
            row = records.filter(has_text="Child Development Associate")
            assert await row.locator(".badge").inner_text() == "Verified"
            row = records.filter(has_text="Pediatric First Aid/CPR")
            assert await row.locator(".badge").inner_text() == "In review"
            row = records.filter(has_text="Food Handler Card")
            assert await row.locator(".badge").inner_text() == "Revoked"
            assert await page.locator("#skills li").count() > 5

            await page.get_by_label("Role", exact=True).select_option("childcare-worker")
            matched = page.locator("[data-group=matched] li")
            await matched.first.wait_for()
            matched_names = await matched.all_inner_texts()
            missing_names = await page.locator("[data-group=missing] li").all_inner_texts()
            unverified = await page.locator("[data-group=unverified] li").all_inner_texts()
            assert len(matched_names) == 7, matched_names
            assert len(missing_names) == 1
            assert "Infant" in missing_names[0]
            assert len(unverified) == 4
            assert await page.locator(".score").inner_text() == "56%"

            # Share two verified records and see the QR code.
            await page.get_by_label("Share Child Development Associate").check()
            await page.get_by_label("Share Child Care Worker").check()
            await page.get_by_label("Who is this for?").fill("Company B")
            await page.get_by_role("button", name="Create share link and QR code").click()
            qr = page.get_by_alt_text("QR code of the share link for Company B")
            await qr.wait_for()
            for _ in range(50):
                if await qr.evaluate("img => img.complete && img.naturalWidth > 0"):
                    break
                await asyncio.sleep(0.1)
            assert await qr.evaluate("img => img.naturalWidth") > 100
            await page.locator("#shares tr").filter(has_text="Company B").wait_for()
            await page.screenshot(path=str(ARTIFACTS / "wallet_page.png"), full_page=True)
        finally:
            await browser.close()
    assert (ARTIFACTS / "wallet_page.png").stat().st_size > 10_000

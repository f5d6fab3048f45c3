"""The ops dashboard in a real browser (Debian's Chromium driven by Playwright) while events flow
through the platform started the way `make run` starts it; saves the screenshot the README shows."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Request, sync_playwright

from ler.broker import free_port
from tests.e2e.test_platform import Platform
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = ROOT / "tests" / "artifacts" / "ops-dashboard.png"
OPS_TOKEN = f"ler_ops_{uuid.uuid4().hex}"
REVIEW_SECONDS = 3
PROCESSORS = ("wallet", "verification", "sla", "notifications", "partner-feed")


@pytest.fixture
def platform_run(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path / "var")
    running.data.mkdir()
    # Every port of this run is free (another run may hold the defaults), a short review SLA
    # so that breaches appear, and the dashboard's read-only token.
    extra = {
        "NOTIFICATIONS_PROCESSOR_HEALTH_PORT": free_port(),
        "NOTIFICATIONS_PARTNER_FEED_HEALTH_PORT": free_port(),
    }
    running.env.update({k: str(v) for k, v in extra.items()})
    running.env.update(
        {
            "VERIFICATION_SLA_REVIEW_SECONDS": str(REVIEW_SECONDS),
            "VERIFICATION_SLA_TICK_SECONDS": "0.5",
            "VERIFICATION_SLA_LATENESS_SECONDS": "1",
            "VERIFICATION_OPS_TOKEN": OPS_TOKEN,
            "VERIFICATION_OPS_REFRESH_SECONDS": "1",
        }
    )
    running.start()
    try:
        yield running
    finally:
        if running.process and running.process.poll() is None:
            running.process.send_signal(signal.SIGINT)
            try:
                running.process.wait(30)
            except Exception:
                running.process.kill()
                running.process.wait()
        for pid in running.descendants_alive():
            os.kill(pid, signal.SIGKILL)


def send_records(p: Platform) -> dict[str, Any]:
    """An employer's batch (verified automatically) and self-reported records (to review, where
    one is decided at once and the others stay open past the review SLA)."""
    admin = {"Authorization": f"Bearer {p.admin_token}"}
    with httpx.Client(timeout=30, trust_env=False) as http:
        enrollment, verification = p.url("enrollment"), p.url("verification")
        org = http.post(
            f"{enrollment}/v1/organizations",
            json={"name": "Sunrise Child Care", "kind": "employer"},
            headers=admin,
        ).json()
        person: dict[str, Any] = http.post(
            f"{enrollment}/v1/persons",
            json={
                "given_name": "Dana",
                "family_name": "Dashboard",
                "email": "dana.dashboard@example.org",
                "birth_date": "1991-04-12",
            },
            headers=admin,
        ).json()
        owner = {"Authorization": f"Bearer {person['access_token']}"}
        # Only an organization affiliated with the person has its records verified automatically.
        affiliated = http.post(
            f"{enrollment}/v1/persons/{person['person_id']}/affiliations",
            json={"organization_id": org["organization_id"]},
            headers=admin,
        )
        assert affiliated.status_code == 201, affiliated.text
        for n in range(5):
            response = http.post(
                f"{enrollment}/v1/persons/{person['person_id']}/records",
                json={"type": "learning", "title": f"Workshop {n}", "completed_on": "2025-02-01"},
                headers=owner,
            )
            assert response.status_code == 202, response.text
        batch = [
            {
                "person_id": person["person_id"],
                "type": "employment",
                "title": f"Assistant Teacher {n}",
                "action": "hired",
                "start_date": "2024-09-01",
                "soc_code": "25-2011",
            }
            for n in range(40)
        ]
        response = http.post(
            f"{enrollment}/v1/records",
            json={"records": batch},
            headers={
                "Authorization": f"Bearer {org['api_key']}",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert response.status_code == 202, response.text
        reviewer = http.post(
            f"{verification}/v1/reviewers", json={"name": "Riley"}, headers=admin
        ).json()
        staff = {"Authorization": f"Bearer {reviewer['access_token']}"}
        deadline = time.monotonic() + 90
        pending: list[dict[str, Any]] = []
        while not pending and time.monotonic() < deadline:
            pending = http.get(f"{verification}/v1/reviews", headers=staff).json()["items"]
            time.sleep(0.2)
        assert pending, "no record reached the review queue"
        decided = http.post(
            f"{verification}/v1/reviews/{pending[0]['record_id']}/decision",
            json={"decision": "verified"},
            headers=staff,
        )
        assert decided.status_code == 200, decided.text
    return person


def test_ops_dashboard_shows_backlog_breaches_and_lag_live(platform_run: Platform) -> None:
    p = platform_run
    assert "/ops" in p.output()
    person = send_records(p)
    errors: list[str] = []
    requests: list[Request] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 900})
            page.on("console", lambda m: _console_error(m, errors))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r))
            page.goto(f"{p.url('verification')}/ops")
            # Keyboard only: skip link, then the token field; Enter connects.
            page.keyboard.press("Tab")
            page.keyboard.press("Tab")
            assert page.evaluate("() => document.activeElement.id") == "token"
            page.keyboard.type(OPS_TOKEN)
            page.keyboard.press("Enter")
            page.get_by_label("Period").select_option("1h")

            backlog = '[data-queue="manual_review"] [data-field="backlog"]'
            page.wait_for_function(
                f"() => Number(document.querySelector('{backlog}')?.textContent) > 0",
                timeout=90_000,
            )
            page.wait_for_function(
                "() => document.querySelectorAll('#chart rect.bar[data-queue=\"manual_review\"]')"
                ".length > 0",
                timeout=90_000,
            )
            page.wait_for_function(
                f"() => document.querySelectorAll('#lag tbody.proc').length === {len(PROCESSORS)}"
                " && document.querySelectorAll('#lag .badge.over').length === 0"
                " && document.querySelectorAll('#lag tr.lag-row').length >= 8",
                timeout=60_000,
            )
            # Let the verifier finish the employer's batch so the picture settles.
            page.wait_for_function(
                "() => document.getElementById('total-lag')?.textContent === '0'"
                ' && Number(document.querySelector(\'[data-queue="auto_verification"] '
                '[data-field="backlog"]\')?.textContent) === 0',
                timeout=120_000,
            )
            page.wait_for_timeout(1500)

            shown = {
                n: page.locator(f'#lag tbody.proc[data-processor="{n}"]').count()
                for n in PROCESSORS
            }
            assert shown == dict.fromkeys(PROCESSORS, 1)
            assert int(page.locator(backlog).inner_text()) >= 3
            assert page.locator("#chart svg").get_attribute("role") == "img"
            assert int(page.locator("#chart svg").get_attribute("data-total") or 0) >= 3
            assert "Breaches per minute" in page.locator("#chart-caption").inner_text()
            assert "Updated" in page.locator("#status").inner_text()
            text = page.locator("body").inner_text()
            for personal in ("Dana", "dana.dashboard@example.org", "1991-04-12"):
                assert personal not in text
            assert person["person_id"] not in text
            # The token travels in a header only: never in a URL, kept in this tab's storage.
            assert all(OPS_TOKEN not in r.url for r in requests)
            summaries = [r for r in requests if "/v1/ops/summary" in r.url]
            assert summaries
            assert summaries[-1].headers["authorization"] == f"Bearer {OPS_TOKEN}"
            assert page.evaluate("() => sessionStorage.getItem('ler.ops.token')") == OPS_TOKEN
            assert all(r.url.startswith(p.url("verification")) for r in requests)

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert errors == []
    log_text = "".join(f.read_text(errors="replace") for f in (p.data / "log").glob("*.log"))
    assert OPS_TOKEN not in log_text


def _console_error(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(message.text)

"""The whole platform started the way `make run` starts it (`ler run`), driven over HTTP."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ler.broker import free_port
from services.wallet.store import SqlWalletStore
from tests.helpers import ROOT

pytestmark = pytest.mark.e2e


class Platform:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.ports = {
            name: free_port()
            for name in (
                "enrollment",
                "verification",
                "wallet",
                "notifications",
                "processor",
                "verifier",
                "sla",
                "kafka",
            )
        }
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
            "LER_DATA_DIR": str(data),
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.ports['kafka']}",
            "ENROLLMENT_PORT": str(self.ports["enrollment"]),
            "VERIFICATION_PORT": str(self.ports["verification"]),
            "WALLET_PORT": str(self.ports["wallet"]),
            "NOTIFICATIONS_PORT": str(self.ports["notifications"]),
            "WALLET_PROCESSOR_HEALTH_PORT": str(self.ports["processor"]),
            "VERIFICATION_PROCESSOR_HEALTH_PORT": str(self.ports["verifier"]),
            "VERIFICATION_SLA_PROCESSOR_HEALTH_PORT": str(self.ports["sla"]),
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("LER_ADMIN_TOKEN", None)
        self.log = data / "run.out"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ler.cli", "run"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        deadline = time.monotonic() + 120
        while "The LER platform is up" not in self.output():
            assert self.process.poll() is None, f"ler run exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"ler run not up after 120 s:\n{self.output()}"
            time.sleep(0.3)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def admin_token(self) -> str:
        return (self.data / "admin-token").read_text().strip()

    def descendants_alive(self) -> list[int]:
        """Processes (other than this test) whose environment points at this platform's data dir."""
        marker = f"LER_DATA_DIR={self.data}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found


@pytest.fixture
def platform_run(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path / "var")
    running.data.mkdir()
    running.start()
    try:
        yield running
    finally:
        if running.process and running.process.poll() is None:
            running.process.kill()
            running.process.wait()
        for pid in running.descendants_alive():
            os.kill(pid, signal.SIGKILL)


def test_make_run_serves_a_batch_into_the_wallet_and_stops_cleanly(platform_run: Platform) -> None:
    p = platform_run
    out = p.output()
    assert "starting with clean stores" in out
    assert f"{p.url('enrollment')}/docs" in out
    assert "generated the admin token" in out
    admin = {"Authorization": f"Bearer {p.admin_token}"}
    with httpx.Client(timeout=30) as http:
        for service in ("enrollment", "verification", "wallet", "notifications"):
            assert http.get(f"{p.url(service)}/healthz").json() == {"status": "ok"}
            assert http.get(f"{p.url(service)}/openapi.json").status_code == 200
        assert http.get(f"http://127.0.0.1:{p.ports['processor']}/readyz").status_code == 200
        org = http.post(
            f"{p.url('enrollment')}/v1/organizations",
            json={"name": "Company A", "kind": "employer"},
            headers=admin,
        ).json()
        pete = http.post(
            f"{p.url('enrollment')}/v1/persons",
            json={
                "given_name": "Pete",
                "family_name": "Learner",
                "email": "pete@example.org",
                "birth_date": "1995-05-05",
            },
            headers=admin,
        ).json()
        # Only an organization affiliated with the person has its records verified automatically.
        affiliated = http.post(
            f"{p.url('enrollment')}/v1/persons/{pete['person_id']}/affiliations",
            json={"organization_id": org["organization_id"]},
            headers=admin,
        )
        assert affiliated.status_code == 201, affiliated.text
        kinds: list[dict[str, Any]] = [
            {
                "type": "employment",
                "title": "Warehouse Associate",
                "action": "hired",
                "start_date": "2021-03-01",
                "soc_code": "53-7065",
            },
            {
                "type": "learning",
                "title": "Forklift Safety",
                "completed_on": "2022-02-10",
                "hours": 8,
            },
            {
                "type": "credential",
                "title": "OSHA 10",
                "issued_on": "2022-06-01",
                "credential_type": "OSHA 10",
            },
        ]
        batch = [
            {
                **kinds[i % 3],
                "person_id": pete["person_id"],
                "title": f"{kinds[i % 3]['title']} #{i}",
            }
            for i in range(300)
        ]
        accepted = http.post(
            f"{p.url('enrollment')}/v1/records",
            json={"records": batch},
            headers={
                "Authorization": f"Bearer {org['api_key']}",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        assert accepted.status_code == 202
        record_ids = accepted.json()["record_ids"]

        wallet_url = f"{p.url('wallet')}/v1/wallets/{pete['person_id']}"
        owner = {"Authorization": f"Bearer {pete['access_token']}"}
        # An employer's records are verified automatically: wait until each is a credential
        # (the verifier is still publishing until then, and the replay below needs a still log).
        deadline = time.monotonic() + 120
        while True:
            wallet = http.get(wallet_url, headers=owner).json()
            records = wallet.get("records", [])
            verified = [r for r in records if r["status"] == "verified"]
            if len(verified) == 300 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert sorted(r["record_id"] for r in wallet["records"]) == sorted(record_ids)
        assert all(r["status"] == "verified" and r["credential"]["proof"] for r in records)
        assert {r["title"] for r in wallet["records"]} == {b["title"] for b in batch}
        assert (
            http.get(wallet_url, headers={"Authorization": f"Bearer {org['api_key']}"}).status_code
            == 401
        )

    # `ler replay wallet` rebuilds the projection into an empty store; it equals the live one.
    replay_url = f"sqlite+aiosqlite:///{p.data / 'replayed.db'}"
    replay = subprocess.run(
        [sys.executable, "-m", "ler.cli", "replay", "wallet", "--database-url", replay_url],
        env=p.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert "replayed" in replay.stdout
    live, rebuilt = asyncio.run(_dumps(f"sqlite+aiosqlite:///{p.data / 'wallet.db'}", replay_url))
    assert live == rebuilt
    assert len(live["wallet_records"]) == 300

    # Ctrl-C stops every process it started within 20 s and leaves no orphan.
    assert p.process is not None
    started = time.monotonic()
    p.process.send_signal(signal.SIGINT)
    p.process.wait(30)
    assert time.monotonic() - started < 20
    assert "stopped." in p.output()
    time.sleep(0.5)
    assert p.descendants_alive() == []
    log_text = "".join(f.read_text(errors="replace") for f in (p.data / "log").glob("*.log"))
    assert "pete@example.org" not in log_text
    assert pete["access_token"] not in log_text


async def _dumps(live_url: str, replay_url: str) -> tuple[Any, Any]:
    live, rebuilt = SqlWalletStore(live_url), SqlWalletStore(replay_url)
    try:
        return await live.dump(), await rebuilt.dump()
    finally:
        await live.close()
        await rebuilt.close()

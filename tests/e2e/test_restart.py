"""`make run`, Ctrl-C, `make run` again: on Apache Kafka everything is still there.

The broker's log lives under the data folder and the stores are kept, so organizations, wallets,
credentials, shares and subscriptions survive a restart, processors resume from their stored
positions (nothing applied twice), and new records flow. (On Tansu, memory only, `ler run` starts
clean every time and says so; see ler/launcher.py:prepare_stores.)
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.conftest import BROKER_KIND
from tests.e2e.test_platform import Platform

pytestmark = pytest.mark.e2e


def stop(p: Platform) -> None:
    assert p.process is not None
    p.process.send_signal(signal.SIGINT)
    p.process.wait(40)
    assert "stopped." in p.output()
    deadline = time.monotonic() + 10
    while p.descendants_alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p.descendants_alive() == []


def wait_verified(http: httpx.Client, url: str, owner: dict[str, str], n: int) -> list[Any]:
    deadline = time.monotonic() + 120
    while True:
        records = http.get(url, headers=owner).json().get("records", [])
        if sum(r["status"] == "verified" for r in records) >= n or time.monotonic() > deadline:
            return list(records)
        time.sleep(0.3)


def submit(http: httpx.Client, p: Platform, key: str, person: str, n: int, tag: str) -> list[str]:
    batch = [
        {
            "person_id": person,
            "type": "learning",
            "title": f"{tag} module {i}",
            "completed_on": "2024-03-04",
            "hours": 2,
        }
        for i in range(n)
    ]
    response = http.post(
        f"{p.url('enrollment')}/v1/records",
        json={"records": batch},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return list(response.json()["record_ids"])


@pytest.mark.skipif(BROKER_KIND != "kafka", reason="Tansu keeps nothing across a restart")
def test_make_run_twice_keeps_everything_on_apache_kafka(tmp_path: Any) -> None:
    p = Platform(tmp_path / "var")
    p.data.mkdir()
    p.env["NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_URLS"] = "true"
    p.start()
    try:
        assert "Apache Kafka" in p.output()
        assert f"{p.url('wallet')}/wallet" in p.output()
        admin = {"Authorization": f"Bearer {p.admin_token}"}
        with httpx.Client(timeout=30) as http:
            enrollment = p.url("enrollment")
            org = http.post(
                f"{enrollment}/v1/organizations",
                json={"name": "Riverbend Learning", "kind": "training_provider"},
                headers=admin,
            ).json()
            person = http.post(
                f"{enrollment}/v1/persons",
                json={
                    "given_name": "Rosa",
                    "family_name": "Restart",
                    "email": "rosa.restart@example.org",
                    "birth_date": "1988-02-29",
                },
                headers=admin,
            ).json()
            pid, owner = person["person_id"], {"Authorization": f"Bearer {person['access_token']}"}
            affiliated = http.post(
                f"{enrollment}/v1/persons/{pid}/affiliations",
                json={"organization_id": org["organization_id"]},
                headers=admin,
            )
            assert affiliated.status_code == 201, affiliated.text
            first = submit(http, p, org["api_key"], pid, 20, "before")
            wallet_url = f"{p.url('wallet')}/v1/wallets/{pid}"
            records = wallet_verified = wait_verified(http, wallet_url, owner, 20)
            assert sorted(r["record_id"] for r in records) == sorted(first)
            share = http.post(
                f"{wallet_url}/shares",
                json={"record_ids": first[:3], "audience": "Hiring manager", "expires_in": 86400},
                headers=owner,
            )
            assert share.status_code == 201, share.text
            token = share.json()["token"]
            key = {"Authorization": f"Bearer {org['api_key']}"}
            deadline = time.monotonic() + 30
            while True:  # notifications learns the organization from the enrollment topic
                sub = http.post(
                    f"{p.url('notifications')}/v1/subscriptions",
                    json={
                        "url": "https://hooks.example.org/hook",
                        "event_types": ["record.verified"],
                    },
                    headers=key,
                )
                if sub.status_code == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert sub.status_code == 201, sub.text
            credential_id = wallet_verified[0]["credential"]["id"].rsplit("/", 1)[-1]
        stop(p)

        p.start()
        out = p.output().split("The LER platform is up")[-2]
        assert "keeping the stores" in out
        with httpx.Client(timeout=30) as http:
            records = http.get(wallet_url, headers=owner).json()["records"]
            assert sorted(r["record_id"] for r in records) == sorted(first)
            assert all(r["status"] == "verified" for r in records)
            presentation = http.get(f"{p.url('wallet')}/v1/shares/{token}")
            assert presentation.status_code == 200, presentation.text
            verdict = http.post(f"{p.url('wallet')}/v1/verify", json=presentation.json())
            assert verdict.status_code == 200, verdict.text
            subs = http.get(f"{p.url('notifications')}/v1/subscriptions", headers=key).json()
            assert [s["subscription_id"] for s in subs] == [sub.json()["subscription_id"]]
            credential = http.get(
                f"{p.url('verification')}/v1/credentials/{credential_id}", headers=admin
            )
            assert credential.status_code == 200, credential.text
            # The processors resume from their stored positions: new records flow, none twice.
            second = submit(http, p, org["api_key"], pid, 10, "after")
            records = wait_verified(http, wallet_url, owner, 30)
            ids = [r["record_id"] for r in records]
            assert sorted(ids) == sorted(first + second)
            assert len(ids) == len(set(ids))
        stop(p)
    finally:
        if p.process and p.process.poll() is None:
            p.process.kill()
        for pid_ in p.descendants_alive():
            os.kill(pid_, signal.SIGKILL)

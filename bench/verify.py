"""`POST /v1/verify` throughput: presentations of 3 registry credentials each, verified by one
wallet API process (``ler serve wallet``, one worker), target >= 200/s.

The registry's DID document and status list are served over HTTP on 127.0.0.1 by a stand-in of the
verification service (the wallet fetches them once and caches them). Three figures:

- ``cold``: every presentation holds 3 credentials the wallet has never seen (full proof checks),
  measured after a warm-up of other new presentations (the first requests of a fresh process
  load and process the pinned JSON-LD contexts once);
- ``warm``: new presentations of credentials it has already checked (the usual case when an
  employer checks shares of the same registry credentials);
- ``repeat``: the same presentation again (the whole verdict is cached).

Figures are printed and recorded, never asserted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from ler.broker import free_port, wait_for_port
from ler.credentials import build_presentation, load_key_ring
from ler.credentials.multikey import generate_key_file
from ler.settings import KafkaSettings
from services.verification.credentials import CredentialInput, Issuer

ROOT = Path(__file__).resolve().parents[1]
DID = "did:web:bench-registry.test"
PRESENTATIONS = 1000
WARMUP_PRESENTATIONS = 50  # new credentials too, not counted: the first requests warm caches
CONCURRENCY = 8
WARM_SECONDS = 8.0


def say(text: str) -> None:
    print(text, flush=True)


def _registry(documents: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _credentials(issuer: Issuer, count: int) -> list[dict[str, Any]]:
    out = []
    for index in range(count):
        item = CredentialInput(
            credential_id=str(uuid.uuid4()),
            record_id=str(uuid.uuid4()),
            person_id=str(uuid.uuid4()),
            record_type="employment",
            data={
                "title": "Child Care Worker",
                "action": "hired",
                "start_date": "2023-01-09",
                "soc_code": "39-9011",
            },
            organization_id=str(uuid.uuid4()),
            organization_name="Bright Start Early Learning",
        )
        out.append(issuer.issue(item, "bench", 10 + index))
    return out


async def _measure(port: int, bodies: list[bytes], *, seconds: float | None = None) -> float:
    """Presentations verified per second with ``CONCURRENCY`` clients (each must verify)."""
    queue = list(bodies)
    done = 0
    deadline = None if seconds is None else time.perf_counter() + seconds

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        nonlocal done
        i = offset
        while True:
            if deadline is None:
                if not queue:
                    return
                body = queue.pop()
            else:
                if time.perf_counter() >= deadline:
                    return
                body = bodies[i % len(bodies)]
                i += CONCURRENCY
            response = await client.post(
                "/v1/verify", content=body, headers={"Content-Type": "application/json"}
            )
            verdict = response.json()
            if response.status_code != 200 or not verdict.get("verified"):
                raise RuntimeError(f"verify failed: {response.status_code} {verdict}")
            done += 1

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, k) for k in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return done / elapsed


def _start_wallet(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ler.cli", "serve", "wallet"],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def run(
    results: dict[str, Any], kafka: KafkaSettings | None = None, tmp: Path | None = None
) -> None:
    say("\nverify (POST /v1/verify, presentations of 3 credentials, one wallet worker)")
    with tempfile.TemporaryDirectory() as scratch:
        base = tmp or Path(scratch)
        keys = base / "verify-keys"
        keys.mkdir(exist_ok=True)
        if not (keys / "key-1.json").exists():
            generate_key_file(keys / "key-1.json", f"{DID}#key-1", controller=DID)
        documents: dict[str, bytes] = {}
        server = _registry(documents)
        registry_url = f"http://127.0.0.1:{server.server_address[1]}"
        issuer = Issuer(load_key_ring(keys), public_url=registry_url, name="Bench Registry")
        documents["/.well-known/did.json"] = json.dumps(issuer.ring.did_document()).encode()
        documents["/v1/status-lists/bench"] = json.dumps(
            issuer.status_list("bench", 131_072, [])
        ).encode()
        started = time.perf_counter()
        credentials = _credentials(issuer, (PRESENTATIONS + WARMUP_PRESENTATIONS) * 3)
        say(f"  signed {len(credentials)} credentials in {time.perf_counter() - started:.1f} s")
        presented = [
            json.dumps(build_presentation(credentials[i : i + 3])).encode()
            for i in range(0, len(credentials), 3)
        ]
        warmup, cold = presented[:WARMUP_PRESENTATIONS], presented[WARMUP_PRESENTATIONS:]
        shuffled = credentials[WARMUP_PRESENTATIONS * 3 :]
        random.Random(7).shuffle(shuffled)
        warm = [
            json.dumps(build_presentation(shuffled[i : i + 3])).encode()
            for i in range(0, len(shuffled), 3)
        ]

        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")},
            "WALLET_PORT": str(port),
            "WALLET_DATABASE_URL": f"sqlite+aiosqlite:///{base / 'verify-wallet.db'}",
            "WALLET_VERIFICATION_URL": registry_url,
            "LER_DATA_DIR": str(base / "verify-var"),
            "PYTHONUNBUFFERED": "1",
        }
        # The wallet's outbox relay wants a broker; without one it only retries quietly.
        env.update(
            kafka.environment()
            if kafka
            else {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
        )
        process = _start_wallet(env, base / "verify-wallet.log")
        try:
            wait_for_port(port, 60)
            await _measure(port, warmup)
            figures = {
                "cold_presentations_per_s": round(await _measure(port, cold), 1),
                "warm_presentations_per_s": round(
                    await _measure(port, warm, seconds=WARM_SECONDS), 1
                ),
                "repeat_presentations_per_s": round(
                    await _measure(port, cold[:1], seconds=WARM_SECONDS / 2), 1
                ),
                "credentials_per_presentation": 3,
                "concurrency": CONCURRENCY,
                "target_per_s": 200,
            }
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            server.shutdown()
            server.server_close()
    results["verify"] = figures
    say(
        f"  cold {figures['cold_presentations_per_s']}/s (new credentials), "
        f"warm {figures['warm_presentations_per_s']}/s (new presentations, known credentials), "
        f"repeat {figures['repeat_presentations_per_s']}/s (target >= 200/s)"
    )


if __name__ == "__main__":
    out: dict[str, Any] = {}
    asyncio.run(run(out))
    print(json.dumps(out, indent=2))

"""Read your writes across services: seconds from the enrollment service's answer (a new
organization, a new person, a rotated key, a reset token) until the verification, wallet and
notifications APIs honour the change (accept the new credential, refuse the old one).

The enrollment API is served on a loopback port; the other APIs run in-process with
``LER_ENROLLMENT_URL`` pointing at it and no processor running, so the figure is the lookup path
alone (what bounds the worst case; the topic path only ever makes it earlier). SQLite stores.
``python -m bench.access`` runs it alone.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.api import create_app as notifications_app
from services.notifications.bootstrap import bootstrap as notifications_bootstrap
from services.notifications.settings import NotificationsSettings
from services.verification.api import create_app as verification_app
from services.verification.bootstrap import bootstrap as verification_bootstrap
from services.verification.settings import VerificationSettings
from services.wallet.api import create_app as wallet_app
from services.wallet.bootstrap import bootstrap as wallet_bootstrap
from services.wallet.settings import WalletSettings

ROUNDS = 40
ADMIN = "bench-admin-token-" + "x" * 24
Probe = Callable[[str], Awaitable[int]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _until(probes: dict[str, Probe], token: str, accepted: bool, started: float) -> float:
    """Seconds until every probe accepts (or refuses with 401) the token; at most 10 s."""
    left = set(probes)
    while left and time.monotonic() - started < 10:
        for name in list(left):
            if (await probes[name](token) != 401) == accepted:
                left.discard(name)
        await asyncio.sleep(0.002)
    return time.monotonic() - started if not left else float("inf")


def _asgi(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.02)
    return server, task


async def run(results: dict[str, Any], kafka: KafkaSettings, tmp: Path) -> None:
    """Add ``access_takes_effect`` figures (p50, p99, max seconds per change) to ``results``."""
    from ler.broker import free_port

    port = free_port()
    base = tmp / "access"
    base.mkdir(exist_ok=True)
    platform = PlatformSettings(data_dir=base, admin_token=ADMIN)
    linked = platform.model_copy(update={"enrollment_url": f"http://127.0.0.1:{port}"})

    def db(name: str) -> str:
        return f"sqlite+aiosqlite:///{base / (name + '.db')}"

    enrollment_ctx = enrollment_bootstrap(
        platform, kafka, EnrollmentSettings(), database_url=db("enrollment")
    )
    apps = [
        verification_app(
            verification_bootstrap(
                linked, kafka, VerificationSettings(), database_url=db("verification")
            )
        ),
        wallet_app(wallet_bootstrap(linked, kafka, WalletSettings(), database_url=db("wallet"))),
        notifications_app(
            notifications_bootstrap(
                linked, kafka, NotificationsSettings(), database_url=db("notifications")
            )
        ),
    ]
    server, task = await _serve(enrollment_app(enrollment_ctx), port)
    try:
        async with (
            apps[0].router.lifespan_context(apps[0]),
            apps[1].router.lifespan_context(apps[1]),
            apps[2].router.lifespan_context(apps[2]),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as enrollment,
            _asgi(apps[0]) as verification,
            _asgi(apps[1]) as wallet,
            _asgi(apps[2]) as notifications,
        ):
            samples = await _rounds(enrollment, verification, wallet, notifications)
    finally:
        server.should_exit = True
        await task
    figures = {
        what: {
            "p50_s": round(statistics.median(values), 4),
            "p99_s": round(sorted(values)[max(0, round(0.99 * len(values)) - 1)], 4),
            "max_s": round(max(values), 4),
            "samples": len(values),
        }
        for what, values in samples.items()
    }
    results["access_takes_effect"] = figures
    print("access takes effect on every service (lookup path, seconds):", flush=True)
    for what, f in figures.items():
        print(f"  {what:22} p50 {f['p50_s']:.4f}  p99 {f['p99_s']:.4f}  max {f['max_s']:.4f}")


async def _rounds(
    enrollment: httpx.AsyncClient,
    verification: httpx.AsyncClient,
    wallet: httpx.AsyncClient,
    notifications: httpx.AsyncClient,
) -> dict[str, list[float]]:
    admin = _bearer(ADMIN)
    nowhere = str(uuid.uuid4())

    async def status(call: Awaitable[httpx.Response]) -> int:
        return (await call).status_code

    org_probes: dict[str, Probe] = {
        "verification": lambda k: status(
            verification.post(
                f"/v1/credentials/{nowhere}/revoke", json={"reason": "x"}, headers=_bearer(k)
            )
        ),
        "notifications": lambda k: status(
            notifications.get("/v1/subscriptions", headers=_bearer(k))
        ),
    }

    def person_probes(pid: str) -> dict[str, Probe]:
        return {
            "verification": lambda t: status(
                verification.get(f"/v1/credentials/{nowhere}", headers=_bearer(t))
            ),
            "wallet": lambda t: status(wallet.get(f"/v1/wallets/{pid}", headers=_bearer(t))),
            "notifications": lambda t: status(
                notifications.get(f"/v1/persons/{pid}/notifications", headers=_bearer(t))
            ),
        }

    out: dict[str, list[float]] = {}
    for i in range(ROUNDS):
        started = time.monotonic()
        org = (
            await enrollment.post(
                "/v1/organizations", json={"name": f"Bench {i}", "kind": "employer"}, headers=admin
            )
        ).json()
        out.setdefault("new key", []).append(
            await _until(org_probes, org["api_key"], True, started)
        )
        started = time.monotonic()
        rotated = await enrollment.post(
            f"/v1/organizations/{org['organization_id']}/api-key", headers=admin
        )
        out.setdefault("old key refused", []).append(
            await _until(org_probes, org["api_key"], False, started)
        )
        tag = uuid.uuid4().hex[:8]
        body = {"given_name": "B", "family_name": tag, "email": f"{tag}@e.org"}
        started = time.monotonic()
        person = (
            await enrollment.post(
                "/v1/persons", json=body | {"birth_date": "1990-01-01"}, headers=admin
            )
        ).json()
        probes = person_probes(person["person_id"])
        out.setdefault("new token", []).append(
            await _until(probes, person["access_token"], True, started)
        )
        started = time.monotonic()
        await enrollment.post(f"/v1/persons/{person['person_id']}/access-token", headers=admin)
        out.setdefault("old token refused", []).append(
            await _until(probes, person["access_token"], False, started)
        )
        assert rotated.status_code == 201
    return out


async def _main() -> None:
    from ler.broker import chosen_kind, embedded_broker
    from ler.kafka import create_topics

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ler-bench-access-") as name:
        tmp = Path(name)
        with embedded_broker(chosen_kind()[0], data_dir=tmp / "kafka") as broker:
            kafka = broker.client_settings()
            await create_topics(kafka, PlatformSettings())
            await run(results, kafka, tmp)


if __name__ == "__main__":
    asyncio.run(_main())

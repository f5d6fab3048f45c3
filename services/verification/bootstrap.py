"""Builds the verification deployables (API, verifier, SLA processor) from settings."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
from fastapi import FastAPI

from ler.avro import default_codec
from ler.credentials import KeyFileError, KeyRing, load_key_ring
from ler.credentials.keygen import next_key_id
from ler.credentials.multikey import generate_key_file
from ler.processing import Runner
from ler.settings import KafkaSettings, PlatformSettings, SettingsError, load
from ler.skills import load_taxonomy
from ler.sql import is_transient
from ler.streams import build_app
from services.verification import sla
from services.verification.agents import SlaTracker, Verifier
from services.verification.credentials import Issuer
from services.verification.domain import Policy, PolicyError, VerificationChange, parse_policy
from services.verification.settings import VerificationSettings
from services.verification.sla_store import SlaStore
from services.verification.store import VerificationStore

log = logging.getLogger(__name__)


@dataclass
class VerificationContext:
    platform: PlatformSettings
    kafka: KafkaSettings
    settings: VerificationSettings
    store: VerificationStore
    sla_store: SlaStore
    issuer: Issuer
    budgets: sla.Budgets


def load_policy(path: Path) -> Policy:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return parse_policy(document, str(path))
    except (OSError, json.JSONDecodeError, PolicyError) as exc:
        raise SettingsError(f"invalid settings: VERIFICATION_POLICY_FILE: {exc}") from None


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def embedded_key_dir(platform: PlatformSettings, did: str) -> Path:
    """Where the embedded mode keeps the generated key ring of one DID (kept across runs)."""
    name = did.removeprefix("did:web:").replace("%3A", "_").replace(":", "_")
    return platform.data_dir / "keys" / "verification" / name


def key_ring(platform: PlatformSettings, settings: VerificationSettings) -> KeyRing:
    """The configured key ring; in the embedded mode, one generated once under the data dir."""
    path = settings.signing_key_file
    if path is None:
        if platform.env != "embedded":
            raise SettingsError(
                "invalid settings: VERIFICATION_SIGNING_KEY_FILE: required outside the embedded mode"
            )
        path = embedded_key_dir(platform, settings.did)
        with _locked(path):
            if not any(path.glob("key-*.json")):
                key_id, file = next_key_id(path, settings.did)
                generate_key_file(file, key_id, controller=settings.did)
                log.info("generated the embedded signing key %s", key_id)
    try:
        ring = load_key_ring(path)
    except KeyFileError as exc:
        raise SettingsError(f"invalid settings: VERIFICATION_SIGNING_KEY_FILE: {exc}") from None
    if ring.controller != settings.did:
        raise SettingsError(
            f"invalid settings: VERIFICATION_DID: {settings.did} but the key ring belongs to "
            f"{ring.controller}"
        )
    return ring


def bootstrap(
    platform: PlatformSettings | None = None,
    kafka: KafkaSettings | None = None,
    settings: VerificationSettings | None = None,
    *,
    database_url: str | None = None,
) -> VerificationContext:
    platform = platform or load(PlatformSettings)
    kafka = kafka or load(KafkaSettings)
    settings = settings or load(VerificationSettings)
    url = database_url or platform.database_url("verification", settings.database_url)
    platform.check_production(url)
    issuer = Issuer(
        key_ring(platform, settings),
        public_url=settings.public_url,
        name=settings.registry_name,
        taxonomy=load_taxonomy(),
    )
    policy = load_policy(settings.policy_file)
    budgets = sla.Budgets(
        auto_seconds=settings.sla_auto_seconds,
        review_seconds=settings.sla_review_seconds,
        appeal_seconds=settings.sla_appeal_seconds,
        warning_ratio=settings.sla_warning_ratio,
    )
    codec = default_codec()
    store = VerificationStore(url, codec, issuer, policy)
    store.status_list_size = settings.status_list_size
    return VerificationContext(
        platform, kafka, settings, store, SlaStore(url, codec, budgets), issuer, budgets
    )


def new_runner(store: VerificationStore, *, emit: bool = True) -> Runner[VerificationChange]:
    return Runner(Verifier(), store, default_codec(), emit=emit)


def new_sla_runner(store: SlaStore, *, emit: bool = True) -> Runner[sla.SlaChange]:
    return Runner(SlaTracker(), store, default_codec(), emit=emit)


def verifier_app(ctx: VerificationContext) -> faust.App:
    return build_app(
        new_runner(ctx.store),
        ctx.store,
        ctx.kafka,
        ctx.platform,
        **ctx.settings.app_options(),
    )


def sla_app(ctx: VerificationContext) -> faust.App:
    """The SLA processor: items from the stream, warnings and breaches on its event-time clock."""
    runner = new_sla_runner(ctx.sla_store)
    app = build_app(
        runner,
        ctx.sla_store,
        ctx.kafka,
        ctx.platform,
        **ctx.settings.app_options(ctx.settings.sla_processor_health_port),
    )
    lateness = timedelta(seconds=ctx.settings.sla_lateness_seconds)

    @app.timer(ctx.settings.sla_tick_seconds)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        await ctx.sla_store.open()
        assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
        if not assigned:
            return
        caught_up = [tp for tp in assigned if _read_to_end(app, tp, runner.applied.get(tp, -1))]
        now = sla_clock(await ctx.sla_store.partition_clock(), assigned, caught_up, lateness)
        if now is None:
            return
        try:
            emitted = await ctx.sla_store.emit_due(now, {p for _, p in assigned})
        except Exception as exc:
            if not is_transient(exc):
                raise
            # Nothing was written: the next tick emits the same warnings and breaches.
            log.warning("sla tick: %s; retrying on the next tick", type(exc).__name__)
            return
        if emitted:
            for callback in runner.on_committed:
                callback()

    return app


def sla_clock(
    times: dict[tuple[str, int], datetime],
    assigned: set[tuple[str, int]],
    caught_up: list[tuple[str, int]],
    lateness: timedelta,
) -> datetime | None:
    return sla.clock(times, assigned, caught_up, datetime.now(UTC), lateness)


def _read_to_end(app: faust.App, tp: tuple[str, int], applied: int) -> bool:
    from faust.types import TP

    highwater: Any = app.consumer.highwater(TP(*tp))
    return highwater is not None and applied + 1 >= int(highwater)


def api() -> FastAPI:
    """The verification HTTP API built from the environment."""
    from services.verification.api import create_app

    return create_app(bootstrap())


def processor() -> faust.App:
    """The verifier (a Faust app) built from the environment."""
    return verifier_app(bootstrap())


def sla_processor() -> faust.App:
    """The SLA processor (a Faust app) built from the environment."""
    return sla_app(bootstrap())

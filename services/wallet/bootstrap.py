"""Builds the wallet deployables (API, projector, replay) from settings."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from fastapi import FastAPI

from ler.avro import default_codec
from ler.processing import Runner
from ler.settings import KafkaSettings, PlatformSettings, load
from ler.streams import build_app
from services.wallet.agents import WalletProjector
from services.wallet.domain import WalletChange
from services.wallet.settings import WalletSettings
from services.wallet.store import SqlWalletStore
from services.wallet.store_mongo import MongoWalletStore

WalletStore = SqlWalletStore | MongoWalletStore
MONGO_SCHEMES = ("mongodb://", "mongodb+srv://", "mongomock://")


def wallet_store(url: str) -> WalletStore:
    """The wallet projection's adapter for a URL: MongoDB, or SQL (SQLite, PostgreSQL)."""
    if url.startswith(MONGO_SCHEMES):
        return MongoWalletStore(url)
    return SqlWalletStore(url)


@dataclass
class WalletContext:
    platform: PlatformSettings
    kafka: KafkaSettings
    settings: WalletSettings
    store: WalletStore


def bootstrap(
    platform: PlatformSettings | None = None,
    kafka: KafkaSettings | None = None,
    settings: WalletSettings | None = None,
    *,
    database_url: str | None = None,
) -> WalletContext:
    platform = platform or load(PlatformSettings)
    kafka = kafka or load(KafkaSettings)
    settings = settings or load(WalletSettings)
    url = (
        database_url or settings.store_url or platform.database_url("wallet", settings.database_url)
    )
    platform.check_production(url)
    return WalletContext(platform, kafka, settings, wallet_store(url))


def new_runner(store: WalletStore, *, emit: bool = True) -> Runner[WalletChange]:
    return Runner(WalletProjector(), store, default_codec(), emit=emit)


def projector_app(ctx: WalletContext) -> faust.App:
    return build_app(
        new_runner(ctx.store),
        ctx.store,
        ctx.kafka,
        ctx.platform,
        **ctx.settings.app_options(),
    )


def api() -> FastAPI:
    """The wallet HTTP API built from the environment."""
    from services.wallet.api import create_app

    return create_app(bootstrap())


def processor() -> faust.App:
    """The wallet projector (a Faust app) built from the environment."""
    ctx = bootstrap()
    return projector_app(ctx)

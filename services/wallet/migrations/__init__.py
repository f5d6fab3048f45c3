"""The wallet database's migration history (``ler migrate wallet``; docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from ler.migrations import History, upgrade_url
from ler.settings import PlatformSettings, load

HISTORY = History("wallet", Path(__file__).parent, ("wallet_",))


async def migrate(database_url: str | None = None) -> list[str]:
    """Apply the wallet store's migrations (SQL revisions, or MongoDB's numbered ones)."""
    from services.wallet.bootstrap import MONGO_SCHEMES
    from services.wallet.settings import WalletSettings

    settings = load(WalletSettings)
    url = (
        database_url
        or settings.store_url
        or load(PlatformSettings).database_url("wallet", settings.database_url)
    )
    if url.startswith(MONGO_SCHEMES):
        from services.wallet import mongo_migrations
        from services.wallet.store_mongo import MongoWalletStore

        store = MongoWalletStore(url)
        try:
            return [f"wallet_mongo_{n}" for n in await mongo_migrations.upgrade(store.db)]
        finally:
            await store.close()
    return await upgrade_url(url, HISTORY)

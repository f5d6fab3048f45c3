"""``ler replay wallet``: rebuild the wallet projection from the topics into an empty store."""

from __future__ import annotations

from ler.replay import replay as replay_log
from services.wallet.bootstrap import bootstrap, new_runner


async def replay(database_url: str | None = None) -> int:
    ctx = bootstrap(database_url=database_url)
    try:
        return await replay_log(new_runner(ctx.store, emit=False), ctx.kafka)
    finally:
        await ctx.store.close()

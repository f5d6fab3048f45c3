"""``python -m tests.faults.broken_wallet``: the wallet projector of a release with a bug in its
store's apply code. The fault experiment runs it for a while, then restarts the processor with
the corrected code (``ler process wallet``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ler.streams import run_worker
from services.wallet.bootstrap import bootstrap, projector_app
from services.wallet.domain import WalletChange
from services.wallet.store import SqlWalletStore


class BuggyWalletStore(SqlWalletStore):
    """The real store with a programming error: apply reads an attribute no change has."""

    async def apply(self, conn: AsyncConnection, changes: list[WalletChange]) -> None:
        broken: Any = changes
        sources = [change.source for change in broken]
        await super().apply(conn, sources)


def main() -> None:
    ctx = bootstrap()
    ctx.store = BuggyWalletStore(ctx.store.db.url)
    run_worker(projector_app(ctx), ctx.platform.log_level)


if __name__ == "__main__":
    main()

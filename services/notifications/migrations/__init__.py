"""The notifications database's migration history (``ler migrate notifications``; docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from ler.migrations import History, upgrade_url
from ler.settings import PlatformSettings, load

HISTORY = History("notifications", Path(__file__).parent, ("notifications_", "partner_feed_"))


async def migrate(database_url: str | None = None) -> list[str]:
    """Apply the notifications database's revisions; returns those applied."""
    from services.notifications.settings import NotificationsSettings

    own = load(NotificationsSettings).database_url
    return await upgrade_url(
        database_url or load(PlatformSettings).database_url("notifications", own), HISTORY
    )

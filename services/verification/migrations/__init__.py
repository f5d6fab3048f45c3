"""The verification database's migration history (``ler migrate verification``; docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from ler.migrations import History, upgrade_url
from ler.settings import PlatformSettings, load

HISTORY = History("verification", Path(__file__).parent, ("verification_", "sla_"))


async def migrate(database_url: str | None = None) -> list[str]:
    """Apply the verification database's revisions; returns those applied."""
    from services.verification.settings import VerificationSettings

    own = load(VerificationSettings).database_url
    return await upgrade_url(
        database_url or load(PlatformSettings).database_url("verification", own), HISTORY
    )

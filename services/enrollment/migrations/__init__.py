"""The enrollment database's migration history (``ler migrate enrollment``; docs/operations.md)."""

from __future__ import annotations

from pathlib import Path

from ler.migrations import History, upgrade_url
from ler.settings import PlatformSettings, load

HISTORY = History("enrollment", Path(__file__).parent, ("enrollment_",))


async def migrate(database_url: str | None = None) -> list[str]:
    """Apply the enrollment database's revisions; returns those applied."""
    from services.enrollment.settings import EnrollmentSettings

    own = load(EnrollmentSettings).database_url
    return await upgrade_url(
        database_url or load(PlatformSettings).database_url("enrollment", own), HISTORY
    )

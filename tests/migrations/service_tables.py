"""Every table of one service's database, as the service's code of a tree defines them.

Used by the migration tests (today's code) and by ``release_schema.py`` (a released tree checked
out elsewhere and put first on ``sys.path``). Stores are built through each service's bootstrap
on a URL that is never opened.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData

SERVICES = ("enrollment", "verification", "wallet", "notifications")


def service_metadata(service: str, url: str) -> MetaData:
    """One MetaData holding every table the service's API and processors keep at ``url``."""
    stores: list[Any]
    if service == "enrollment":
        from services.enrollment.bootstrap import bootstrap as enrollment

        stores = [enrollment(database_url=url).store]
    elif service == "verification":
        from services.verification.bootstrap import bootstrap as verification

        checks = verification(database_url=url)
        stores = [checks.store, checks.sla_store]
    elif service == "wallet":
        from services.wallet.bootstrap import bootstrap as wallet

        stores = [wallet(database_url=url).store]
    elif service == "notifications":
        from services.notifications.bootstrap import bootstrap as notifications
        from services.notifications.feedstore import SqlPartnerFeedStore
        from services.notifications.store import SqlNotificationStore

        ctx = notifications(database_url=url)
        stores = [
            ctx.repo(),
            SqlNotificationStore(url),
            SqlPartnerFeedStore(url, ctx.pseudonym_secret, ctx.codec),
        ]
    else:
        raise ValueError(f"unknown service {service!r}")
    merged = MetaData()
    for store in stores:
        for table in store.db.metadata.sorted_tables:
            if table.name not in merged.tables:
                table.to_metadata(merged)
    return merged

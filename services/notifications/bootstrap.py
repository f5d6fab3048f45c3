"""Builds the notifications deployables from settings: the API, the notifications processor (with
the e-mail sender and the webhook dispatcher beside it) and the partner-feed processor."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import faust
from fastapi import FastAPI

from ler.avro import AvroCodec, default_codec
from ler.processing import Runner
from ler.settings import KafkaSettings, PlatformSettings, SettingsError, load
from ler.streams import build_app
from services.notifications.agents import NotificationsProcessor, PartnerFeedProcessor
from services.notifications.domain import NotificationChange
from services.notifications.feed import FeedChange
from services.notifications.feedstore import SqlPartnerFeedStore
from services.notifications.mail import EmailSender, Mailer, MboxMailer, SmtpMailer
from services.notifications.settings import NotificationsSettings
from services.notifications.store import NotificationsRepo, SqlNotificationStore
from services.notifications.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


@dataclass
class NotificationsContext:
    platform: PlatformSettings
    kafka: KafkaSettings
    settings: NotificationsSettings
    database_url: str
    codec: AvroCodec
    pseudonym_secret: bytes

    @property
    def allow_private_urls(self) -> bool:
        return self.settings.webhook_allow_private_urls

    @property
    def mailbox(self) -> Path:
        return self.settings.mailbox or self.platform.data_dir / "mail" / "notifications.mbox"

    def repo(self) -> NotificationsRepo:
        return NotificationsRepo.at(self.database_url)

    def mailer(self) -> Mailer:
        if self.settings.smtp_host:
            return SmtpMailer(self.settings)
        return MboxMailer(self.mailbox)


def bootstrap(
    platform: PlatformSettings | None = None,
    kafka: KafkaSettings | None = None,
    settings: NotificationsSettings | None = None,
    *,
    database_url: str | None = None,
) -> NotificationsContext:
    platform = platform or load(PlatformSettings)
    kafka = kafka or load(KafkaSettings)
    settings = settings or load(NotificationsSettings)
    url = database_url or platform.database_url("notifications", settings.database_url)
    if platform.env == "production" and settings.webhook_allow_private_urls:
        raise SettingsError(
            "invalid settings: NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE_URLS: must not be true in "
            "production (private webhook destinations are for development only)"
        )
    platform.check_production(url)
    if platform.env == "production" and not settings.smtp_host:
        raise SettingsError(
            "invalid settings: NOTIFICATIONS_SMTP_HOST: required in production "
            "(the local mailbox file is the embedded default)"
        )
    return NotificationsContext(
        platform, kafka, settings, url, default_codec(), pseudonym_secret(platform, settings)
    )


def pseudonym_secret(platform: PlatformSettings, settings: NotificationsSettings) -> bytes:
    """``NOTIFICATIONS_PSEUDONYM_SECRET``; in the embedded mode one generated once under var/.

    Pseudonyms are stable only while this secret is: changing it re-keys every partner's feed.
    """
    if settings.pseudonym_secret is not None:
        value = settings.pseudonym_secret.get_secret_value()
        if len(value) < 32:
            raise SettingsError(
                "invalid settings: NOTIFICATIONS_PSEUDONYM_SECRET: at least 32 characters"
            )
        return value.encode()
    if platform.env == "production":
        raise SettingsError(
            "invalid settings: NOTIFICATIONS_PSEUDONYM_SECRET: required in production, "
            "at least 32 characters"
        )
    path = platform.data_dir / "pseudonym-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with open(path, "x", encoding="ascii") as out:  # 'x': two starters never both write
            out.write(secrets.token_urlsafe(48) + "\n")
        path.chmod(0o600)
    return path.read_text(encoding="ascii").strip().encode()


def notifications_runner(
    store: SqlNotificationStore, *, emit: bool = True
) -> Runner[NotificationChange]:
    return Runner(NotificationsProcessor(), store, default_codec(), emit=emit)


def partner_feed_runner(store: SqlPartnerFeedStore, *, emit: bool = True) -> Runner[FeedChange]:
    return Runner(PartnerFeedProcessor(), store, default_codec(), emit=emit)


def notifications_app(ctx: NotificationsContext) -> faust.App:
    """The notifications processor, with the e-mail sender and webhook dispatcher as tasks: they
    send what committed transactions queued, never inside one."""
    s = ctx.settings
    store = SqlNotificationStore(ctx.database_url)
    runner = notifications_runner(store)
    app = build_app(
        runner,
        store,
        ctx.kafka,
        ctx.platform,
        **s.app_options(),
    )
    repo = ctx.repo()
    sender = EmailSender(repo, ctx.mailer(), s)
    dispatcher = WebhookDispatcher(repo, s)
    runner.on_committed += [sender.wake, dispatcher.wake]

    @app.task  # type: ignore[untyped-decorator]
    async def send_email() -> None:
        await _open(repo)
        await sender.run()

    @app.task  # type: ignore[untyped-decorator]
    async def deliver_webhooks() -> None:
        await _open(repo)
        await dispatcher.run()

    return app


def partner_feed_app(ctx: NotificationsContext) -> faust.App:
    s = ctx.settings
    store = SqlPartnerFeedStore(ctx.database_url, ctx.pseudonym_secret, ctx.codec)
    app = build_app(
        partner_feed_runner(store),
        store,
        ctx.kafka,
        ctx.platform,
        **s.app_options(s.partner_feed_health_port),
    )

    @app.task  # type: ignore[untyped-decorator]
    async def apply_agreements() -> None:
        """A new or changed agreement publishes to everyone who already consented."""
        await store.open()
        while True:
            try:
                await store.refresh_agreements()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("partner feed: agreements not applied (%s); retrying", exc)
            await asyncio.sleep(s.poll_interval_ms / 1000)

    return app


async def _open(repo: NotificationsRepo) -> None:
    while True:
        try:
            await repo.open()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("notifications store not reachable (%s); retrying", exc)
            await asyncio.sleep(1.0)


def api() -> FastAPI:
    """The notifications HTTP API built from the environment."""
    from services.notifications.api import create_app

    return create_app(bootstrap())


def processor() -> faust.App:
    """``ler process notifications``."""
    return notifications_app(bootstrap())


def partner_feed() -> faust.App:
    """``ler process partner-feed``."""
    return partner_feed_app(bootstrap())

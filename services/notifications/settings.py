"""Notifications settings (prefix ``NOTIFICATIONS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ler.settings import ProcessorSettings


class NotificationsSettings(ProcessorSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    port: int = Field(default=8004, ge=1, le=65535)
    partner_feed_health_port: int | None = Field(default=None, ge=1, le=65535)

    # E-mail. Without an SMTP host, messages go to a local mbox file (the embedded default).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "LER Registry <notifications@ler.localhost>"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    mailbox: Path | None = Field(
        default=None, description="mbox file of the embedded default (LER data dir/mail/...)"
    )
    email_max_attempts: int = Field(default=6, ge=1, le=100)

    # Links put into messages (the public addresses of the other services).
    verification_url: str = "http://127.0.0.1:8002"
    wallet_url: str = "http://127.0.0.1:8003"

    # Webhooks.
    webhook_max_attempts: int = Field(default=8, ge=1, le=100)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    webhook_concurrency: int = Field(default=256, ge=1, le=10_000)
    webhook_concurrency_per_subscription: int = Field(default=8, ge=1, le=1000)
    webhook_allow_private_urls: bool = Field(
        default=False,
        description="Send webhooks to loopback, private, link-local and reserved addresses "
        "(and names resolving to them); for development only, refused in production",
    )
    poll_interval_ms: int = Field(default=250, ge=10, le=60_000)

    # Partner feeds: the per-partner pseudonym keys are derived from this secret.
    pseudonym_secret: SecretStr | None = None

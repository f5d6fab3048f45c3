"""Wallet settings (prefix ``WALLET_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ler.settings import ProcessorSettings


class WalletSettings(ProcessorSettings):
    model_config = SettingsConfigDict(env_prefix="WALLET_", extra="ignore")

    port: int = Field(default=8003, ge=1, le=65535)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    # mongodb://... keeps the projection in MongoDB instead of SQL (see store_mongo.py).
    store_url: str | None = None
    #: Base URL of this wallet as its users reach it (share links and QR codes point here).
    public_url: str = "http://127.0.0.1:8003"
    #: Where the wallet reads the registry's DID document and status lists (the verification API).
    verification_url: str = "http://127.0.0.1:8002"
    #: The base URL the registry's credentials name (``VERIFICATION_PUBLIC_URL``); status lists
    #: under it are read from ``verification_url``. Defaults to ``verification_url``.
    verification_public_url: str | None = None
    did_cache_seconds: float = Field(default=300.0, ge=0, le=86_400)
    status_cache_seconds: float = Field(default=30.0, ge=0, le=3_600)
    share_max_seconds: int = Field(default=90 * 86_400, ge=60, le=366 * 86_400)

"""Wallet settings (prefix ``WALLET_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_settings import SettingsConfigDict

from ler.credentials import TrustedIssuer, TrustList, did_web_from_url
from ler.credentials.limits import DocumentLimits
from ler.settings import ProcessorSettings


class TrustedIssuerSetting(BaseModel):
    """One trusted issuer of ``WALLET_TRUSTED_ISSUERS``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^did:[a-z0-9]+:[^\s#?]+$", max_length=2000)
    name: str = Field(min_length=1, max_length=200)


class WalletSettings(ProcessorSettings):
    model_config = SettingsConfigDict(env_prefix="WALLET_", extra="ignore", populate_by_name=True)

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

    # --- POST /v1/verify (docs/security.md, "Verification limits") ---
    #: This registry's DID (trusted by default). ``VERIFICATION_DID`` is read when
    #: ``WALLET_REGISTRY_DID`` is unset (``make run`` sets it for every process); without
    #: either, the did:web of ``verification_public_url`` (or ``verification_url``).
    registry_did: str | None = Field(
        default=None,
        pattern=r"^did:web:[^\s#?]+$",
        validation_alias=AliasChoices("WALLET_REGISTRY_DID", "VERIFICATION_DID"),
    )
    registry_name: str = Field(
        default="LER Workforce Registry",
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("WALLET_REGISTRY_NAME", "VERIFICATION_REGISTRY_NAME"),
    )
    #: Other issuers this wallet's verifier trusts, as JSON: [{"id": "did:...", "name": "..."}].
    trusted_issuers: list[TrustedIssuerSetting] = Field(default_factory=list, max_length=1000)
    #: The same list in a JSON file (added to ``trusted_issuers``).
    trusted_issuers_file: Path | None = None
    verify_max_bytes: int = Field(default=256 * 1024, ge=1024, le=1024 * 1024)
    verify_max_depth: int = Field(default=32, ge=8, le=64)
    verify_max_values: int = Field(default=20_000, ge=100, le=1_000_000)
    verify_max_credentials: int = Field(default=50, ge=1, le=1000)
    verify_workers: int = Field(default=2, ge=1, le=64)
    verify_queue: int = Field(default=64, ge=0, le=10_000)
    verify_deadline_seconds: float = Field(default=0.8, gt=0, le=60)

    def registry(self) -> TrustedIssuerSetting:
        """This registry as a trusted issuer."""
        did = self.registry_did or did_web_from_url(
            self.verification_public_url or self.verification_url
        )
        return TrustedIssuerSetting(id=did, name=self.registry_name)

    def trust_list(self) -> TrustList:
        """This registry, then ``trusted_issuers``, then the file's (an id listed twice keeps
        its first name). Raises ValueError naming the file when it cannot be read."""
        entries = [self.registry(), *self.trusted_issuers]
        if self.trusted_issuers_file is not None:
            entries += _read_trust_file(self.trusted_issuers_file)
        seen: dict[str, TrustedIssuer] = {}
        for entry in entries:
            seen.setdefault(entry.id, TrustedIssuer(entry.id, entry.name))
        return TrustList(seen.values())

    def verify_limits(self) -> DocumentLimits:
        return DocumentLimits(
            max_bytes=self.verify_max_bytes,
            max_depth=self.verify_max_depth,
            max_values=self.verify_max_values,
            max_credentials=self.verify_max_credentials,
        )


def _read_trust_file(path: Path) -> list[TrustedIssuerSetting]:
    try:
        return _TRUST_FILE.validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise ValueError(
            f"invalid settings: WALLET_TRUSTED_ISSUERS_FILE: {path} is not a JSON list of "
            f'{{"id": "did:...", "name": "..."}} ({type(exc).__name__})'
        ) from None


_TRUST_FILE = TypeAdapter(list[TrustedIssuerSetting])

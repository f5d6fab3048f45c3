"""Verification settings (prefix ``VERIFICATION_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ler.settings import ProcessorSettings

DEFAULT_POLICY = Path(__file__).with_name("policy.json")


class VerificationSettings(ProcessorSettings):
    model_config = SettingsConfigDict(env_prefix="VERIFICATION_", extra="ignore")

    port: int = Field(default=8002, ge=1, le=65535)
    did: str = Field(default="did:web:127.0.0.1%3A8002", pattern=r"^did:web:[^\s#?]+$")
    public_url: str = Field(
        default="http://127.0.0.1:8002",
        pattern=r"^https?://\S+$",
        description="Where this service is reached from outside (status list URLs point here).",
    )
    registry_name: str = Field(default="LER Workforce Registry", min_length=1, max_length=200)
    signing_key_file: Path | None = Field(
        default=None,
        description="A key file or a directory of key-<n>.json files (the key ring). Required "
        "outside the embedded mode; in the embedded mode one is generated under LER_DATA_DIR.",
    )
    policy_file: Path = DEFAULT_POLICY
    status_list_size: int = Field(default=131_072, ge=131_072, le=8 * 1024 * 1024)
    # Processing-time budgets per queue (seconds) and the SLA processor's clock.
    sla_auto_seconds: float = Field(default=300, gt=0)
    sla_review_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    sla_appeal_seconds: float = Field(default=30 * 24 * 3600, gt=0)
    sla_warning_ratio: float = Field(default=0.8, gt=0, lt=1)
    sla_tick_seconds: float = Field(default=1.0, gt=0, le=60)
    sla_lateness_seconds: float = Field(default=2.0, ge=0, le=3600)
    sla_processor_health_port: int | None = Field(default=None, ge=1, le=65535)

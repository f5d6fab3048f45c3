"""Enrollment settings (prefix ``ENROLLMENT_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ler.settings import ServiceSettings


class EnrollmentSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="ENROLLMENT_", extra="ignore")

    port: int = Field(default=8001, ge=1, le=65535)
    max_batch: int = Field(default=1000, ge=1, le=1000)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Per organization on POST /v1/records; the defaults leave room for the bench's 10,000
    # records a second in batches of 1,000 (10 requests a second) several times over.
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=100, ge=1)
    record_rate_limit_per_second: float = Field(default=50_000.0, gt=0)
    record_rate_limit_burst: int = Field(default=100_000, ge=1000)

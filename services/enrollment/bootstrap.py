"""Builds the enrollment service from settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from ler.avro import AvroCodec, default_codec
from ler.settings import KafkaSettings, PlatformSettings, load
from services.enrollment.settings import EnrollmentSettings
from services.enrollment.store import EnrollmentStore


@dataclass
class EnrollmentContext:
    platform: PlatformSettings
    kafka: KafkaSettings
    settings: EnrollmentSettings
    store: EnrollmentStore
    codec: AvroCodec


def bootstrap(
    platform: PlatformSettings | None = None,
    kafka: KafkaSettings | None = None,
    settings: EnrollmentSettings | None = None,
    *,
    database_url: str | None = None,
) -> EnrollmentContext:
    platform = platform or load(PlatformSettings)
    kafka = kafka or load(KafkaSettings)
    settings = settings or load(EnrollmentSettings)
    url = database_url or platform.database_url("enrollment", settings.database_url)
    platform.check_production(url)
    return EnrollmentContext(platform, kafka, settings, EnrollmentStore(url), default_codec())


def api() -> FastAPI:
    """The enrollment HTTP API built from the environment."""
    from services.enrollment.api import create_app

    return create_app(bootstrap())

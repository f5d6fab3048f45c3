"""Typed settings from the environment; invalid values fail at start-up naming the variable.

Shared settings have fixed names (``LER_*``, ``KAFKA_*``, ``DATABASE_URL``); each service adds its
own class with its env prefix (``ENROLLMENT_``, ``WALLET_``, ...).
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class SettingsError(RuntimeError):
    """Settings that cannot be used; the message names each variable and what is wrong."""


FILE_SUFFIX = "_FILE"


def expand_secret_files(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """``NAME_FILE=/path`` sets ``NAME`` from that file (mounted secrets), unless NAME is set.

    Applies to secrets only: ``LER_ADMIN_TOKEN``, ``DATABASE_URL`` and every ``*_DATABASE_URL``,
    ``*_STORE_URL``, ``KAFKA_SASL_PASSWORD``, ``*_SMTP_PASSWORD``, ``*_SECRET``, ``*_TOKEN``.
    """
    env = os.environ if environ is None else environ
    expanded = []
    for name, path in list(env.items()):
        if not name.endswith(FILE_SUFFIX):
            continue
        target = name.removesuffix(FILE_SUFFIX)
        if not _is_secret_name(target) or env.get(target):
            continue
        try:
            env[target] = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"invalid settings: {name}: cannot read {path} ({exc.strerror})"
            ) from None
        expanded.append(target)
    return expanded


def _is_secret_name(name: str) -> bool:
    return name in {"LER_ADMIN_TOKEN", "DATABASE_URL", "KAFKA_SASL_PASSWORD"} or name.endswith(
        ("_DATABASE_URL", "_STORE_URL", "_SMTP_PASSWORD", "_SECRET", "_TOKEN")
    )


def load(cls: type[S]) -> S:
    """Build a settings class from the environment, turning validation errors into plain words."""
    expand_secret_files()
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            problems.append(f"{(prefix + field).upper()}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


class PlatformSettings(BaseSettings):
    """Settings every deployable shares."""

    model_config = SettingsConfigDict(env_prefix="LER_", extra="ignore")

    env: Literal["embedded", "development", "production"] = "embedded"
    data_dir: Path = Path("var")
    admin_token: SecretStr | None = None
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    topic_replication_factor: int = Field(default=1, ge=1, le=7)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Where the enrollment service answers: the other services ask it who holds an API key or an
    # access token (cached for a fraction of a second), so a new, rotated or revoked credential
    # takes effect at once; unset, they know only what ler.enrollment.v1 told them.
    enrollment_url: str | None = None

    def database_url(self, service: str, own: str | None) -> str:
        """The service's own URL, else ``DATABASE_URL``, else SQLite under the data dir."""
        if own:
            return own
        shared = os.environ.get("DATABASE_URL")
        if shared:
            return shared
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def check_production(self, *database_urls: str) -> None:
        """Refuse the embedded defaults where they would be unsafe."""
        if self.env != "production":
            return
        problems = []
        if self.admin_token is None or len(self.admin_token.get_secret_value()) < 32:
            problems.append("LER_ADMIN_TOKEN: required in production, at least 32 characters")
        problems += [
            f"database URL {url.split(':', 1)[0]}: SQLite is the embedded store; "
            "production needs PostgreSQL (or MongoDB for the wallet)"
            for url in database_urls
            if url.startswith("sqlite")
        ]
        kafka = load(KafkaSettings)
        if kafka.is_local:
            problems.append(
                "KAFKA_BOOTSTRAP_SERVERS: points at this machine (an embedded development "
                "broker); production needs a Kafka cluster"
            )
        if kafka.implementation == "tansu":
            problems.append(
                "KAFKA_IMPLEMENTATION: tansu is the embedded development broker; production "
                "needs apache-kafka"
            )
        if kafka.security_protocol.startswith("SASL") and not (
            kafka.sasl_username and kafka.sasl_password
        ):
            problems.append(
                "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD: required with KAFKA_SECURITY_PROTOCOL="
                + kafka.security_protocol
            )
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster (the embedded broker by default)."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    # Which broker implementation the cluster runs: the clients' workarounds for the embedded
    # Tansu broker (ler.broker.compat) are on only for "tansu".
    implementation: Literal["apache-kafka", "tansu"] = "apache-kafka"
    # The idempotent producer; unset: on for Apache Kafka, off for Tansu (which cannot run it).
    enable_idempotence: bool | None = None

    def environment(self) -> dict[str, str]:
        """The variables that make a child process's settings point at the same cluster."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_IMPLEMENTATION": self.implementation,
        }
        if self.enable_idempotence is not None:
            env["KAFKA_ENABLE_IDEMPOTENCE"] = str(self.enable_idempotence).lower()
        return env

    @property
    def is_local(self) -> bool:
        hosts = [s.strip().rsplit(":", 1)[0] for s in self.bootstrap_servers.split(",")]
        return all(h in {"127.0.0.1", "localhost", "::1", "[::1]"} for h in hosts)


class ServiceSettings(BaseSettings):
    """What every service adds under its own prefix: where it listens and its database."""

    model_config = SettingsConfigDict(extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    database_url: str | None = None


class ProcessorSettings(ServiceSettings):
    """A service that also runs stream processors: batching and the processor's health port."""

    batch_size: int = Field(default=500, ge=1, le=10_000)
    batch_window_ms: int = Field(default=20, ge=1, le=5_000)
    processor_health_port: int | None = Field(default=None, ge=1, le=65535)

    def app_options(self, health_port: int | None = None) -> dict[str, Any]:
        """Keyword options of ``ler.streams.build_app`` for one of this service's processors
        (``health_port`` for a second processor with its own port)."""
        return {
            "batch_size": self.batch_size,
            "batch_window": self.batch_window_ms / 1000,
            "health_port": health_port if health_port is not None else self.processor_health_port,
            "health_host": self.host,
        }

"""Envelope, trace context, settings and credentials helpers of the kit."""

from __future__ import annotations

from pathlib import Path

import pytest

from ler.envelope import Envelope, new_envelope, new_traceparent, parse_traceparent
from ler.settings import (
    KafkaSettings,
    PlatformSettings,
    SettingsError,
    expand_secret_files,
    load,
)
from ler.web import new_secret, same_secret, token_hash
from services.enrollment.settings import EnrollmentSettings
from services.wallet.settings import WalletSettings

pytestmark = pytest.mark.unit


def test_a_caused_event_inherits_the_correlation_and_names_its_cause() -> None:
    cause = new_envelope("RecordSubmitted", "enrollment", correlation_id="req-1")
    effect = new_envelope("RecordVerified", "verification", causation=cause)
    assert effect.correlation_id == "req-1"
    assert effect.causation_id == str(cause.event_id)
    assert effect.event_id != cause.event_id
    assert effect.occurred_at.tzinfo is not None
    assert Envelope.from_record(effect.as_fields()) == effect


def test_a_first_event_correlates_to_itself() -> None:
    first = new_envelope("PersonEnrolled", "enrollment")
    assert first.correlation_id == str(first.event_id)
    assert first.causation_id is None


def test_traceparent_round_trip_and_rejections() -> None:
    value = new_traceparent()
    parsed = parse_traceparent(value)
    assert parsed is not None
    assert len(parsed[0]) == 32
    assert parse_traceparent(value.encode()) == parsed
    for bad in (None, "", "01-" + value[3:], "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "00-xyz"):
        assert parse_traceparent(bad) is None


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLET_PORT", "not-a-port")
    with pytest.raises(SettingsError, match="WALLET_PORT"):
        load(WalletSettings)
    monkeypatch.setenv("ENROLLMENT_MAX_BATCH", "5000")
    with pytest.raises(SettingsError, match="ENROLLMENT_MAX_BATCH"):
        load(EnrollmentSettings)
    monkeypatch.setenv("LER_TOPIC_PARTITIONS", "0")
    with pytest.raises(SettingsError, match="LER_TOPIC_PARTITIONS"):
        load(PlatformSettings)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON")
    with pytest.raises(SettingsError, match="KAFKA_SECURITY_PROTOCOL"):
        load(KafkaSettings)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLET_PORT", "9103")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092,10.0.0.2:9092")
    assert load(WalletSettings).port == 9103
    kafka = load(KafkaSettings)
    assert not kafka.is_local
    assert KafkaSettings(bootstrap_servers="127.0.0.1:1").is_local


def test_database_url_falls_back_to_sqlite_under_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    platform = PlatformSettings(data_dir="var")
    assert platform.database_url("wallet", None).endswith("/var/wallet.db")
    assert (
        platform.database_url("wallet", "postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://shared/db")
    assert platform.database_url("wallet", None) == "postgresql+asyncpg://shared/db"


def test_production_refuses_embedded_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    production = PlatformSettings(env="production")
    with pytest.raises(SettingsError, match="LER_ADMIN_TOKEN"):
        production.check_production("postgresql+asyncpg://db/x")
    strong = PlatformSettings(env="production", admin_token="a" * 40)
    with pytest.raises(SettingsError, match="SQLite"):
        strong.check_production("sqlite+aiosqlite:///var/x.db")
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS: points at this machine"):
        strong.check_production("postgresql+asyncpg://db/x")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(SettingsError, match="KAFKA_SASL_USERNAME"):
        strong.check_production("postgresql+asyncpg://db/x")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "wallet")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    strong.check_production("postgresql+asyncpg://db/x")
    PlatformSettings().check_production("sqlite+aiosqlite:///var/x.db")


def test_secrets_can_come_from_mounted_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file-" + "t" * 30 + "\n")
    (tmp_path / "db").write_text("postgresql+asyncpg://u:p@db/wallet")
    env = {
        "LER_ADMIN_TOKEN_FILE": str(tmp_path / "token"),
        "WALLET_DATABASE_URL_FILE": str(tmp_path / "db"),
        "WALLET_PORT_FILE": str(tmp_path / "db"),
        "VERIFICATION_OPS_TOKEN_FILE": str(tmp_path / "token"),
        "DATABASE_URL": "already-set",
        "DATABASE_URL_FILE": str(tmp_path / "db"),
    }
    assert sorted(expand_secret_files(env)) == [
        "LER_ADMIN_TOKEN",
        "VERIFICATION_OPS_TOKEN",
        "WALLET_DATABASE_URL",
    ]
    assert env["LER_ADMIN_TOKEN"] == "from-a-file-" + "t" * 30
    assert env["WALLET_DATABASE_URL"] == "postgresql+asyncpg://u:p@db/wallet"
    assert "WALLET_PORT" not in env  # not a secret: no _FILE indirection
    assert env["DATABASE_URL"] == "already-set"
    with pytest.raises(SettingsError, match="KAFKA_SASL_PASSWORD_FILE"):
        expand_secret_files({"KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")})


def test_secrets_are_long_prefixed_and_compared_by_hash() -> None:
    key = new_secret("ler_org")
    assert key.startswith("ler_org_")
    assert len(key) - len("ler_org_") >= 43  # 256 bits, base64url
    assert token_hash(key) == token_hash(key) != token_hash(new_secret("ler_org"))
    assert same_secret(key, key)
    assert not same_secret(key, key[:-1] + "x")


def test_the_cached_partitioner_agrees_with_kafkas_default_murmur2() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    from ler.kafka import CachedPartitioner

    default, cached = DefaultPartitioner(), CachedPartitioner(size=3)
    partitions = list(range(12))
    for key in [f"person-{i}".encode() for i in range(50)] * 2:
        assert cached(key, partitions, partitions) == default(key, partitions, partitions)
    assert cached(None, partitions, partitions) in partitions


def test_processor_settings_give_build_app_its_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.verification.settings import VerificationSettings

    monkeypatch.setenv("VERIFICATION_BATCH_SIZE", "250")
    monkeypatch.setenv("VERIFICATION_PROCESSOR_HEALTH_PORT", "8012")
    monkeypatch.setenv("VERIFICATION_SLA_PROCESSOR_HEALTH_PORT", "8014")
    settings = load(VerificationSettings)
    assert settings.app_options() == {
        "batch_size": 250,
        "batch_window": 0.02,
        "health_port": 8012,
        "health_host": "127.0.0.1",
    }
    assert settings.app_options(settings.sla_processor_health_port)["health_port"] == 8014
    assert load(WalletSettings).batch_size == 1000


def test_new_ids_are_distinct_version_4_uuids_and_a_forked_child_gets_its_own() -> None:
    import os
    import uuid

    from ler.envelope import new_id

    ids = [new_id() for _ in range(1000)]  # spans several 4 KiB reads
    assert len(set(ids)) == 1000
    assert all(i.version == 4 and i.variant == uuid.RFC_4122 for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child reports its next id and leaves at once
        os.write(write, new_id().bytes)
        os._exit(0)
    os.waitpid(child, 0)
    from_child = uuid.UUID(bytes=os.read(read, 16))
    os.close(read)
    os.close(write)
    assert from_child != new_id()

"""The engines' versions agree with their build files; broker choice, workarounds and the stores
`ler run` keeps follow the rules the docs give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ler.broker import chosen_kind
from ler.broker.compat import compat
from ler.broker.kafka import KAFKA_VERSION, KafkaBroker, KafkaUnavailable, new_cluster_id
from ler.launcher import prepare_stores
from ler.settings import KafkaSettings, PlatformSettings, SettingsError
from tests.engines import FERRETDB_VERSION
from tests.helpers import ROOT

pytestmark = pytest.mark.unit


def test_kafka_version_is_the_one_the_pom_resolves() -> None:
    pom = (ROOT / "engines" / "kafka" / "pom.xml").read_text()
    assert re.search(r"<kafka.version>([^<]+)</kafka.version>", pom).group(1) == KAFKA_VERSION  # type: ignore[union-attr]


def test_ferretdb_version_is_the_one_setup_builds() -> None:
    setup = (ROOT / "engines" / "setup").read_text()
    assert f'FERRETDB_VERSION="{FERRETDB_VERSION}"' in setup


def test_workarounds_are_on_for_tansu_only() -> None:
    kafka = compat(KafkaSettings())
    tansu = compat(KafkaSettings(implementation="tansu"))
    assert (kafka.idempotent_producer, kafka.fetch_max_wait_ms, kafka.list_offsets_exact) == (
        True,
        None,
        True,
    )
    assert (tansu.idempotent_producer, tansu.fetch_max_wait_ms, tansu.list_offsets_exact) == (
        False,
        50,
        False,
    )
    assert not compat(KafkaSettings(enable_idempotence=False)).idempotent_producer


def test_child_processes_get_the_same_cluster_and_implementation() -> None:
    env = KafkaSettings(bootstrap_servers="127.0.0.1:1", implementation="tansu").environment()
    assert env == {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_IMPLEMENTATION": "tansu"}


def test_production_refuses_tansu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka:9093")
    monkeypatch.setenv("KAFKA_IMPLEMENTATION", "tansu")
    settings = PlatformSettings(env="production", admin_token="a" * 40)
    with pytest.raises(SettingsError, match="KAFKA_IMPLEMENTATION"):
        settings.check_production("postgresql+asyncpg://db/ler")


def test_broker_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LER_EMBEDDED_BROKER", "tansu")
    assert chosen_kind()[0] == "tansu"
    monkeypatch.setenv("LER_EMBEDDED_BROKER", "kafka")
    assert chosen_kind()[0] == "kafka"
    monkeypatch.setenv("LER_EMBEDDED_BROKER", "rabbit")
    with pytest.raises(ValueError, match="LER_EMBEDDED_BROKER"):
        chosen_kind()
    monkeypatch.delenv("LER_EMBEDDED_BROKER")
    monkeypatch.setenv("LER_KAFKA_LIBS", "/nonexistent")
    kind, why = chosen_kind()
    assert kind == "tansu"
    assert "/nonexistent" in why


def test_stores_are_kept_only_on_the_log_they_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_stores(tmp_path, "kafka:cluster-a", keep=False)
    assert "none there yet" in capsys.readouterr().out
    (tmp_path / "wallet.db").write_text("state")
    prepare_stores(tmp_path, "kafka:cluster-a", keep=False)
    assert "keeping the stores" in capsys.readouterr().out
    assert (tmp_path / "wallet.db").exists()
    prepare_stores(tmp_path, "kafka:cluster-b", keep=False)
    assert "they followed another broker log" in capsys.readouterr().out
    assert not (tmp_path / "wallet.db").exists()
    (tmp_path / "wallet.db").write_text("state")
    prepare_stores(tmp_path, "tansu:1234", keep=False)
    assert "memory-only" in capsys.readouterr().out
    assert not (tmp_path / "wallet.db").exists()


def test_cluster_ids_never_start_like_an_option() -> None:
    ids = [new_cluster_id() for _ in range(2000)]  # about 31 would start with "-" otherwise
    assert not [c for c in ids if c.startswith("-")]
    assert all(len(c) == 22 for c in ids)


def test_kafka_node_configuration_for_a_cluster(tmp_path: Path) -> None:
    cluster = KafkaBroker(nodes=3, data_dir=tmp_path)  # nothing is started: no JDK needed
    config = cluster.configuration(cluster.node(2))
    assert "process.roles=broker,controller" in config
    assert "node.id=2" in config
    assert "min.insync.replicas=2" in config
    assert "default.replication.factor=3" in config
    assert config.count("@127.0.0.1:") == 3
    # The ports are kept with the data, so a restart binds the same addresses.
    again = KafkaBroker(nodes=3, data_dir=tmp_path)
    assert again.bootstrap_servers == cluster.bootstrap_servers


def test_a_kafka_broker_without_its_jars_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LER_KAFKA_LIBS", str(tmp_path / "no-jars"))
    with pytest.raises(KafkaUnavailable, match="no-jars"):
        KafkaBroker(data_dir=tmp_path / "kafka").start()

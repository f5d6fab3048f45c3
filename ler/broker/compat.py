"""How the platform's Kafka clients differ by broker: every workaround for Tansu, in one place.

Selected by ``KAFKA_IMPLEMENTATION`` (``apache-kafka``, the default and production's, or
``tansu``, the fallback embedded broker). Against Apache Kafka every workaround is off. What each
one answers, measured on both brokers, is in docs/operations.md ("Brokers compared").
"""

from __future__ import annotations

from dataclasses import dataclass

from ler.settings import KafkaSettings


@dataclass(frozen=True)
class BrokerCompat:
    """What the clients must do differently on one broker implementation."""

    name: str
    # Fetch wait (ms) for consumers that need low latency; None keeps the client's default. Tansu
    # does not answer a waiting fetch when data arrives, so every event waited the whole default
    # (Faust asks 1.5 s): measured p50 396 ms at aiokafka's 500 ms default vs 3 ms at 50 ms.
    fetch_max_wait_ms: int | None
    # The idempotent producer (no duplicates from producer retries). Tansu answers aiokafka's
    # InitProducerId v0 with an error, so its producers cannot start with it.
    idempotent_producer: bool
    # Whether ListOffsets "latest" gives the log's end. Tansu answers the last batch's first
    # offset + 1, so log ends come from fetch responses' high-water marks instead.
    list_offsets_exact: bool


APACHE_KAFKA = BrokerCompat(
    name="Apache Kafka", fetch_max_wait_ms=None, idempotent_producer=True, list_offsets_exact=True
)
TANSU = BrokerCompat(
    name="Tansu", fetch_max_wait_ms=50, idempotent_producer=False, list_offsets_exact=False
)


def compat(kafka: KafkaSettings) -> BrokerCompat:
    """The workarounds in force for the cluster these settings point at."""
    base = TANSU if kafka.implementation == "tansu" else APACHE_KAFKA
    if kafka.enable_idempotence is None:
        return base
    return BrokerCompat(
        name=base.name,
        fetch_max_wait_ms=base.fetch_max_wait_ms,
        idempotent_producer=kafka.enable_idempotence,
        list_offsets_exact=base.list_offsets_exact,
    )

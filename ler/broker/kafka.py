"""Apache Kafka 4.x in KRaft mode, started from its Maven Central jars on 127.0.0.1.

The jars come from ``engines/kafka/pom.xml`` (``engines/setup kafka`` resolves them into
``$LER_ENGINES_DIR/kafka-<version>/libs``, or ``$LER_KAFKA_LIBS`` points at them). One node, or a
cluster of three where every node is both broker and controller (a quorum of three voters, so any
one node can die). Each node's log, configuration and output live under the data folder, so a
broker stopped (even by ``kill -9``) and started again on the same folder has everything it had.
Every process is started in its own session and stopped by its process id.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ler.broker.ports import free_port, wait_for_port
from ler.broker.process import BrokerProcess, terminate
from ler.settings import KafkaSettings

KAFKA_VERSION = "4.1.1"  # engines/kafka/pom.xml resolves the same version (a unit test checks)
MIN_JAVA = 17
JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
)
LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: org.apache.kafka.controller
        level: WARN
      - name: kafka.log.LogCleaner
        level: WARN
"""


class KafkaUnavailable(RuntimeError):
    """No JDK 17+ or no Apache Kafka jars on this machine."""


def engines_dir() -> Path:
    """Where ``engines/setup`` puts the engines it installs."""
    if value := os.environ.get("LER_ENGINES_DIR"):
        return Path(value)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ler-engines"


def kafka_libs() -> Path:
    """The folder of Apache Kafka's jars (``LER_KAFKA_LIBS``, else the engines cache)."""
    if value := os.environ.get("LER_KAFKA_LIBS"):
        return Path(value)
    return engines_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def java_binary() -> Path | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return Path(home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else None


def java_major(java: Path) -> int | None:
    done = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def kafka_available() -> str | None:
    """None when Apache Kafka can start here, else what is missing."""
    java = java_binary()
    if java is None:
        return "no java on PATH or JAVA_HOME"
    major = java_major(java)
    if major is None or major < MIN_JAVA:
        return f"{java} is Java {major}, Apache Kafka 4 needs {MIN_JAVA}+"
    libs = kafka_libs()
    if not (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        return f"no Apache Kafka {KAFKA_VERSION} jars in {libs} (run engines/setup kafka)"
    return None


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding. One that starts with
    "-" would be read as an option by the storage tool (1 in 64 did: a test saw it), so, as
    Kafka's own ``Uuid.randomUuid``, never that."""
    while True:
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster.startswith("-"):
            return cluster


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def properties(self) -> Path:
        return self.folder / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.folder / "log"

    @property
    def output(self) -> Path:
        return self.folder / "kafka.out"


class KafkaBroker(BrokerProcess):
    """Apache Kafka on 127.0.0.1: ``nodes`` KRaft nodes (1 or 3) with their logs on disk.

    ``port`` is the first node's client port (free ports otherwise); ``data_dir`` keeps every node's
    log and configuration (a temporary folder, removed on :meth:`stop`, when not given).
    """

    kind = "kafka"
    persistent = True

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        *,
        nodes: int = 1,
        data_dir: Path | None = None,
    ) -> None:
        if nodes not in (1, 3):
            raise ValueError("nodes: 1 or 3")
        self._owned_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="ler-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self.nodes = self._layout(nodes, port)

    def _layout(self, count: int, port: int | None) -> list[Node]:
        """Node ports: kept in the data folder, so a restart binds the same addresses."""
        saved = self.data_dir / "ports"
        if saved.exists():
            pairs = [tuple(map(int, line.split())) for line in saved.read_text().splitlines()]
            if len(pairs) == count and (port is None or pairs[0][0] == port):
                return [
                    Node(i + 1, p, c, self.data_dir / f"node-{i + 1}")
                    for i, (p, c) in enumerate(pairs)
                ]
        nodes = [
            Node(
                i + 1,
                port if (i == 0 and port) else free_port(),
                free_port(),
                self.data_dir / f"node-{i + 1}",
            )
            for i in range(count)
        ]
        saved.write_text("".join(f"{n.port} {n.controller_port}\n" for n in nodes))
        return nodes

    @property
    def port(self) -> int:
        return self.nodes[0].port

    def client_settings(self) -> KafkaSettings:
        """Settings for the platform's clients of this broker."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap_servers, implementation="apache-kafka"
        )

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The first node's process (the only one of a single-node broker)."""
        return self.nodes[0].process

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id - 1]

    def configuration(self, node: Node) -> str:
        count = len(self.nodes)
        replicas = min(3, count)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        settings = {
            "process.roles": "broker,controller",
            "node.id": node.node_id,
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": node.log_dir,
            "num.partitions": 4,
            "default.replication.factor": replicas,
            "min.insync.replicas": 2 if count == 3 else 1,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": 2 if count == 3 else 1,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": 2 if count == 3 else 1,
            "auto.create.topics.enable": "false",
            "group.initial.rebalance.delay.ms": 0,
            "unclean.leader.election.enable": "false",
            "log.segment.bytes": 64 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, *args: str) -> list[str]:
        java = java_binary()
        assert java is not None
        log4j = self.data_dir / "log4j2.yaml"
        return [
            str(java),
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{kafka_libs()}/*",
            *args,
        ]

    def _format(self, node: Node) -> None:
        """Write the node's configuration; format its storage the first time."""
        node.folder.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.yaml").write_text(LOG4J2)
        node.properties.write_text(self.configuration(node))
        if (node.log_dir / "meta.properties").exists():
            return
        id_file = self.data_dir / "cluster-id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id())
        done = subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                id_file.read_text().strip(),
                "-c",
                str(node.properties),
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"formatting Kafka node {node.node_id} failed: {done.stdout}{done.stderr}"
            )

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Start one node (formatting its storage on first use) and wait for its client port."""
        node = self.node(node_id)
        if node.process is None or node.process.poll() is not None:
            self._format(node)
            self._spawn(node)
        self._wait(node, timeout)

    def _wait(self, node: Node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert node.process is not None
            if node.process.poll() is not None:
                raise RuntimeError(
                    f"Kafka node {node.node_id} exited with {node.process.returncode}; "
                    f"see {self._output(node)}"
                )
            try:
                wait_for_port(node.port, 0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    self.kill_node(node.node_id)
                    raise TimeoutError(
                        f"Kafka node {node.node_id} not listening after {timeout} s"
                    ) from None

    def start(self, timeout: float = 90.0) -> KafkaBroker:
        """Start every node. Nodes of a cluster start together (each waits for a quorum).
        Raises :class:`KafkaUnavailable` where no JDK 17+ or no Kafka jars are present."""
        problem = kafka_available()
        if problem is not None:
            raise KafkaUnavailable(problem)
        try:
            for node in self.nodes:
                self._format(node)
            for node in self.nodes:
                if node.process is None or node.process.poll() is not None:
                    self._spawn(node)
            for node in self.nodes:
                self._wait(node, timeout)
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def _output(self, node: Node) -> Path:
        return self.log_path if (self.log_path and len(self.nodes) == 1) else node.output

    def _spawn(self, node: Node) -> None:
        with open(self._output(node), "ab") as output:
            node.process = subprocess.Popen(
                self._java("kafka.Kafka", str(node.properties)),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def kill_node(self, node_id: int) -> None:
        """``kill -9`` one node: no controlled shutdown, nothing flushed."""
        node = self.node(node_id)
        process, node.process = node.process, None
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def stop_node(self, node_id: int, timeout: float = 30.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), then SIGKILL after ``timeout``."""
        node = self.node(node_id)
        process, node.process = node.process, None
        if process is not None:
            terminate(process, timeout)

    def stop(self, timeout: float = 30.0, *, remove: bool = True) -> None:
        """Stop every node; a temporary data folder is removed afterwards."""
        running = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        for node in running:
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(node.process.pid, signal.SIGKILL)
                node.process.wait()
        for node in self.nodes:
            node.process = None
        if remove and self._owned_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

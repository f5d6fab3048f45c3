"""``ler run``: the whole platform on its embedded defaults, as separate processes.

Starts the embedded broker (Apache Kafka with its log under the data folder where a JDK 17+ is
present, else Tansu in memory; ``LER_EMBEDDED_BROKER=kafka|tansu`` chooses), creates the topics,
starts every service API and every stream processor, waits until all are ready, prints where to
look, and on SIGINT or SIGTERM stops every process it started (SIGTERM, then SIGKILL after a grace
period) so none is left behind. With Apache Kafka the stores are kept across runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ler.broker import KafkaBroker, TansuBroker, chosen_kind, embedded_broker, wait_for_port
from ler.broker.kafka import KAFKA_VERSION
from ler.kafka import create_topics
from ler.settings import KafkaSettings, PlatformSettings, load

GRACE_SECONDS = 12.0
# Stream processors: (name for `ler process`, health port variable, default port).
PROCESSORS = (
    ("wallet", "WALLET_PROCESSOR_HEALTH_PORT", 8013),
    ("verification", "VERIFICATION_PROCESSOR_HEALTH_PORT", 8012),
    ("sla", "VERIFICATION_SLA_PROCESSOR_HEALTH_PORT", 8014),
    ("notifications", "NOTIFICATIONS_PROCESSOR_HEALTH_PORT", 8015),
    ("partner-feed", "NOTIFICATIONS_PARTNER_FEED_HEALTH_PORT", 8016),
)


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None


def admin_token(platform: PlatformSettings) -> str:
    """``LER_ADMIN_TOKEN``, or in the embedded mode one generated once and kept under var/."""
    if platform.admin_token is not None:
        return platform.admin_token.get_secret_value()
    path = platform.data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = f"ler_admin_{secrets.token_urlsafe(32)}"
    path.write_text(token + "\n")
    path.chmod(0o600)
    print(f"generated the admin token (stored in {path}): {token}")
    return token


def port_setting(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def children(platform: PlatformSettings, kafka: KafkaSettings, token: str) -> list[Child]:
    logs = platform.data_dir / "log"
    logs.mkdir(parents=True, exist_ok=True)
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k != "DATABASE_URL" and not k.endswith("_DATABASE_URL")
    }
    # The embedded platform keeps its stores under var/ (see prepare_stores).
    base = {
        **inherited,
        **kafka.environment(),
        "LER_ADMIN_TOKEN": token,
        "LER_DATA_DIR": str(platform.data_dir.resolve()),
        "PYTHONUNBUFFERED": "1",
    }
    # The issuer's did:web names the host and port its DID document is served from.
    verification_port = port_setting("VERIFICATION_PORT", 8002)
    base.setdefault("VERIFICATION_PUBLIC_URL", f"http://127.0.0.1:{verification_port}")
    base.setdefault("VERIFICATION_DID", f"did:web:127.0.0.1%3A{verification_port}")
    base.setdefault(
        "LER_ENROLLMENT_URL", f"http://127.0.0.1:{port_setting('ENROLLMENT_PORT', 8001)}"
    )
    processors = [
        (name, health, port_setting(health, default)) for name, health, default in PROCESSORS
    ]
    # The ops dashboard (verification) asks each processor's health port for its lag.
    base.setdefault(
        "VERIFICATION_OPS_PROCESSORS",
        ",".join(f"{name}=http://127.0.0.1:{port}" for name, _, port in processors),
    )
    out = []
    for name, default in (
        ("enrollment", 8001),
        ("verification", 8002),
        ("wallet", 8003),
        ("notifications", 8004),
    ):
        port = port_setting(f"{name.upper()}_PORT", default)
        out.append(
            Child(
                name=f"{name}-api",
                args=[sys.executable, "-m", "ler.cli", "serve", name],
                env={**base, f"{name.upper()}_PORT": str(port)},
                health_url=f"http://127.0.0.1:{port}/readyz",
                log_path=logs / f"{name}-api.log",
            )
        )
    for name, health, port in processors:
        out.append(
            Child(
                name=f"{name}-processor",
                args=[sys.executable, "-m", "ler.cli", "process", name],
                env={**base, health: str(port)},
                health_url=f"http://127.0.0.1:{port}/readyz",
                log_path=logs / f"{name}-processor.log",
            )
        )
    return out


def start(child: Child) -> None:
    with open(child.log_path, "ab") as log:
        child.process = subprocess.Popen(
            child.args,
            env=child.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (local URL)
            return bool(response.status == 200)
    except OSError:
        return False


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every process group, then SIGKILL what is still there after ``grace`` seconds."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait()


STORES_LOG = "stores-log"  # which broker log the stores under the data folder follow


def broker_log_identity(broker: KafkaBroker | TansuBroker) -> str:
    """An id of the log a started broker holds: Kafka's cluster id; Tansu's is new every run."""
    if isinstance(broker, KafkaBroker):
        return "kafka:" + (broker.data_dir / "cluster-id").read_text().strip()
    return f"tansu:{secrets.token_hex(8)}"


def prepare_stores(data: Path, identity: str, keep: bool) -> None:
    """Keep the stores when they follow the log this broker holds; otherwise start them clean and
    say so. Stores that remember positions in a log that no longer exists would silently miss
    events (``BrokerBehindStore`` refuses them; this avoids meeting it)."""
    marker = data / STORES_LOG
    stores = [p for p in data.glob("*.db*") if p.is_file()]
    followed = marker.read_text().strip() if marker.exists() else None
    if not stores:
        print(f"starting with clean stores under {data}/ (none there yet)")
    elif followed == identity or keep:
        print(f"keeping the stores under {data}/ (they follow this broker's log)")
    else:
        for path in stores:
            path.unlink()
        why = (
            "the embedded broker is memory-only"
            if identity.startswith("tansu:")
            else "they followed another broker log"
        )
        print(f"starting with clean stores under {data}/: {why}")
    marker.write_text(identity + "\n")


def run_platform(*, keep_data: bool = False) -> int:
    platform = load(PlatformSettings)
    kafka = load(KafkaSettings)
    if platform.env == "production":
        print("ler run starts the embedded platform; refused with LER_ENV=production")
        return 2
    data = platform.data_dir
    (data / "log").mkdir(parents=True, exist_ok=True)
    kind, why = chosen_kind()
    token = admin_token(platform)
    broker_port = int(kafka.bootstrap_servers.rsplit(":", 1)[1])
    broker = embedded_broker(
        kind, port=broker_port, data_dir=data / "kafka", log_path=data / "log" / "broker.log"
    )
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        print(f"starting {describe(broker)} ({why}) ...", flush=True)
        broker.start()
        wait_for_port(broker_port, 20)
        kafka = kafka.model_copy(
            update={
                "bootstrap_servers": broker.bootstrap_servers,
                "implementation": broker.client_settings().implementation,
            }
        )
        prepare_stores(data, broker_log_identity(broker), keep_data)
        asyncio.run(create_topics(kafka, platform))
        kids = children(platform, kafka, token)
        for child in kids:
            start(child)
            assert child.process is not None
            processes.append(child.process)
        if not wait_ready(kids, data, lambda: stopping):
            return 1
        if stopping:
            return 0
        print_urls(kids, broker, data)
        while not stopping:
            for child in kids:
                assert child.process is not None
                if child.process.poll() is not None:
                    print(
                        f"{child.name} stopped ({child.process.returncode}); see {child.log_path}"
                    )
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        print("stopping the platform ...", flush=True)
        stop_all(processes)
        broker.stop()
        print("stopped.", flush=True)


def wait_ready(kids: list[Child], data: Path, stopping: Callable[[], bool]) -> bool:
    """Wait up to 90 s for every child's readiness; False (and why, printed) if one fails."""
    deadline = time.monotonic() + 90
    waiting = list(kids)
    while waiting and not stopping():
        for child in list(waiting):
            assert child.process is not None
            if child.process.poll() is not None:
                print(f"{child.name} exited with {child.process.returncode}; see {child.log_path}")
                return False
            if ready(child.health_url):
                waiting.remove(child)
        if time.monotonic() > deadline:
            names = ", ".join(c.name for c in waiting)
            print(f"not ready after 90 s: {names}; see the logs under {data / 'log'}")
            return False
        time.sleep(0.2)
    return True


def describe(broker: KafkaBroker | TansuBroker) -> str:
    if isinstance(broker, KafkaBroker):
        return f"Apache Kafka {KAFKA_VERSION} (KRaft, log in {broker.data_dir})"
    return "Tansu (embedded, memory only)"


def print_urls(kids: list[Child], broker: KafkaBroker | TansuBroker, data: Path) -> None:
    print("\nThe LER platform is up (embedded mode).")
    print(f"  Kafka: {describe(broker)}: {broker.bootstrap_servers}")
    for child in kids:
        base = child.health_url.removesuffix("/readyz")
        if child.name.endswith("-api"):
            print(f"  {child.name:<24} {base}/docs  (OpenAPI: {base}/openapi.json)")
        else:
            print(f"  {child.name:<24} {base}/healthz  (lag: {base}/lag)")
        if child.name == "verification-api":
            print(f"  {'ops dashboard':<24} {base}/ops  (admin token or VERIFICATION_OPS_TOKEN)")
        if child.name == "wallet-api":
            print(f"  {'wallet page':<24} {base}/wallet")
    print(f"  logs: {data / 'log'}/    admin token: {data / 'admin-token'} or LER_ADMIN_TOKEN")
    print("Ctrl-C stops everything.\n", flush=True)

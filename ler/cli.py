"""The ``ler`` command line: run the platform, one service, one processor, the broker, a replay.

Services are found by module path (the kit never imports a service statically).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from ler.logs import configure
from ler.settings import KafkaSettings, PlatformSettings, ServiceSettings, SettingsError, load

log = logging.getLogger("ler")

# name -> (settings class path, API factory path)
APIS: dict[str, tuple[str, str]] = {
    "enrollment": (
        "services.enrollment.settings:EnrollmentSettings",
        "services.enrollment.bootstrap:api",
    ),
    "verification": (
        "services.verification.settings:VerificationSettings",
        "services.verification.bootstrap:api",
    ),
    "wallet": ("services.wallet.settings:WalletSettings", "services.wallet.bootstrap:api"),
    "notifications": (
        "services.notifications.settings:NotificationsSettings",
        "services.notifications.bootstrap:api",
    ),
}
PROCESSORS: dict[str, str] = {
    "wallet": "services.wallet.bootstrap:processor",
    "verification": "services.verification.bootstrap:processor",
    "sla": "services.verification.bootstrap:sla_processor",
    "notifications": "services.notifications.bootstrap:processor",
    "partner-feed": "services.notifications.bootstrap:partner_feed",
}
REPLAYS: dict[str, str] = {
    "wallet": "services.wallet.replay:replay",
    "notifications": "services.notifications.replay:replay_notifications",
    "partner-feed": "services.notifications.replay:replay_partner_feed",
    "sla": "services.verification.replay:replay_sla",
    "verification": "services.verification.rebuild:replay_verification",
}


def resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings_path, factory_path = APIS[args.service]
    settings: ServiceSettings = load(resolve(settings_path))
    factory: Callable[[], Any] = resolve(factory_path)
    app = factory()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=5,
    )
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    from ler.streams import run_worker

    platform = load(PlatformSettings)
    app = resolve(PROCESSORS[args.processor])()
    run_worker(app, platform.log_level)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    replay = resolve(REPLAYS[args.projection])
    count: int = asyncio.run(replay(args.database_url))
    print(f"replayed {count} messages into the {args.projection} projection")
    return 0


def cmd_topics(_: argparse.Namespace) -> int:
    from ler.kafka import create_topics

    created = asyncio.run(create_topics(load(KafkaSettings), load(PlatformSettings)))
    print("created: " + (", ".join(created) if created else "nothing (all topics exist)"))
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    import signal
    import threading
    from pathlib import Path

    from ler.broker import BrokerKind, chosen_kind, embedded_broker

    kind: BrokerKind
    kind, why = ("kafka", "--kafka") if args.kafka else chosen_kind()
    if args.tansu:
        kind, why = "tansu", "--tansu"
    data = Path(args.data_dir) if args.data_dir else load(PlatformSettings).data_dir / "kafka"
    broker = embedded_broker(
        kind, port=args.port, nodes=args.nodes, data_dir=data if kind == "kafka" else None
    ).start()
    where = f"log in {data}" if kind == "kafka" else "memory only"
    print(f"{kind} broker ({why}; {where}) on {broker.bootstrap_servers}; Ctrl-C stops it")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1) and broker.process and broker.process.poll() is None:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from ler.launcher import run_platform

    return run_platform(keep_data=args.keep_data)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ler", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="start the whole platform on its embedded defaults")
    run.add_argument(
        "--keep-data",
        action="store_true",
        help="keep the stores under var/ even on a memory-only broker (only for an external Kafka)",
    )
    run.set_defaults(func=cmd_run)

    serve = sub.add_parser("serve", help="run one service's HTTP API")
    serve.add_argument("service", choices=sorted(APIS))
    serve.set_defaults(func=cmd_serve)

    process = sub.add_parser("process", help="run one stream processor (a Faust worker)")
    process.add_argument("processor", choices=sorted(PROCESSORS))
    process.set_defaults(func=cmd_process)

    replay = sub.add_parser(
        "replay", help="rebuild a projection from the topics into an empty store"
    )
    replay.add_argument("projection", choices=sorted(REPLAYS))
    replay.add_argument("--database-url", help="the empty store to fill (default: the service's)")
    replay.set_defaults(func=cmd_replay)

    topics = sub.add_parser("topics", help="create the platform's topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=cmd_topics)

    broker = sub.add_parser(
        "broker",
        help="run a broker on this machine: Apache Kafka (KRaft, log on disk) or Tansu (memory only)",
    )
    which = broker.add_mutually_exclusive_group()
    which.add_argument("--kafka", action="store_true", help="Apache Kafka (default with a JDK)")
    which.add_argument("--tansu", action="store_true", help="Tansu, memory only")
    broker.add_argument("--nodes", type=int, choices=[1, 3], default=1, help="Kafka nodes")
    broker.add_argument("--port", type=int, default=9092, help="the first node's client port")
    broker.add_argument("--data-dir", help="Kafka's data folder (default: LER_DATA_DIR/kafka)")
    broker.set_defaults(func=cmd_broker)

    from ler.dlq_cli import add_parser as add_dlq
    from ler.migrate_cli import add_parser as add_migrate

    add_dlq(sub)
    add_migrate(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        platform = load(PlatformSettings)
        configure(platform.log_level)
        result: int = args.func(args)
        return result
    except SettingsError as exc:
        print(f"ler: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

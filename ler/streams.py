"""Faust wiring: one Faust app per processor, fed in batches to the kit's :class:`Runner`.

Faust owns the consumer group, the assignment, rebalances and flow control. Whole fetches go
straight from its consumer to a single committer (raw bytes, so that undecodable messages reach
the dead-letter topic instead of crashing anything), not message by message through Faust's
streams. On every assignment the consumer checks that the broker's log is the one the store
followed and seeks to the positions the processor's own database holds; the outbox relay runs
beside the committer. Durable state never lives in a Faust table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
from faust.sensors.monitor import Monitor
from faust.serializers import codecs
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AiokafkaConsumer
from faust.types import TP as TP_

from ler import telemetry
from ler.avro import AvroCodec, AvroError, default_codec
from ler.broker.compat import compat
from ler.health import serve_health
from ler.kafka import client_options, log_ends_and_marks, started_producer
from ler.outbox import OutboxRelay
from ler.processing import TP, Message, Processor, ProcessorStore, Runner
from ler.settings import KafkaSettings, PlatformSettings

log = logging.getLogger(__name__)

LAG_INTERVAL = 5.0


class BrokerBehindStore(RuntimeError):
    """The processor's store has applied offsets the broker's log does not hold.

    The broker lost data (Tansu, the fallback broker, keeps everything in memory and loses it when it
    restarts) or the processor points at another cluster. Consuming on would skip or misapply
    events silently, so the worker stops: start the processor on an empty store and rebuild it
    from the log (``ler replay <projection>``), or point it back at the cluster its store followed.
    """


async def check_broker_holds(
    processor: str, kafka: KafkaSettings, positions: dict[TP, int], marks: dict[TP, int]
) -> None:
    """Raise :class:`BrokerBehindStore` if a partition's log ends at or before the stored
    offset, or holds another message there than the one the store applied."""
    if not positions:
        return
    seen = await log_ends_and_marks(kafka, positions)
    problems = []
    for tp, offset in sorted(positions.items()):
        end, mark = seen[tp]
        if end <= offset:
            problems.append(
                f"{tp[0]}[{tp[1]}]: store applied offset {offset}, broker log ends at {end}"
            )
        elif mark is not None and tp in marks and marks[tp] != mark:
            problems.append(
                f"{tp[0]}[{tp[1]}]: the broker log holds another message at offset {offset} than "
                "the one the store applied"
            )
    if problems:
        raise BrokerBehindStore(
            f"{processor}: the broker holds less than this processor's store has applied, or "
            f"another log ({'; '.join(problems)}). The broker lost its log (an embedded broker that "
            "restarted keeps nothing) or this is another cluster. Refusing to consume: start on an "
            "empty store and rebuild it from the log (ler replay), or point "
            "KAFKA_BOOTSTRAP_SERVERS at the cluster this store followed."
        )


class FaustAvroCodec(codecs.Codec):
    """Faust codec over the platform's Avro single-object encoding (``ler-avro``)."""

    def __init__(self, codec: AvroCodec | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._codec = codec

    @property
    def codec(self) -> AvroCodec:
        return self._codec or default_codec()

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, dict):
            raise AvroError(f"ler-avro encodes event dicts, not {type(obj).__name__}")
        return self.codec.encode(obj)

    def _loads(self, data: bytes) -> Any:
        return self.codec.decode(data)


codecs.register("ler-avro", FaustAvroCodec())


PENDING_BATCHES = 4
KAFKA_COMMIT_INTERVAL = 2.8  # seconds, Faust's default commit interval


class ShortPollConsumerThread(AIOKafkaConsumerThread):
    """Faust's consumer with the fetch wait of ``ler.broker.compat`` (Tansu only).

    Faust asks the broker to hold fetches up to 1.5 s; Tansu does not answer a waiting fetch when
    data arrives, which would add that wait to every event's latency. Apache Kafka answers as soon
    as data arrives, so there Faust's own consumer runs unchanged.
    """

    fetch_max_wait_ms = 50

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.fetch_max_wait_ms
        return consumer


class QuietMonitor(Monitor):
    """Faust's monitor without its per-event bookkeeping.

    The platform measures events, processing time and lag itself (ler.telemetry); Faust's own
    per-message counters and timings cost a measurable share of a processor's CPU and nobody
    reads them (its web views are off).
    """

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        return None

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None


def faust_broker(kafka: KafkaSettings) -> tuple[str, Any]:
    """Faust's broker URL and credentials for the same cluster the aiokafka clients use."""
    servers = ";".join(f"kafka://{s.strip()}" for s in kafka.bootstrap_servers.split(","))
    credentials: Any = None
    options = client_options(kafka)
    if kafka.security_protocol.startswith("SASL"):
        credentials = faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=options.get("ssl_context"),
        )
    elif kafka.security_protocol == "SSL":
        credentials = faust.SSLCredentials(options["ssl_context"])
    return servers, credentials


def build_app(
    runner: Runner[Any],
    store: ProcessorStore[Any],
    kafka: KafkaSettings,
    platform: PlatformSettings,
    *,
    batch_size: int = 500,
    batch_window: float = 0.02,
    health_port: int | None = None,
    health_host: str = "127.0.0.1",
) -> faust.App:
    """A Faust app running one processor: seek on assignment, batch, commit, relay."""
    processor: Processor[Any] = runner.processor
    telemetry.configure_from_environment(f"ler-{processor.name}-processor")
    broker, credentials = faust_broker(kafka)
    app = faust.App(
        f"ler-{processor.name}",
        broker=broker,
        broker_credentials=credentials,
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        topic_replication_factor=platform.topic_replication_factor,
        broker_session_timeout=10,
        broker_heartbeat_interval=3,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=1_000_000,
        store="memory://",
        datadir=str(Path(platform.data_dir) / "faust" / processor.name),
        loghandlers=[],
        monitor=QuietMonitor(),
    )
    Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)

    wait_ms = compat(kafka).fetch_max_wait_ms
    refused: BrokerBehindStore | None = None
    checked: frozenset[TP] | None = None  # the assignment last found to be on the store's log
    # The consumer hands whole fetches over and goes on reading while the previous batch
    # commits; a single committer keeps them in order and merges what piled up into one
    # transaction. The positions that count are the ones committed with the state (a crash
    # re-reads from those); Kafka's committed offsets follow them (see commit_kafka_offsets).
    pending: asyncio.Queue[list[Message]] = asyncio.Queue(maxsize=PENDING_BATCHES)

    async def check_log(assigned: Iterable[Any], positions: dict[TP, int]) -> None:
        """Refuse a log that is not the one the store followed (see BrokerBehindStore)."""
        nonlocal checked, refused
        mine = frozenset((tp.topic, tp.partition) for tp in assigned)
        if checked == mine:
            return  # Faust seeks more than once per rebalance; one check per assignment
        try:
            await check_broker_holds(
                processor.name,
                kafka,
                {tp: offset for tp, offset in positions.items() if tp in mine},
                await store.position_marks(),
            )
        except BrokerBehindStore as exc:
            refused = exc
            raise
        checked = mine

    class StoredPositionsConsumer(AiokafkaConsumer):
        """Faust resumes every rebalance by seeking to the offsets committed in Kafka; here that
        step seeks to the positions the processor's own database holds instead (the database is
        the only record of what was applied; Kafka's committed offsets may belong to another
        store, or lag behind it). Faust takes this step before it lets the stream flow again, so
        the log is checked here too: no message of an assignment is applied before its check."""

        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            if wait_ms is None:
                return super()._new_consumer_thread()
            thread = ShortPollConsumerThread(self, loop=self.loop, beacon=self.beacon)
            thread.fetch_max_wait_ms = wait_ms
            return thread

        async def seek_to_committed(self) -> Mapping[Any, int]:
            assigned = self.assignment()
            await open_store()
            positions = await runner.load_positions()
            await check_log(assigned, positions)
            offsets = {tp: positions.get((tp.topic, tp.partition), -1) + 1 for tp in assigned}
            await self.seek_to(offsets)
            return offsets

        async def _drain_messages(self, fetcher: Any) -> None:
            """Hand each fetch to the committer whole.

            Faust's own loop delivers a fetch message by message through its conductor, topic
            channel and stream, with two tasks and an ``asyncio.wait`` per message: more CPU than
            decoding and applying the event (measured: a bare Faust agent tops out near 9,000
            events/s on this machine; the raw consumer reads 340,000/s). A processor applies
            batches and keeps its own positions, so nothing of that path is needed. Faust still
            owns the group, the assignment, the seeks (``seek_to_committed``) and flow control:
            ``getmany`` yields nothing while a rebalance holds the flow.
            """
            consumer_stopped = self._stopped.is_set
            fetcher_stopped = fetcher._stopped.is_set
            inbound = self.app.monitor.stream_inbound_time  # Faust's livelock detector reads it
            try:
                while not (consumer_stopped() or fetcher_stopped()):
                    fetched = [_message(m) async for _, m in self.getmany(timeout=1.0)]
                    await asyncio.sleep(0)
                    if fetched:
                        now = time.monotonic()
                        for topic, part in {m.tp for m in fetched}:
                            inbound[TP_(topic, part)] = now
                        # A fetch can hold everything prefetched (measured: 13,000 records):
                        # batches keep the configured size, so transactions stay short.
                        for start in range(0, len(fetched), batch_size):
                            await pending.put(fetched[start : start + batch_size])
            except self.consumer_stopped_errors:
                if self.transport.app.should_stop:
                    return
                raise
            except asyncio.CancelledError:
                if self.transport.app.should_stop:
                    return
                raise

        async def seek_to(self, offsets: Mapping[Any, int]) -> None:
            """Seek in the consumer's own thread: aiokafka's fetcher is not thread-safe, and
            Faust's plain ``seek`` runs on the calling thread (measured: a KeyError inside
            aiokafka's fetcher when a seek raced a fetch)."""
            if offsets:
                await self._thread.seek_wait(offsets)

    app.transport.Consumer = StoredPositionsConsumer  # type: ignore[misc]  # this app only
    topic = app.topic(
        *[t.name for t in processor.topics], key_serializer="raw", value_serializer="raw"
    )
    ready = asyncio.Event()
    assigned_once = asyncio.Event()

    async def open_store() -> None:
        if not ready.is_set():
            await store.open()
            await runner.load_positions()
            ready.set()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        # The check and the seek happen in seek_to_committed, before the stream flows.
        assigned_once.set()
        log.info(
            "%s: assigned %d partitions; resuming from stored positions",
            processor.name,
            len(assigned),
        )

    # Faust subscribes the topics its agents read. Messages reach the committer through
    # _drain_messages; were Faust to deliver through the stream, they would still arrive here.
    @app.agent(topic, name=f"{processor.name}-agent")
    async def consume(stream: Any) -> None:
        await open_store()
        async for events in stream.take_events(batch_size, within=batch_window):
            await pending.put([_message(e.message) for e in events])

    @app.task  # type: ignore[untyped-decorator]
    async def commit_batches() -> None:
        await open_store()
        while True:
            messages = await pending.get()
            while not pending.empty() and len(messages) < batch_size * PENDING_BATCHES:
                messages += pending.get_nowait()
            if refused:
                continue  # this log is not the store's: nothing of it is applied (worker stops)
            await runner.process(messages)
            commit_kafka_offsets()

    last_kafka_commit = 0.0
    kafka_commit: asyncio.Task[Any] | None = None

    def commit_kafka_offsets() -> None:
        """Commit the applied positions to Kafka too, every few seconds and beside the committer
        (never in its way): the store's positions are what the processor resumes from, Kafka's
        are for the cluster's own lag tooling."""
        nonlocal last_kafka_commit, kafka_commit
        now = time.monotonic()
        if now - last_kafka_commit < KAFKA_COMMIT_INTERVAL or (
            kafka_commit is not None and not kafka_commit.done()
        ):
            return
        last_kafka_commit = now
        offsets = {
            tp: runner.applied[(tp.topic, tp.partition)] + 1
            for tp in app.consumer.assignment()
            if (tp.topic, tp.partition) in runner.applied
        }
        if offsets:
            kafka_commit = asyncio.create_task(app.consumer._commit(offsets))  # type: ignore[attr-defined]

    @app.task  # type: ignore[untyped-decorator]
    async def relay_outbox() -> None:
        await open_store()
        client_id = f"ler-{processor.name}-relay"
        producer = await started_producer(kafka, client_id)
        relay = OutboxRelay(
            store.outbox_source(),
            None,
            producer,
            reconnect=lambda: started_producer(kafka, client_id),
        )
        runner.on_committed.append(relay.wake)
        try:
            await relay.run()
        finally:
            await producer.stop()

    @app.timer(LAG_INTERVAL)  # type: ignore[untyped-decorator]
    async def measure_lag() -> None:
        measure_consumer_lag(app, runner)

    if health_port:

        @app.task  # type: ignore[untyped-decorator]
        async def health() -> None:
            server = await serve_health(
                health_port,
                assigned_once.is_set,
                health_host,
                endpoints={"/lag": lambda: lag_report(app, runner)},
                stalled=lambda: runner.stall.report() if runner.stall else None,
            )
            async with server:
                await server.serve_forever()

    return app


def partition_lags(app: faust.App, runner: Runner[Any]) -> list[tuple[TP, int, int | None]]:
    """Per assigned partition: the last offset applied (-1: none) and the fetch high-water mark
    (None until the first fetch answer for that partition)."""
    try:
        assigned = app.consumer.assignment()
    except Exception:
        return []  # not consuming yet
    out: list[tuple[TP, int, int | None]] = []
    for tp in assigned:
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:
            highwater = None
        applied = runner.applied.get((tp.topic, tp.partition), -1)
        out.append(
            ((tp.topic, tp.partition), applied, None if highwater is None else int(highwater))
        )
    return sorted(out)


def measure_consumer_lag(app: faust.App, runner: Runner[Any]) -> dict[TP, int]:
    """Lag per assigned partition: the fetch high-water mark minus the next offset to apply."""
    group = f"ler-{runner.processor.name}"
    out: dict[TP, int] = {}
    for (topic, partition), applied, highwater in partition_lags(app, runner):
        if highwater is None:
            continue  # no fetch answer yet for this partition
        lag = max(highwater - (applied + 1), 0)
        out[(topic, partition)] = lag
        telemetry.consumer_lag(group, topic, partition, lag)
    return out


def lag_report(app: faust.App, runner: Runner[Any]) -> dict[str, Any]:
    """What ``GET /lag`` on a processor's health port answers: its consumer group and, per
    assigned partition, the offset applied, the fetch high-water mark and the lag (null while
    unknown). Ids and counts only."""
    partitions = [
        {
            "topic": topic,
            "partition": partition,
            "applied_offset": applied if applied >= 0 else None,
            "highwater": highwater,
            "lag": None if highwater is None else max(highwater - (applied + 1), 0),
        }
        for (topic, partition), applied, highwater in partition_lags(app, runner)
    ]
    return {
        "processor": runner.processor.name,
        "group": f"ler-{runner.processor.name}",
        "measured_at": datetime.now(UTC).isoformat(),
        "partitions": partitions,
        # Stopped on a failure it retries (no event is dead-lettered for it), or null.
        "stalled": runner.stall.report() if runner.stall else None,
    }


def _message(raw: Any) -> Message:
    return Message(
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        headers=tuple((k, v) for k, v in (raw.headers or ())),
        timestamp_ms=int(raw.timestamp * 1000) if raw.timestamp else None,
    )


def run_worker(app: faust.App, loglevel: str = "INFO") -> None:
    """Run a Faust worker in this process until SIGINT or SIGTERM."""
    app.finalize()
    worker = faust.Worker(
        app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.execute_from_commandline()

"""``ler replay sla``: rebuild the SLA processor's store from the topics into an empty store.

Items open and close from ``ler.records.v1`` and ``ler.verification.v1`` (the inputs, replayed
through the processor's own rules). When an item was warned or breached comes from the SLA
processor's event-time clock ticking on the wall clock, which a replay cannot re-run; those
times are read back from what the processor published, ``SlaWarning`` / ``SlaBreached`` on
``ler.sla.v1`` (whose ``occurred_at`` is the time it stored), after the inputs are applied.
Nothing is published again. See docs/operations.md, "Disaster recovery".
"""

from __future__ import annotations

from ler.avro import AvroCodec, AvroError, default_codec
from ler.processing import Message
from ler.replay import read_log
from ler.replay import replay as replay_log
from ler.settings import KafkaSettings
from ler.topics import SLA
from services.verification.bootstrap import bootstrap, new_sla_runner
from services.verification.sla import MARKS, ItemMarked
from services.verification.sla_store import SlaStore


async def replay_sla_store(store: SlaStore, kafka: KafkaSettings) -> int:
    """Replay the inputs into ``store`` (empty), then the warning and breach times."""
    read = await replay_log(new_sla_runner(store, emit=False), kafka)
    codec = default_codec()

    async def marks(messages: list[Message]) -> None:
        found = [m for m in (_mark(codec, message) for message in messages) if m is not None]
        if found:
            await store.mark(found)

    return read + await read_log(kafka, [SLA.name], marks)


def _mark(codec: AvroCodec, message: Message) -> ItemMarked | None:
    try:
        record = codec.decode(message.value or b"")
    except AvroError:
        return None  # the live processor wrote it; nothing undecodable was ever there
    column = MARKS.get(str(record.get("event_type")))
    if column is None:
        return None
    return ItemMarked(str(record["item_id"]), column, record["occurred_at"])


async def replay_sla(database_url: str | None = None) -> int:
    ctx = bootstrap(database_url=database_url)
    try:
        return await replay_sla_store(ctx.sla_store, ctx.kafka)
    finally:
        await ctx.sla_store.close()

"""The processor runner: redelivery, dead letters, stale positions and poison events."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from ler.avro import AvroError, default_codec
from ler.envelope import event, new_envelope
from ler.processing import (
    REASON_HEADER,
    TP,
    Batch,
    Event,
    InvalidEvent,
    Message,
    Processor,
    ProcessorStore,
    Runner,
    StalePositions,
    message_mark,
)
from ler.sql import is_transient
from ler.topics import ENROLLMENT

pytestmark = pytest.mark.unit
CODEC = default_codec()


class Counter(Processor[str]):
    """Turns each ConsentChanged into a change naming its person; rejects consents by 'admin'."""

    name = "counter"
    topics = (ENROLLMENT,)

    def changes(self, event: Event) -> Sequence[str]:
        if event.record["changed_by"] == "admin":
            raise InvalidEvent("changed_by: admin consents are not counted")
        return [str(event.record["person_id"])]


class MemoryOutbox:
    """The outbox port over a list (what a relay would publish)."""

    name = "memory_outbox"

    def __init__(self, messages: list[Any]) -> None:
        self.messages = messages

    async def pending(self) -> int:
        return len(self.messages)

    @contextlib.asynccontextmanager
    async def claim(self, limit: int) -> AsyncIterator[list[Any]]:
        rows = self.messages[:limit]
        yield rows
        del self.messages[: len(rows)]


class MemoryStore(ProcessorStore[str]):
    """A fake of the store port that keeps everything in dicts (same contract as the SQL one)."""

    def __init__(self, fail_on: str | None = None, error: Exception | None = None) -> None:
        self.error = error or InvalidEvent("person_id: the store refuses this person")
        self.stored: dict[TP, int] = {}
        self.marks: dict[TP, int] = {}
        self.applied: list[str] = []
        self.outbox: list[Any] = []
        self.origins: list[tuple[str, int, int]] = []
        self.fail_on = fail_on
        self.commits = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def positions(self) -> dict[TP, int]:
        return dict(self.stored)

    async def position_marks(self) -> dict[TP, int]:
        return dict(self.marks)

    def outbox_source(self) -> MemoryOutbox:
        return MemoryOutbox(self.outbox)

    async def commit(self, batch: Batch[str]) -> None:
        for tp, first in batch.first_offsets.items():
            if self.stored.get(tp, -1) >= first:
                raise StalePositions(str(tp))
        if self.fail_on is not None and self.fail_on in batch.changes:
            raise self.error
        self.commits += 1
        self.applied += batch.changes
        self.origins += batch.origins
        self.stored.update(batch.positions)
        self.marks.update(batch.marks)
        self.outbox += batch.outgoing


def consent(person: str, offset: int, partition: int = 0, by: str = "person") -> Message:
    record = event(
        new_envelope("ConsentChanged", "test", occurred_at=datetime.now(UTC)),
        person_id=uuid.UUID(person),
        partner_id=uuid.uuid4(),
        granted=True,
        changed_by=by,
    )
    return Message(ENROLLMENT.name, partition, offset, person.encode(), CODEC.encode(record))


P1, P2, P3 = (str(uuid.UUID(int=i)) for i in (1, 2, 3))


async def test_a_batch_is_applied_with_its_positions() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC)
    assert await runner.process([consent(P1, 0), consent(P2, 1), consent(P3, 0, partition=1)]) == 3
    assert store.applied == [P1, P2, P3]
    assert store.origins == [
        (ENROLLMENT.name, 0, 0),
        (ENROLLMENT.name, 0, 1),
        (ENROLLMENT.name, 1, 0),
    ]
    assert store.stored == {(ENROLLMENT.name, 0): 1, (ENROLLMENT.name, 1): 0}


async def test_each_position_is_stored_with_the_mark_of_the_message_there() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC)
    last = consent(P2, 1)
    await runner.process([consent(P1, 0), last, Message(ENROLLMENT.name, 1, 7, b"k", b"junk")])
    assert store.marks == {
        (ENROLLMENT.name, 0): message_mark(last.key, last.value),
        (ENROLLMENT.name, 1): message_mark(b"k", b"junk"),
    }
    assert message_mark(last.key, last.value) != message_mark(last.key, consent(P2, 1).value)


async def test_redelivered_messages_change_nothing() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC)
    await runner.process([consent(P1, 0), consent(P2, 1)])
    assert await runner.process([consent(P1, 0), consent(P2, 1)]) == 0
    # A restarted runner learns the positions from the store.
    restarted = Runner(Counter(), store, CODEC)
    await restarted.load_positions()
    await restarted.process([consent(P1, 0), consent(P2, 1), consent(P3, 2)])
    assert store.applied == [P1, P2, P3]


async def test_undecodable_and_invalid_messages_are_dead_lettered_and_the_rest_applies() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC)
    garbage = Message(ENROLLMENT.name, 0, 1, b"k", b"not avro", (("traceparent", b"00-x"),))
    await runner.process([consent(P1, 0), garbage, consent(P2, 2, by="admin"), consent(P3, 3)])
    assert store.applied == [P1, P3]
    assert store.stored == {(ENROLLMENT.name, 0): 3}
    assert [m.topic for m in store.outbox] == ["ler.dlq.v1", "ler.dlq.v1"]
    first = CODEC.decode(store.outbox[0].value)
    assert first["original_value"] == b"not avro"
    assert first["original_offset"] == 1
    assert first["original_headers"] == [{"key": "traceparent", "value": b"00-x"}]
    assert "C3 01" in first["error"]
    second = CODEC.decode(store.outbox[1].value)
    assert second["error"] == "changed_by: admin consents are not counted"
    assert runner.dead_lettered == 2
    assert (REASON_HEADER, b"undecodable") in store.outbox[0].headers
    assert (REASON_HEADER, b"rule") in store.outbox[1].headers


async def test_stale_positions_reload_and_skip_what_another_worker_applied() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC)
    await runner.load_positions()
    store.stored[(ENROLLMENT.name, 0)] = 0  # another worker applied offset 0 meanwhile
    await runner.process([consent(P1, 0), consent(P2, 1)])
    assert store.applied == [P2]


async def test_an_event_breaking_a_rule_the_store_checks_is_isolated_and_dead_lettered() -> None:
    store = MemoryStore(fail_on=P2)
    runner = Runner(Counter(), store, CODEC)
    await runner.process([consent(P1, 0), consent(P2, 1), consent(P3, 2)])
    assert store.applied == [P1, P3]
    assert len(store.outbox) == 1
    dead = CODEC.decode(store.outbox[0].value)
    assert dead["original_offset"] == 1
    assert "the store refuses this person" in dead["error"]
    assert (REASON_HEADER, b"rule") in store.outbox[0].headers
    assert store.stored == {(ENROLLMENT.name, 0): 2}


class FailsFor(MemoryStore):
    """A store that fails every commit with ``error`` until ``fixed`` is set (a missing column
    after an upgrade, a bug in its apply code, the database away)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.failure = error
        self.fixed = False
        self.failures = 0

    async def commit(self, batch: Batch[str]) -> None:
        if not self.fixed:
            self.failures += 1
            raise self.failure
        await super().commit(batch)


async def _run_until_fixed(
    runner: Runner[str], store: FailsFor, messages: list[Message]
) -> dict[str, Any]:
    """Process while the store fails; once it failed three times, look at the runner's report,
    fix the store, and let the batch through. Returns the report seen while stopped."""
    task = asyncio.create_task(runner.process(messages))
    for _ in range(400):
        if store.failures >= 3:
            break
        await asyncio.sleep(0.01)
    assert store.failures >= 3, "the runner gave up instead of retrying"
    assert not task.done(), "the runner returned (or crashed) while the store was failing"
    assert not runner.ready
    assert runner.stall is not None
    report = runner.stall.report()
    store.fixed = True
    assert await asyncio.wait_for(task, 10) == len(messages)
    assert runner.ready
    assert runner.stall is None
    return report


@pytest.mark.parametrize("size", [1, 3])
async def test_a_store_failure_that_is_not_the_events_stops_and_retries_never_dead_letters(
    size: int,
) -> None:
    from sqlalchemy.exc import ProgrammingError

    missing_column = ProgrammingError(
        "INSERT INTO wallet_records ...", None, Exception("column source does not exist")
    )
    store = FailsFor(missing_column)
    runner = Runner(Counter(), store, CODEC)
    messages = [consent(P1, 0), consent(P2, 1), consent(P3, 2)][:size]
    report = await _run_until_fixed(runner, store, messages)
    assert store.outbox == [], "a valid event was dead-lettered"
    assert store.applied == [P1, P2, P3][:size]
    assert store.stored == {(ENROLLMENT.name, 0): size - 1}
    assert report["error"] == "ProgrammingError"
    assert report["transient"] is False
    assert report["attempts"] >= 3
    assert "column source" not in str(report), "the report quotes the error's message"
    assert runner.dead_lettered == 0


async def test_a_bug_in_a_processors_rules_stops_the_runner_instead_of_crashing_it() -> None:
    class Buggy(Counter):
        broken = True

        def changes(self, event: Event) -> Sequence[str]:
            if self.broken:
                return [event.record["no_such_field"]]
            return super().changes(event)

    processor = Buggy()
    store = MemoryStore()
    runner = Runner(processor, store, CODEC)
    task = asyncio.create_task(runner.process([consent(P1, 0)]))
    for _ in range(400):
        if runner.stall is not None and runner.stall.attempts >= 2:
            break
        await asyncio.sleep(0.01)
    assert not task.done(), "a batch of one message that failed ended the runner"
    assert runner.stall is not None
    assert runner.stall.error == "KeyError"
    assert "test_processing.py" in runner.stall.where
    processor.broken = False
    assert await asyncio.wait_for(task, 10) == 1
    assert store.applied == [P1]
    assert store.outbox == []


def test_mongodb_failover_errors_are_transient() -> None:
    from pymongo.errors import (
        AutoReconnect,
        NetworkTimeout,
        NotPrimaryError,
        OperationFailure,
        ServerSelectionTimeoutError,
    )

    assert is_transient(AutoReconnect("connection reset"))
    assert is_transient(NotPrimaryError("not primary"))
    assert is_transient(ServerSelectionTimeoutError("no servers"))
    assert is_transient(NetworkTimeout("timed out"))
    assert is_transient(
        OperationFailure("write conflict", 112, {"errorLabels": ["TransientTransactionError"]})
    )
    assert not is_transient(OperationFailure("bad query", 2, {}))


async def test_a_replay_runner_emits_nothing() -> None:
    store = MemoryStore()
    runner = Runner(Counter(), store, CODEC, emit=False)
    await runner.process([Message(ENROLLMENT.name, 0, 0, None, b"junk")])
    assert store.outbox == []
    assert store.stored == {(ENROLLMENT.name, 0): 0}


def test_decoding_nothing_is_an_avro_error() -> None:
    with pytest.raises(AvroError):
        CODEC.decode(b"")


class PgError(Exception):
    """Stands in for a driver error: PostgreSQL names what happened by SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def db_error(sqlstate: str) -> Exception:
    from sqlalchemy.exc import DBAPIError

    return DBAPIError("UPDATE sla_items ...", None, PgError(sqlstate))


def test_deadlocks_and_serialization_failures_are_transient_and_constraint_errors_are_not() -> None:
    from sqlalchemy.exc import OperationalError

    assert is_transient(db_error("40P01"))  # deadlock detected
    assert is_transient(db_error("40001"))  # serialization failure
    assert is_transient(OperationalError("x", None, PgError("08006")))
    assert not is_transient(db_error("23505"))  # unique violation: the event itself
    assert not is_transient(ValueError("poison"))


class DeadlockOnce(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.deadlocks = 0

    async def commit(self, batch: Batch[str]) -> None:
        if len(batch.changes) == 1 and self.deadlocks == 0:
            self.deadlocks += 1
            raise db_error("40P01")
        await super().commit(batch)


async def test_a_deadlock_victim_is_retried_never_dead_lettered() -> None:
    store = DeadlockOnce()
    runner = Runner(Counter(), store, CODEC)
    assert await runner.process([consent(P1, 0)]) == 1
    assert store.deadlocks == 1
    assert store.applied == [P1]
    assert store.outbox == []
    assert runner.dead_lettered == 0

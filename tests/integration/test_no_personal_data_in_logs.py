"""Database errors with a person's data in flight log none of it.

A trigger makes the real database refuse the person's row, once during intake (enrollment) and
once during projection (the notifications processor, which keeps e-mail and given name). What a
server logs of an unhandled error (the exception and its traceback) and every log record of the
run are scanned for the person's names, e-mail and birth date. SQLAlchemy puts a failed
statement's bound parameters into the exception's message unless the engine hides them.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ler.processing import Message
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from services.notifications.bootstrap import notifications_runner
from services.notifications.store import SqlNotificationStore
from tests.conftest import Databases
from tests.helpers import client_for, read_topic, wait_until

pytestmark = pytest.mark.integration


async def refuse_inserts(engine: AsyncEngine, table: str) -> None:
    """A real database error on every insert into ``table``."""
    async with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            await conn.execute(
                text(
                    f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            await conn.execute(
                text(
                    "CREATE OR REPLACE FUNCTION refuse_row() RETURNS trigger AS $$ "
                    "BEGIN RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_row()"
                )
            )


async def allow_inserts(engine: AsyncEngine, table: str) -> None:
    async with engine.begin() as conn:
        suffix = "" if engine.dialect.name == "sqlite" else f" ON {table}"
        await conn.execute(text(f"DROP TRIGGER refuse_{table}{suffix}"))


def as_logged(exc: BaseException) -> str:
    """What a server (uvicorn, a worker's task) writes for an unhandled exception."""
    return "".join(traceback.format_exception(exc))


async def test_database_errors_in_intake_and_projection_log_no_personal_data(
    kafka: KafkaSettings,
    platform: PlatformSettings,
    databases: Databases,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="aiokafka")  # its DEBUG lines are wire dumps
    tag = uuid.uuid4().hex[:8]
    person = {
        "given_name": f"Zelphine{tag}",
        "family_name": f"Quarrington{tag}",
        "email": f"zelphine.{tag}@example.org",
        "birth_date": "1931-07-29",
    }
    assert platform.admin_token is not None
    admin = {"Authorization": f"Bearer {platform.admin_token.get_secret_value()}"}
    logged: list[str] = []

    ctx = enrollment_bootstrap(
        platform, kafka, EnrollmentSettings(), database_url=databases.new_url()
    )
    async with client_for(enrollment_app(ctx)) as client:
        engine = ctx.store.db.engine
        await refuse_inserts(engine, "enrollment_persons")
        try:
            answer: Any = await client.post("/v1/persons", json=person, headers=admin)
            logged.append(f"answered {answer.status_code}")
        except Exception as exc:  # the in-process transport re-raises what the server logs
            logged.append(as_logged(exc))
        await allow_inserts(engine, "enrollment_persons")
        enrolled = await client.post("/v1/persons", json=person, headers=admin)
        assert enrolled.status_code == 201, enrolled.text
        person_id = enrolled.json()["person_id"]

        async def published() -> list[Any]:
            records = await read_topic(kafka, "ler.enrollment.v1")
            return [r for r in records if r.key == person_id.encode()]

        events = await wait_until(published, timeout=30)
    messages = [Message(m.topic, m.partition, m.offset, m.key, m.value) for m in events]

    store = SqlNotificationStore(databases.new_url())
    await store.open()
    try:
        await refuse_inserts(store.db.engine, "notifications_persons")
        runner = notifications_runner(store, emit=False)
        await runner.load_positions()
        # A failure that is not the event's stops the runner on the batch, retrying, until the
        # database takes the row again (ler.processing): its reports are scanned too.
        applying = asyncio.create_task(runner.process(messages))

        async def stalled() -> bool:
            return runner.stall is not None and runner.stall.attempts >= 2

        await wait_until(stalled, timeout=30)
        assert runner.stall is not None
        logged.append(repr(runner.stall))
        await allow_inserts(store.db.engine, "notifications_persons")
        await asyncio.wait_for(applying, 30)
        assert runner.stall is None
    finally:
        await store.close()

    assert any("refused by the test" in entry for entry in logged), logged
    everything = "\n".join([*logged, *(caplog.text.splitlines())])
    found = [field for field, value in person.items() if value in everything]
    found += ["birth_date (repr)"] if "1931, 7, 29" in everything else []
    assert not found, f"personal data in the logs: {found}"

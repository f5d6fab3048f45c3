"""Suspension: a reversible hold on a credential (Bitstring Status List ``suspension`` purpose).

Every credential the registry issues has two status entries: ``revocation`` (final: its bit is
never cleared) and ``suspension``, in a list of its own, whose bit staff set and clear with
``POST /v1/credentials/{credential_id}/suspend`` and ``.../unsuspend``. Each change runs in one
transaction with the record's state and version, an audit entry and its event on
``ler.verification.v1`` (``CredentialSuspended``, ``CredentialSuspensionLifted``). An upheld
appeal of a suspension lifts it (same credential); a revoked credential is never changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ler.outbox import OutgoingMessage, enqueue
from services.verification.domain import SUSPENDED, VERIFIED
from services.verification.statuslists import SUSPENSION, allocate_indices
from services.verification.suspension_rules import check_suspension_change

if TYPE_CHECKING:  # the store imports this module: types only
    from services.verification.store import Caller, VerificationStore


def suspensions_table(metadata: MetaData) -> Table:
    """A credential's suspension entry and whether its bit is set now (a new table, not columns
    of ``verification_credentials``, so older databases keep working)."""
    return Table(
        "verification_suspensions",
        metadata,
        Column("credential_id", String(36), primary_key=True),
        Column("list_id", String(20), nullable=False),
        Column("status_index", Integer, nullable=False),
        Column("suspended", Boolean, nullable=False),
        Column("reason_code", String(40), nullable=True),
        Column("note", Text, nullable=True),
        Column("changed_by", String(80), nullable=True),
        Column("changed_at", DateTime(timezone=True), nullable=True),
    )


async def allocate(
    store: VerificationStore,
    conn: AsyncConnection,
    credential_ids: list[str],
    now: datetime | None = None,
) -> list[tuple[str, int]]:
    """Suspension slots for new credentials (from a suspension list), their rows written."""
    slots = await allocate_indices(
        store.db,
        store.status_lists,
        store.status_entries,
        conn,
        credential_ids,
        store.status_list_size,
        store.list_purposes,
        SUSPENSION,
        now=now,
    )
    await conn.execute(
        store.suspensions.insert(),
        [
            {"credential_id": c, "list_id": list_id, "status_index": index, "suspended": False}
            for c, (list_id, index) in zip(credential_ids, slots, strict=True)
        ],
    )
    return slots


async def suspended_indices(conn: AsyncConnection, store: VerificationStore, list_id: str) -> Any:
    s = store.suspensions
    query = select(s.c.status_index).where(s.c.list_id == list_id, s.c.suspended.is_(True))
    return (await conn.execute(query)).scalars().all()


async def change(
    store: VerificationStore,
    conn: AsyncConnection,
    credential_id: str,
    suspend: bool,
    reason: tuple[str, str | None],
    actor: str,
) -> tuple[dict[str, Any], list[OutgoingMessage]]:
    """Set (``suspend``) or clear the credential's suspension bit, with the record's transition,
    audit entry and event; raises :class:`TransitionError` when the rules refuse."""
    c, s = store.credentials, store.suspensions
    credential = (
        await conn.execute(
            select(c.c.record_id, c.c.revoked).where(c.c.credential_id == credential_id)
        )
    ).first()
    row = await store._record_for_update(conn, credential.record_id) if credential else None
    entry = (
        await conn.execute(select(s.c.list_id).where(s.c.credential_id == credential_id))
    ).first()
    reason_code, note = reason
    check_suspension_change(
        suspend,
        reason_code,
        row["state"] if row else None,
        bool(credential and credential.revoked),
        row is not None and row["credential_id"] == credential_id,
        entry is not None,
    )
    assert row is not None
    now = datetime.now(UTC)
    await conn.execute(
        s.update()
        .where(s.c.credential_id == credential_id)
        .values(
            suspended=suspend, reason_code=reason_code, note=note, changed_by=actor, changed_at=now
        )
    )
    event_type = "CredentialSuspended" if suspend else "CredentialSuspensionLifted"
    values: dict[str, Any] = {"state": SUSPENDED if suspend else VERIFIED}
    if suspend:  # a decision that can be appealed, once, and not by who made it
        values.update(decision_version=row["version"] + 1, decided_by=actor)
    detail = {"credential_id": credential_id, "reason_code": reason_code, "note": note}
    version = await store._transition(conn, row, event_type, actor, values, detail, now)
    message = store._event(event_type, row, actor, version, **detail)
    return {"credential_id": credential_id, "state": values["state"], **detail}, [message]


async def _command(
    store: VerificationStore,
    credential_id: str,
    suspend: bool,
    reason_code: str,
    note: str | None,
    caller: Caller,
) -> dict[str, Any]:
    async with store.db.transaction() as conn:
        result, out = await change(
            store, conn, credential_id, suspend, (reason_code, note), caller.actor
        )
        await enqueue(conn, store.api_outbox, out)
    return result


async def suspend(
    store: VerificationStore, credential_id: str, reason_code: str, note: str | None, caller: Caller
) -> dict[str, Any]:
    """Put a credential in force on hold: its suspension bit is set."""
    return await _command(store, credential_id, True, reason_code, note, caller)


async def lift(
    store: VerificationStore, credential_id: str, reason_code: str, note: str | None, caller: Caller
) -> dict[str, Any]:
    """Release a suspended credential: its suspension bit is cleared, the same credential again."""
    return await _command(store, credential_id, False, reason_code, note, caller)

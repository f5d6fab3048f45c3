"""Suspension: a reversible hold on a credential, in a status list of its own (statusPurpose
``suspension``), beside the revocation entry that stays final (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from ler.credentials import StaticDidResolver, StaticStatusListFetcher, verify_credential
from services.verification.domain import TransitionError
from services.verification.store import Caller, VerificationStore
from services.verification.suspension_store import lift, suspend
from tests.integration.test_status_lists import issued
from tests.integration.test_verification_store import CODEC, store

pytestmark = pytest.mark.integration
_ = store  # the fixture, imported for these tests
REVIEWER = Caller("reviewer:" + str(uuid.uuid4()))


async def document(store: VerificationStore, credential_id: str) -> dict[str, Any]:
    found = await store.credential(credential_id)
    assert found is not None
    return dict(found["document"])


def entries(credential: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """The credential's status entries by purpose: (list id, index)."""
    status = credential["credentialStatus"]
    return {
        e["statusPurpose"]: (e["statusListCredential"].rsplit("/", 1)[1], int(e["statusListIndex"]))
        for e in (status if isinstance(status, list) else [status])
    }


async def bits(store: VerificationStore, list_id: str) -> tuple[str, list[int]]:
    found = await store.status_list(list_id)
    assert found is not None
    _, indices, purpose = found
    return purpose, indices


async def verdict(store: VerificationStore, credential: dict[str, Any]) -> Any:
    """What any verifier concludes from the registry's signed status lists as served now."""
    lists = []
    for list_id, _ in entries(credential).values():
        size, indices, purpose = await store.status_list(list_id) or (0, [], "")
        lists.append(store.issuer.status_list(list_id, size, indices, purpose=purpose))
    resolver = StaticDidResolver([store.issuer.ring.did_document()])
    return verify_credential(credential, resolver, StaticStatusListFetcher(lists))


async def events_of(store: VerificationStore, record_id: str) -> list[dict[str, Any]]:
    async with store.db.read() as conn:
        a = store.api_outbox
        values = (await conn.execute(select(a.c.value).order_by(a.c.id))).scalars().all()
    return [e for e in map(CODEC.decode, values) if str(e.get("record_id")) == record_id]


async def test_every_credential_has_a_suspension_entry_in_a_list_of_its_own(
    store: VerificationStore,
) -> None:
    _, credential_id = await issued(store, str(uuid.uuid4()))
    credential = await document(store, credential_id)
    slots = entries(credential)
    assert set(slots) == {"revocation", "suspension"}
    assert slots["revocation"][0] != slots["suspension"][0], "one list for two purposes"
    assert await bits(store, slots["suspension"][0]) == ("suspension", [])
    assert await bits(store, slots["revocation"][0]) == ("revocation", [])
    assert (await verdict(store, credential)).verified


async def test_suspend_then_lift_sets_and_clears_only_the_suspension_bit(
    store: VerificationStore,
) -> None:
    record_id, credential_id = await issued(store, str(uuid.uuid4()))
    credential = await document(store, credential_id)
    (s_list, s_index), (r_list, _) = (
        entries(credential)["suspension"],
        entries(credential)["revocation"],
    )

    held = await suspend(store, credential_id, "under_investigation", "the employer asks", REVIEWER)
    assert held["state"] == "suspended"
    assert await bits(store, s_list) == ("suspension", [s_index])
    assert await bits(store, r_list) == ("revocation", [])
    found = await verdict(store, credential)
    assert not found.verified
    assert found.check("status").problem.title == "Suspended"
    with pytest.raises(TransitionError) as twice:
        await suspend(store, credential_id, "under_investigation", None, REVIEWER)
    assert twice.value.status == 409

    lifted = await lift(store, credential_id, "investigation_closed", "all in order", REVIEWER)
    assert lifted["state"] == "verified"
    assert await bits(store, s_list) == ("suspension", [])
    assert (await verdict(store, credential)).verified, "the same credential verifies again"
    with pytest.raises(TransitionError) as again:
        await lift(store, credential_id, "investigation_closed", None, REVIEWER)
    assert again.value.status == 409

    kinds = [e["event_type"] for e in await events_of(store, record_id)]
    assert kinds == ["CredentialSuspended", "CredentialSuspensionLifted"]
    assert (await store.record(record_id) or {})["state"] == "verified"


async def test_a_revoked_credential_stays_revoked_whatever_is_done(
    store: VerificationStore,
) -> None:
    person = str(uuid.uuid4())
    record_id, credential_id = await issued(store, person)
    credential = await document(store, credential_id)
    r_list, r_index = entries(credential)["revocation"]
    await suspend(store, credential_id, "under_investigation", None, REVIEWER)
    await store.revoke(credential_id, "the course never took place", Caller("admin"))

    for command in (suspend, lift):
        with pytest.raises(TransitionError) as refused:
            await command(store, credential_id, "other", "try anyway", Caller("admin"))
        assert refused.value.status == 409
        assert refused.value.field == "credential_id"
    # An upheld appeal of the revocation gives the record a new credential; the old one still
    # cannot be suspended or lifted, and its revocation bit stays set.
    appeal = await store.file_appeal(record_id, person, "it did take place")
    assert appeal["appeal_of"] == "revocation"
    decided = await store.decide_appeal(appeal["appeal_id"], "upheld", "it did", REVIEWER.actor)
    assert decided["credential_id"] != credential_id
    for command in (suspend, lift):
        with pytest.raises(TransitionError) as refused:
            await command(store, credential_id, "other", None, Caller("admin"))
        assert refused.value.status == 409
    with pytest.raises(TransitionError) as replaced:
        await store.revoke(credential_id, "again", Caller("admin"))
    assert replaced.value.status == 409, "revoking the replaced credential revoked its record"
    assert (await store.record(record_id) or {})["state"] == "verified"
    assert r_index in (await bits(store, r_list))[1]
    found = await verdict(store, credential)
    assert found.check("status").problem.title == "Revoked"
    assert (await verdict(store, await document(store, decided["credential_id"]))).verified


async def test_an_upheld_appeal_of_a_suspension_lifts_it_on_the_same_credential(
    store: VerificationStore,
) -> None:
    person = str(uuid.uuid4())
    record_id, credential_id = await issued(store, person)
    credential = await document(store, credential_id)
    await suspend(store, credential_id, "disputed", "the provider disputes it", REVIEWER)
    appeal = await store.file_appeal(record_id, person, "here is my certificate")
    assert appeal["appeal_of"] == "suspension"
    with pytest.raises(TransitionError) as own:
        await store.decide_appeal(appeal["appeal_id"], "upheld", "mine", REVIEWER.actor)
    assert own.value.status == 403, "the reviewer who suspended decides the appeal"

    decided = await store.decide_appeal(appeal["appeal_id"], "upheld", "certificate seen", "admin")
    assert decided["credential_id"] == credential_id
    assert decided["record_state"] == "verified"
    assert (await verdict(store, credential)).verified
    kinds = [e["event_type"] for e in await events_of(store, record_id)]
    assert kinds == [
        "CredentialSuspended",
        "AppealFiled",
        "AppealDecided",
        "CredentialSuspensionLifted",
    ]


async def test_a_denied_appeal_of_a_suspension_leaves_it_suspended(
    store: VerificationStore,
) -> None:
    person = str(uuid.uuid4())
    record_id, credential_id = await issued(store, person)
    await suspend(store, credential_id, "disputed", None, REVIEWER)
    appeal = await store.file_appeal(record_id, person, "please")
    await store.decide_appeal(appeal["appeal_id"], "denied", "still disputed", "admin")
    found = await verdict(store, await document(store, credential_id))
    assert found.check("status").problem.title == "Suspended"
    with pytest.raises(TransitionError) as second:
        await store.file_appeal(record_id, person, "again")
    assert second.value.status == 409

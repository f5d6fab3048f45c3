"""The wallet verifier's bounds: status list URLs that differ only by a fragment or a query are
not fetched (they used to mint a cache entry and a request each), one request looks up only a
few status lists, the fetched-document cache has a size, a deadline cuts a verification short
(and such a verdict is not cached), and a full pool refuses instead of queueing without end.
The registry's HTTP side is an httpx mock transport."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from ler.credentials.did import build_did_web_document
from services.wallet.verifier import (
    MAX_FETCHED_CACHED,
    MAX_LOOKUPS_PER_REQUEST,
    RegistryDocuments,
    Verifier,
)
from services.wallet.verify_pool import Deadline, VerificationBusy, VerificationPool
from tests.unit.credentials.vc_fixtures import (
    REGISTRY_DID,
    employment_credential,
    registry_key,
    signed,
)

pytestmark = pytest.mark.unit
T = TypeVar("T")
URL = "https://registry.example.org"
NOW = datetime(2026, 3, 1, tzinfo=UTC)


class Registry:
    """Answers the DID document, and 404 for every status list; counts the requests."""

    def __init__(self) -> None:
        self.document = build_did_web_document(REGISTRY_DID, [registry_key()])
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        if request.url.path == "/.well-known/did.json":
            return httpx.Response(200, json=self.document)
        return httpx.Response(404)


def documents_over(registry: Registry) -> RegistryDocuments:
    client = httpx.AsyncClient(transport=httpx.MockTransport(registry.handle), base_url=URL)
    return RegistryDocuments(client, URL, failure_ttl=60)


def with_status(*urls: str) -> dict[str, Any]:
    credential = employment_credential()
    credential["credentialStatus"] = [
        {
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "7",
            "statusListCredential": url,
        }
        for url in urls
    ]
    return credential


async def test_status_list_urls_with_a_fragment_or_a_query_are_not_fetched() -> None:
    registry = Registry()
    verifier = Verifier(documents_over(registry))
    variants = [f"{URL}/v1/status-lists/1#{n}" for n in range(5)]
    variants += [f"{URL}/v1/status-lists/1?n={n}" for n in range(5)]
    variants += [f"{URL}/v1/status-lists/1/../2", f"{URL}/v1/status-lists/%31"]
    for url in variants:
        verdict = await verifier.verify_credential(signed(with_status(url)), now=NOW)
        assert verdict.check("status").problem is not None
    assert [u for u in registry.requests if "status-lists" in u] == []
    assert verifier.documents.cached <= 1  # the DID document only


async def test_one_request_looks_up_only_a_few_status_lists() -> None:
    registry = Registry()
    verifier = Verifier(documents_over(registry))
    urls = [f"{URL}/v1/status-lists/{n}" for n in range(30)]
    await verifier.verify_credential(signed(with_status(*urls)), now=NOW)
    fetched = [u for u in registry.requests if "status-lists" in u]
    assert len(fetched) == MAX_LOOKUPS_PER_REQUEST


async def test_the_fetched_document_cache_has_a_size() -> None:
    registry = Registry()
    documents = documents_over(registry)
    for n in range(MAX_FETCHED_CACHED + 100):
        await documents.status_list(f"{URL}/v1/status-lists/{n}")
    assert documents.cached == MAX_FETCHED_CACHED
    assert len(registry.requests) == MAX_FETCHED_CACHED + 100


class LatePool(VerificationPool):
    """A pool whose worker starts each job only once the request's deadline has passed (as a
    worker held up by other jobs would)."""

    async def run(self, deadline: Deadline, job: Callable[[], T]) -> T:
        def late() -> T:
            time.sleep(deadline.remaining() + 0.01)
            return job()

        return await super().run(deadline, late)


async def test_a_verification_past_its_deadline_says_so_and_is_not_cached() -> None:
    registry = Registry()
    verifier = Verifier(documents_over(registry), pool=LatePool(), deadline_seconds=0.05)
    credential = signed(employment_credential())
    verdict = await verifier.verify_credential(credential, now=NOW)
    assert not verdict.verified
    problem = verdict.check("proof").problem
    assert problem is not None
    assert problem.title == "Too complex to verify"
    assert problem.type == "urn:ler:problem:verification-timeout"
    # With time enough, the same credential verifies: the cut-short verdict was not kept.
    verifier.pool = VerificationPool()
    assert (await verifier.verify_credential(credential, now=NOW)).verified


async def test_a_full_pool_refuses_before_the_deadline_instead_of_queueing() -> None:
    pool = VerificationPool(workers=1, queue=1)
    release = threading.Event()
    busy = [asyncio.create_task(pool.run(Deadline(5), release.wait)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(VerificationBusy):
        await pool.run(Deadline(0.2), lambda: True)
    assert pool.refused == 1
    release.set()
    assert await asyncio.gather(*busy) == [True, True]
    assert await pool.run(Deadline(1), lambda: 42) == 42
    pool.close()


def test_the_trust_list_holds_this_registry_as_the_verification_service_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from services.verification.settings import VerificationSettings
    from services.wallet.settings import WalletSettings

    for name in ("WALLET_REGISTRY_DID", "VERIFICATION_DID", "WALLET_TRUSTED_ISSUERS"):
        monkeypatch.delenv(name, raising=False)
    # Out of the box both services agree on the registry's DID.
    [registry] = WalletSettings().trust_list().issuers
    assert registry.id == VerificationSettings().did
    assert registry.name == "LER Workforce Registry"
    # make run sets VERIFICATION_DID for every process; the wallet reads it.
    monkeypatch.setenv("VERIFICATION_DID", "did:web:registry.example.org")
    monkeypatch.setenv(
        "WALLET_TRUSTED_ISSUERS", '[{"id": "did:web:other.example", "name": "Other Registry"}]'
    )
    listed = tmp_path / "trusted.json"
    listed.write_text('[{"id": "did:key:z6MkFile", "name": "A College"}]')
    trust = WalletSettings(trusted_issuers_file=listed).trust_list()
    assert [(i.id, i.name) for i in trust.issuers] == [
        ("did:web:registry.example.org", "LER Workforce Registry"),
        ("did:web:other.example", "Other Registry"),
        ("did:key:z6MkFile", "A College"),
    ]
    listed.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match="WALLET_TRUSTED_ISSUERS_FILE"):
        WalletSettings(trusted_issuers_file=listed).trust_list()


async def test_credentials_of_a_presentation_past_its_deadline_are_reported_not_reached() -> None:
    registry = Registry()
    verifier = Verifier(documents_over(registry), pool=LatePool(), deadline_seconds=0.05)
    other = employment_credential()
    other["id"] = "urn:uuid:2b7f2a5e-3c1d-4f7a-9d8e-1a2b3c4d5e6f"
    first, second = signed(employment_credential()), signed(other)
    presentation = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiablePresentation"],
        "verifiableCredential": [first, second],
    }
    verdict = await verifier.verify_presentation(presentation, now=NOW)
    assert not verdict.verified
    assert [v.id for v in verdict.credentials] == [first["id"], second["id"]]
    for nested in verdict.credentials:
        problem = nested.check("proof").problem
        assert problem is not None
        assert problem.type == "urn:ler:problem:verification-timeout"
    # Nothing of it was cached: with time enough, the same presentation verifies.
    verifier.pool = VerificationPool()
    assert (await verifier.verify_presentation(presentation, now=NOW)).verified

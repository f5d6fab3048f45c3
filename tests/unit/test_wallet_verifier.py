"""The wallet's verdict cache: a verdict is reused only while nothing it rests on has changed,
neither a date in the documents nor a fetched document (a refetched DID document or status list
is checked afresh). The registry's HTTP side is an httpx mock transport."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ler.credentials.did import build_did_web_document
from services.wallet.verifier import RegistryDocuments, Verifier
from tests.unit.credentials.vc_fixtures import (
    REGISTRY_DID,
    employment_credential,
    registry_key,
    signed,
)

pytestmark = pytest.mark.unit
URL = "https://registry.example.org"


class Registry:
    """Serves the DID document; counts what was asked."""

    def __init__(self, keys: list[Any]) -> None:
        self.document = build_did_web_document(REGISTRY_DID, keys)
        self.requests: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url.path)
        if request.url.path == "/.well-known/did.json":
            return httpx.Response(200, json=self.document)
        return httpx.Response(404)


def verifier_over(registry: Registry, clock: list[float]) -> Verifier:
    client = httpx.AsyncClient(transport=httpx.MockTransport(registry.handle), base_url=URL)
    return Verifier(RegistryDocuments(client, URL, did_ttl=60, clock=lambda: clock[0]))


async def test_a_cached_verdict_ends_when_a_date_in_the_credential_passes() -> None:
    credential = employment_credential()
    credential["validUntil"] = "2026-06-01T00:00:00Z"
    credential = signed(credential)
    verifier = verifier_over(Registry([registry_key()]), [0.0])
    before = datetime(2026, 5, 31, 23, 0, tzinfo=UTC)
    assert (await verifier.verify_credential(credential, now=before)).verified
    assert (await verifier.verify_credential(credential, now=before)).verified
    assert verifier.cache.hits == 1
    after = before + timedelta(hours=2)
    expired = await verifier.verify_credential(credential, now=after)
    assert not expired.verified
    assert expired.check("validity_period").problem is not None


async def test_a_refetched_did_document_is_checked_afresh() -> None:
    credential = signed(employment_credential())
    registry = Registry([registry_key()])
    clock = [0.0]
    verifier = verifier_over(registry, clock)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert (await verifier.verify_credential(credential, now=now)).verified
    # The registry rotates: key-1 is withdrawn from its DID document.
    registry.document = build_did_web_document(REGISTRY_DID, [registry_key(2)])
    assert (await verifier.verify_credential(credential, now=now)).verified  # DID doc cached
    clock[0] = 61.0  # past the DID document's cache time: refetched, a new object
    withdrawn = await verifier.verify_credential(copy.deepcopy(credential), now=now)
    assert not withdrawn.verified
    assert registry.requests.count("/.well-known/did.json") == 2

"""Verifiable Presentations: wrap chosen credentials, optionally signed for one audience."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ler.credentials.contexts import CREDENTIALS_V2
from ler.credentials.dataintegrity import add_proof, format_datetime
from ler.credentials.jsonld import OfflineDocumentLoader
from ler.credentials.multikey import SigningKey

__all__ = ["build_presentation", "sign_presentation"]


def build_presentation(
    credentials: Sequence[Mapping[str, Any]],
    *,
    holder: str | None = None,
    presentation_id: str | None = None,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``VerifiablePresentation`` holding exactly ``credentials`` (copied as given)."""
    presentation: dict[str, Any] = {"@context": [CREDENTIALS_V2]}
    if presentation_id is not None:
        presentation["id"] = presentation_id
    presentation["type"] = ["VerifiablePresentation"]
    if holder is not None:
        presentation["holder"] = holder
    if valid_until is not None:
        presentation["validUntil"] = format_datetime(valid_until)
    presentation["verifiableCredential"] = [dict(c) for c in credentials]
    return presentation


def sign_presentation(
    presentation: Mapping[str, Any],
    key: SigningKey,
    *,
    challenge: str | None = None,
    domain: str | None = None,
    expires: datetime | None = None,
    created: datetime | None = None,
    loader: OfflineDocumentLoader | None = None,
) -> dict[str, Any]:
    """A copy of ``presentation`` with an ``authentication`` proof by ``key``.

    ``key`` must belong to the presentation's ``holder`` when one is named.
    """
    holder = presentation.get("holder")
    if holder is not None and holder != key.controller:
        raise ValueError(f"key {key.id!r} does not belong to the holder {holder!r}")
    return add_proof(
        presentation,
        key,
        proof_purpose="authentication",
        challenge=challenge,
        domain=domain,
        expires=expires,
        created=created,
        loader=loader,
    )

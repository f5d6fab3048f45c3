"""Shared test data for the credentials tests (plain functions, no pytest magic)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ler.credentials import SigningKey, add_proof
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3

VECTORS = Path(__file__).parent / "vectors" / "eddsa-rdfc-2022"
REGISTRY_DID = "did:web:registry.example.org"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

#: Terms of the test employment credential, defined inline (undefined terms are refused).
EMPLOYMENT_TERMS: dict[str, Any] = {
    "ler": "urn:example:ler-vocab#",
    "EmploymentCredential": "ler:EmploymentCredential",
    "employer": "ler:employer",
    "role": "ler:role",
    "socCode": "ler:socCode",
    "startDate": {"@id": "ler:startDate", "@type": "http://www.w3.org/2001/XMLSchema#date"},
}


def vector_text(name: str) -> str:
    """A test-vector file's exact text."""
    return (VECTORS / name).read_text(encoding="utf-8")


def vector_json(name: str) -> dict[str, Any]:
    """A test-vector JSON file."""
    data: dict[str, Any] = json.loads(vector_text(name))
    return data


def registry_key(n: int = 1) -> SigningKey:
    """A deterministic registry signing key ``did:web:registry.example.org#key-<n>``."""
    return SigningKey(id=f"{REGISTRY_DID}#key-{n}", controller=REGISTRY_DID, seed=bytes([n]) * 32)


def employment_credential(issuer: str = REGISTRY_DID) -> dict[str, Any]:
    """An unsigned employment credential like the verification service issues."""
    return {
        "@context": [CREDENTIALS_V2, EMPLOYMENT_TERMS],
        "id": "urn:uuid:0b7f2a5e-3c1d-4f7a-9d8e-1a2b3c4d5e6f",
        "type": ["VerifiableCredential", "EmploymentCredential"],
        "issuer": issuer,
        "validFrom": "2026-01-15T00:00:00Z",
        "credentialSubject": {
            "id": "urn:uuid:7d0c8d52-5b5e-4a36-9f2b-2f0d3f6c8a11",
            "employer": "Sunny Days Child Care",
            "role": "Lead Teacher",
            "socCode": "25-2011",
            "startDate": "2024-09-01",
        },
    }


def open_badge_credential(issuer: str = REGISTRY_DID) -> dict[str, Any]:
    """An unsigned Open Badges 3.0 achievement credential."""
    return {
        "@context": [CREDENTIALS_V2, OPEN_BADGES_V3],
        "id": "urn:uuid:5f1e4a8c-2b7d-4e61-a3c9-8d2f6b0e1c47",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": issuer, "type": ["Profile"], "name": "Workforce Registry"},
        "validFrom": "2026-01-15T00:00:00Z",
        "name": "CPR and First Aid",
        "credentialSubject": {
            "id": "urn:uuid:7d0c8d52-5b5e-4a36-9f2b-2f0d3f6c8a11",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:9a6b1c3e-4d5f-4a7b-8c9d-0e1f2a3b4c5d",
                "type": ["Achievement"],
                "name": "Pediatric CPR and First Aid",
                "description": "Completed an 8-hour pediatric CPR and first aid course.",
                "criteria": {"narrative": "Pass the practical and written assessments."},
                "alignment": [
                    {
                        "type": ["Alignment"],
                        "targetName": "Pediatric first aid",
                        "targetUrl": "https://example.org/skills/pediatric-first-aid",
                        "targetFramework": "LER Skills Taxonomy",
                    }
                ],
            },
        },
    }


def signed(document: dict[str, Any], key: SigningKey | None = None) -> dict[str, Any]:
    """``document`` signed with the registry key (fixed ``created``)."""
    return add_proof(document, key or registry_key(), created="2026-01-15T10:00:00Z")

"""JSON-LD context documents pinned in the repository (package data).

Each entry maps a context URL to the file that holds its exact content; ``README.md`` beside this
module records where each file came from and its SHA-256, and a unit test checks the digests.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "CREDENTIALS_V1",
    "CREDENTIALS_V2",
    "DATA_INTEGRITY_V2",
    "DID_V1",
    "EXAMPLES_V2",
    "MULTIKEY_V1",
    "OPEN_BADGES_V3",
    "PINNED_CONTEXTS",
    "STATUS_LIST_V1",
    "UNDEFINED_TERMS_V2",
    "load_context",
]

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
CREDENTIALS_V1 = "https://www.w3.org/2018/credentials/v1"
UNDEFINED_TERMS_V2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
DID_V1 = "https://www.w3.org/ns/did/v1"
STATUS_LIST_V1 = "https://www.w3.org/ns/credentials/status/v1"
OPEN_BADGES_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EXAMPLES_V2 = "https://www.w3.org/ns/credentials/examples/v2"

#: Context URL -> file name in this package. Nothing else is ever loaded.
PINNED_CONTEXTS: dict[str, str] = {
    CREDENTIALS_V2: "credentials-v2.jsonld",
    CREDENTIALS_V1: "credentials-v1.jsonld",
    UNDEFINED_TERMS_V2: "credentials-undefined-terms-v2.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
    MULTIKEY_V1: "multikey-v1.jsonld",
    DID_V1: "did-v1.jsonld",
    STATUS_LIST_V1: "bitstring-status-list-v1.jsonld",
    OPEN_BADGES_V3: "ob-v3p0-context-3.0.3.json",
    EXAMPLES_V2: "credentials-examples-v2.jsonld",
}


@cache
def _read(file_name: str) -> str:
    return resources.files(__package__).joinpath(file_name).read_text(encoding="utf-8")


def load_context(url: str) -> dict[str, Any]:
    """Return a fresh copy of the pinned context document for ``url``.

    Raises ``KeyError`` for a URL that is not pinned; callers turn that into a refusal.
    """
    document: dict[str, Any] = json.loads(_read(PINNED_CONTEXTS[url]))
    return document

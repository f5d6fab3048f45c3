"""DIDs and keys: ``did:key`` resolution, ``did:web`` documents, the resolver port and key rings.

Rotation: a key ring lists every key the registry has used; the DID document lists them all under
``assertionMethod``, so a credential signed with an older key keeps verifying after a new key takes
over signing. Only a compromised key is removed from the ring (which, on purpose, makes credentials
it signed fail).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ler.credentials.contexts import DID_V1, MULTIKEY_V1
from ler.credentials.multikey import (
    KeyFileError,
    MultikeyError,
    PublicKey,
    SigningKey,
    load_key_file,
)

__all__ = [
    "DidResolver",
    "KeyResolutionError",
    "KeyRing",
    "StaticDidResolver",
    "build_did_web_document",
    "did_key_document",
    "did_key_from_public_key",
    "did_web_document_url",
    "did_web_from_url",
    "load_key_ring",
    "resolve_verification_method",
]

_SUPPORTED_KEY_TYPES = ("Multikey", "Ed25519VerificationKey2020")


class KeyResolutionError(LookupError):
    """The key named by a proof could not be found or is not allowed for the proof's purpose.

    ``title`` and ``detail`` are written for a reader who is not a cryptographer.
    """

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(f"{title}: {detail}")
        self.title = title
        self.detail = detail


class DidResolver(ABC):
    """Port: returns the DID document (or controller document) for a DID or URL, or None.

    ``did:key`` never reaches a resolver: it is resolved from the identifier itself.
    """

    @abstractmethod
    def resolve(self, did: str) -> Mapping[str, Any] | None:
        """The document whose ``id`` is ``did``, or None when it is unknown."""


class StaticDidResolver(DidResolver):
    """Resolver over documents held in memory, e.g. this registry's own ``did:web`` document."""

    def __init__(self, documents: Iterable[Mapping[str, Any]] = ()) -> None:
        self._documents = {str(doc["id"]): doc for doc in documents}

    def add(self, document: Mapping[str, Any]) -> None:
        """Serve ``document`` under its ``id`` (replacing an earlier one)."""
        self._documents[str(document["id"])] = document

    def resolve(self, did: str) -> Mapping[str, Any] | None:
        return self._documents.get(did)


# --- did:key ---------------------------------------------------------------------------------


def did_key_from_public_key(key: PublicKey) -> str:
    """``did:key:z6Mk...`` for an Ed25519 public key."""
    return f"did:key:{key.multibase}"


def did_key_document(did: str) -> dict[str, Any]:
    """The DID document a ``did:key`` stands for (one Multikey, for every relationship)."""
    if not did.startswith("did:key:"):
        raise KeyResolutionError("Not a did:key", f"{did!r} does not start with 'did:key:'")
    multibase = did.removeprefix("did:key:")
    try:
        public = PublicKey.from_multibase(multibase, id=f"{did}#{multibase}", controller=did)
    except MultikeyError as exc:
        raise KeyResolutionError(
            "Unsupported did:key", f"{did!r} is not an Ed25519 did:key: {exc}"
        ) from None
    method_id = f"{did}#{multibase}"
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": did,
        "verificationMethod": [public.to_verification_method()],
        "authentication": [method_id],
        "assertionMethod": [method_id],
        "capabilityInvocation": [method_id],
        "capabilityDelegation": [method_id],
    }


# --- did:web ---------------------------------------------------------------------------------


def did_web_from_url(base_url: str) -> str:
    """The ``did:web`` identifier served from ``base_url`` (``https://host[:port][/path]``)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{base_url!r} must be an absolute http(s) URL")
    host = quote(parts.netloc, safe="")
    segments = [quote(unquote(s), safe="") for s in parts.path.strip("/").split("/") if s]
    return ":".join(["did:web", host, *segments])


def did_web_document_url(did: str) -> str:
    """Where a ``did:web`` DID document lives (``/.well-known/did.json`` for a bare host)."""
    if not did.startswith("did:web:"):
        raise ValueError(f"{did!r} is not a did:web identifier")
    host, *segments = did.removeprefix("did:web:").split(":")
    path = "/".join(unquote(s) for s in segments) if segments else ".well-known"
    return f"https://{unquote(host)}/{path}/did.json"


def build_did_web_document(did: str, keys: Sequence[PublicKey | SigningKey]) -> dict[str, Any]:
    """DID document listing every key of a ring as a ``Multikey`` for assertion and authentication.

    Keep retired keys in ``keys`` so credentials they signed stay verifiable.
    """
    if not keys:
        raise ValueError("a DID document needs at least one key")
    methods = []
    for key in keys:
        public = key.public_key if isinstance(key, SigningKey) else key
        if public.controller != did or public.id is None or not public.id.startswith(did + "#"):
            raise ValueError(f"key {public.id!r} is not controlled by {did!r}")
        methods.append(public.to_verification_method())
    ids = [m["id"] for m in methods]
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": list(ids),
        "authentication": list(ids),
    }


# --- key rings -------------------------------------------------------------------------------

_KEY_NUMBER = re.compile(r"#key-(\d+)$")


def _order(key: PublicKey | SigningKey) -> tuple[int, str]:
    key_id = key.id or ""
    match = _KEY_NUMBER.search(key_id)
    return (int(match.group(1)) if match else -1, key_id)


@dataclass(frozen=True)
class KeyRing:
    """Every key of one controller, oldest first; the newest key with a secret signs."""

    controller: str
    keys: tuple[PublicKey | SigningKey, ...]

    def __post_init__(self) -> None:
        ids = [key.id for key in self.keys]
        if len(set(ids)) != len(ids):
            raise KeyFileError(f"duplicate key ids in the key ring: {ids}")
        for key in self.keys:
            if key.controller != self.controller:
                raise KeyFileError(
                    f"key {key.id!r} belongs to {key.controller!r}, not {self.controller!r}"
                )

    @property
    def signing_key(self) -> SigningKey:
        """The key new credentials are signed with."""
        for key in reversed(self.keys):
            if isinstance(key, SigningKey):
                return key
        raise KeyFileError(f"no key of {self.controller!r} holds a secretKeyMultibase")

    def did_document(self) -> dict[str, Any]:
        """The ``did:web`` document for this ring (all keys, retired ones included)."""
        return build_did_web_document(self.controller, self.keys)


def load_key_ring(path: str | Path) -> KeyRing:
    """Load a key file, or a directory of ``*.json`` key files, into a :class:`KeyRing`.

    Keys are ordered by the ``#key-<n>`` number of their ids. Retired keys may be stored without
    ``secretKeyMultibase``. All keys must share one controller.
    """
    root = Path(path)
    if root.is_dir():
        files = sorted(root.glob("*.json"))
        if not files:
            raise KeyFileError(f"{root}: no *.json key files in this directory")
    elif root.exists():
        files = [root]
    else:
        raise KeyFileError(f"{root}: key file or directory not found")
    keys = sorted((load_key_file(f) for f in files), key=_order)
    controllers = {key.controller for key in keys}
    if len(controllers) != 1:
        raise KeyFileError(
            f"{root}: keys have different controllers: {sorted(map(str, controllers))}"
        )
    controller = keys[0].controller
    assert controller is not None  # parse_key_object always sets it
    return KeyRing(controller=controller, keys=tuple(keys))


# --- dereferencing a verification method -----------------------------------------------------


def _absolute(ref: str, base: str) -> str:
    return base + ref if ref.startswith("#") else ref


def _listed_ids(document: Mapping[str, Any], relationship: str) -> set[str]:
    base = str(document.get("id", ""))
    entries = document.get(relationship) or []
    if not isinstance(entries, list):
        entries = [entries]
    ids = set()
    for entry in entries:
        if isinstance(entry, str):
            ids.add(_absolute(entry, base))
        elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            ids.add(_absolute(entry["id"], base))
    return ids


def _find_method(document: Mapping[str, Any], method_id: str) -> Mapping[str, Any] | None:
    base = str(document.get("id", ""))
    candidates: list[Any] = []
    for field in ("verificationMethod", "assertionMethod", "authentication"):
        value = document.get(field) or []
        candidates.extend(value if isinstance(value, list) else [value])
    for entry in candidates:
        if (
            isinstance(entry, Mapping)
            and isinstance(entry.get("id"), str)
            and _absolute(entry["id"], base) == method_id
        ):
            return entry
    return None


def resolve_verification_method(
    method_id: str, resolver: DidResolver | None, purpose: str
) -> PublicKey:
    """Find the public key named by a proof's ``verificationMethod``, checking the relationship.

    ``purpose`` is the proof purpose (``assertionMethod`` or ``authentication``); the controller
    document must list the key under that relationship. Raises :class:`KeyResolutionError`.
    """
    if not isinstance(method_id, str) or "#" not in method_id:
        raise KeyResolutionError(
            "Signing key not identified",
            "The proof's verificationMethod must be a URL ending in '#<key name>'.",
        )
    controller_id = method_id.split("#", 1)[0]
    if controller_id.startswith("did:key:"):
        document: Mapping[str, Any] | None = did_key_document(controller_id)
    elif resolver is None:
        document = None
    else:
        document = resolver.resolve(controller_id)
    if document is None:
        raise KeyResolutionError(
            "Issuer's keys not found",
            f"The public keys of {controller_id} could not be found, so nobody can check who "
            "signed this. The issuer may be unknown to this verifier.",
        )
    if document.get("id") != controller_id:
        raise KeyResolutionError(
            "Issuer's key document does not match",
            f"The document found for {controller_id} describes {document.get('id')!r} instead.",
        )
    method = _find_method(document, method_id)
    if method is None:
        raise KeyResolutionError(
            "Signing key not published",
            f"{controller_id} does not publish the key {method_id}. The key may have been "
            "withdrawn by the issuer, or the document was not signed by them.",
        )
    if method_id not in _listed_ids(document, purpose):
        raise KeyResolutionError(
            "Key not allowed for this use",
            f"The key {method_id} is published, but its owner has not allowed it for "
            f"'{purpose}', which this proof claims.",
        )
    if method.get("type") not in _SUPPORTED_KEY_TYPES:
        raise KeyResolutionError(
            "Unsupported key type",
            f"The key {method_id} is of type {method.get('type')!r}; only Ed25519 keys "
            "published as Multikey are supported.",
        )
    controller = method.get("controller")
    if controller != controller_id:
        raise KeyResolutionError(
            "Key controller mismatch",
            f"The key {method_id} says it is controlled by {controller!r}, not {controller_id}.",
        )
    multibase = method.get("publicKeyMultibase")
    if not isinstance(multibase, str):
        raise KeyResolutionError(
            "Key has no public key value",
            f"The key {method_id} has no publicKeyMultibase.",
        )
    try:
        return PublicKey.from_multibase(multibase, id=method_id, controller=controller_id)
    except MultikeyError as exc:
        raise KeyResolutionError("Unreadable public key", f"{method_id}: {exc}") from None

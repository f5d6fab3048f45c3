"""Ed25519 keys as Multikey: multicodec-prefixed, multibase base58btc encoded.

Public key: ``0xed 0x01`` + 32 bytes (so its text starts ``z6Mk``). Secret key: ``0x80 0x26`` + the
32-byte seed (its text starts ``z3u2``). Key files are JSON objects with ``id``, ``type``,
``controller``, ``publicKeyMultibase`` and, for a key that can sign, ``secretKeyMultibase``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ler.credentials.multibase import MultibaseError, decode_base58btc, encode_base58btc

__all__ = [
    "ED25519_PUBLIC_PREFIX",
    "ED25519_SECRET_PREFIX",
    "KeyFileError",
    "MultikeyError",
    "PublicKey",
    "SigningKey",
    "decode_public_key",
    "decode_secret_key",
    "encode_public_key",
    "encode_secret_key",
    "generate_key_file",
    "load_key_file",
]

ED25519_PUBLIC_PREFIX = b"\xed\x01"
ED25519_SECRET_PREFIX = b"\x80\x26"


class MultikeyError(ValueError):
    """A Multikey value is not an Ed25519 key in the expected encoding."""


class KeyFileError(ValueError):
    """A key file is missing, unreadable or malformed; the message names the file and the field."""


def encode_public_key(raw: bytes) -> str:
    """Multikey text (``z6Mk...``) of a raw 32-byte Ed25519 public key."""
    if len(raw) != 32:
        raise MultikeyError("an Ed25519 public key is 32 bytes")
    return encode_base58btc(ED25519_PUBLIC_PREFIX + raw)


def decode_public_key(multibase: str) -> bytes:
    """Raw 32-byte Ed25519 public key from Multikey text; refuses any other key type."""
    try:
        data = decode_base58btc(multibase)
    except MultibaseError as exc:
        raise MultikeyError(f"publicKeyMultibase is not base58btc multibase: {exc}") from None
    if data[:2] != ED25519_PUBLIC_PREFIX or len(data) != 34:
        raise MultikeyError(
            "publicKeyMultibase is not an Ed25519 public key (expected the multicodec prefix "
            "0xed01 followed by 32 bytes)"
        )
    return data[2:]


def encode_secret_key(seed: bytes) -> str:
    """Multikey text (``z3u2...``) of a 32-byte Ed25519 secret key seed."""
    if len(seed) != 32:
        raise MultikeyError("an Ed25519 secret key seed is 32 bytes")
    return encode_base58btc(ED25519_SECRET_PREFIX + seed)


def decode_secret_key(multibase: str) -> bytes:
    """32-byte Ed25519 seed from Multikey secret-key text (prefix 0x8026)."""
    try:
        data = decode_base58btc(multibase)
    except MultibaseError as exc:
        raise MultikeyError(f"secretKeyMultibase is not base58btc multibase: {exc}") from None
    if data[:2] != ED25519_SECRET_PREFIX or len(data) != 34:
        raise MultikeyError(
            "secretKeyMultibase is not an Ed25519 secret key (expected the multicodec prefix "
            "0x8026 followed by a 32-byte seed)"
        )
    return data[2:]


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 verification key, optionally with its verification method id and controller."""

    raw: bytes
    id: str | None = None
    controller: str | None = None

    @classmethod
    def from_multibase(
        cls, multibase: str, id: str | None = None, controller: str | None = None
    ) -> PublicKey:
        """Build from ``publicKeyMultibase`` text."""
        return cls(decode_public_key(multibase), id=id, controller=controller)

    @property
    def multibase(self) -> str:
        """The ``publicKeyMultibase`` text."""
        return encode_public_key(self.raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is a valid Ed25519 signature of ``message`` by this key."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def to_verification_method(self) -> dict[str, str]:
        """The ``Multikey`` verification method object for a controller document."""
        if self.id is None or self.controller is None:
            raise MultikeyError("a verification method needs an id and a controller")
        return {
            "id": self.id,
            "type": "Multikey",
            "controller": self.controller,
            "publicKeyMultibase": self.multibase,
        }


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An Ed25519 signing key bound to the verification method id that names its public half."""

    id: str
    controller: str
    seed: bytes

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"SigningKey(id={self.id!r}, controller={self.controller!r})"

    @classmethod
    def generate(cls, id: str, controller: str) -> SigningKey:
        """A fresh random key (from the OS CSPRNG)."""
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(id=id, controller=controller, seed=seed)

    @classmethod
    def from_multibase(cls, secret_multibase: str, id: str, controller: str) -> SigningKey:
        """Build from ``secretKeyMultibase`` text."""
        return cls(id=id, controller=controller, seed=decode_secret_key(secret_multibase))

    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> PublicKey:
        """The public half, carrying this key's id and controller."""
        raw = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(raw, id=self.id, controller=self.controller)

    @property
    def secret_multibase(self) -> str:
        """The ``secretKeyMultibase`` text (handle with care)."""
        return encode_secret_key(self.seed)

    def sign(self, message: bytes) -> bytes:
        """Ed25519 signature (64 bytes) of ``message``."""
        return self._private().sign(message)

    def to_key_file(self) -> dict[str, str]:
        """The JSON object stored in a key file, secret included."""
        return {
            "id": self.id,
            "type": "Multikey",
            "controller": self.controller,
            "publicKeyMultibase": self.public_key.multibase,
            "secretKeyMultibase": self.secret_multibase,
        }


def _field(data: Mapping[str, Any], name: str, path: Path) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise KeyFileError(f"{path}: field {name!r} must be a non-empty string")
    return value


def parse_key_object(data: Mapping[str, Any], path: Path) -> PublicKey | SigningKey:
    """Turn one key-file object into a :class:`SigningKey` (with secret) or a :class:`PublicKey`.

    The public key is checked against the secret, so a file whose halves do not match is refused.
    """
    key_id = _field(data, "id", path)
    controller = data.get("controller")
    if controller is None:
        controller = key_id.split("#", 1)[0]
    if not isinstance(controller, str) or not controller:
        raise KeyFileError(f"{path}: field 'controller' must be a non-empty string")
    if "#" not in key_id or not key_id.startswith(controller + "#"):
        raise KeyFileError(
            f"{path}: field 'id' must be the controller followed by a fragment, like "
            f"'{controller}#key-1'"
        )
    public_text = _field(data, "publicKeyMultibase", path)
    try:
        public = PublicKey.from_multibase(public_text, id=key_id, controller=controller)
        secret_text = data.get("secretKeyMultibase")
        if secret_text is None:
            return public
        if not isinstance(secret_text, str):
            raise KeyFileError(f"{path}: field 'secretKeyMultibase' must be a string")
        signing = SigningKey.from_multibase(secret_text, id=key_id, controller=controller)
    except MultikeyError as exc:
        raise KeyFileError(f"{path}: {exc}") from None
    if signing.public_key.raw != public.raw:
        raise KeyFileError(
            f"{path}: publicKeyMultibase does not belong to secretKeyMultibase (mismatched halves)"
        )
    return signing


def load_key_file(path: str | os.PathLike[str]) -> PublicKey | SigningKey:
    """Read a key file. Returns a :class:`SigningKey` when it holds ``secretKeyMultibase``.

    Raises :class:`KeyFileError` naming the file and the field for anything wrong.
    """
    file_path = Path(path)
    try:
        data = json.loads(file_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyFileError(f"{file_path}: key file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{file_path}: cannot read key file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"{file_path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{file_path}: a key file holds one JSON object")
    return parse_key_object(data, file_path)


def generate_key_file(
    path: str | os.PathLike[str], key_id: str, controller: str | None = None
) -> SigningKey:
    """Create a new Ed25519 key and write it to ``path`` (mode 0600, refuses to overwrite)."""
    controller = controller or key_id.split("#", 1)[0]
    if not key_id.startswith(controller + "#"):
        raise KeyFileError(f"key id {key_id!r} must be {controller!r} followed by '#<fragment>'")
    key = SigningKey.generate(id=key_id, controller=controller)
    file_path = Path(path)
    fd = os.open(file_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key.to_key_file(), handle, indent=2)
        handle.write("\n")
    return key

"""W3C Bitstring Status List: revocation and suspension bits for credentials.

Bit 0 is the most significant bit of the first byte (the spec's left-most bit). The list is GZIP
compressed and encoded as multibase base64url without padding (``u...``). A list holds at least
131,072 bits (16 KiB), so the index of one credential says little about who holds it.
"""

from __future__ import annotations

import gzip
import secrets
import zlib
from collections.abc import Callable, Container
from datetime import datetime
from typing import Any

from ler.credentials.contexts import CREDENTIALS_V2
from ler.credentials.dataintegrity import format_datetime
from ler.credentials.multibase import MultibaseError, decode_base64url, encode_base64url

__all__ = [
    "MIN_BITS",
    "StatusList",
    "StatusListError",
    "allocate_index",
    "status_list_credential",
    "status_list_entry",
]

MIN_BITS = 131_072
_MAX_DECODED_BYTES = 16 * 1024 * 1024  # refuse gzip bombs: 134 million bits is plenty


class StatusListError(ValueError):
    """A status list is malformed, too short, or an index is outside it."""


class StatusList:
    """A mutable bitstring of ``size`` bits (a multiple of 8, at least :data:`MIN_BITS`)."""

    __slots__ = ("_bits",)

    def __init__(self, size: int = MIN_BITS) -> None:
        if size < MIN_BITS or size % 8:
            raise StatusListError(
                f"a status list holds at least {MIN_BITS} bits, in whole bytes; got {size}"
            )
        self._bits = bytearray(size // 8)

    @property
    def size(self) -> int:
        """Number of bits."""
        return len(self._bits) * 8

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.size:
            raise StatusListError(f"index {index} is outside the list of {self.size} entries")
        return index // 8, 0x80 >> (index % 8)

    def get(self, index: int) -> bool:
        """True when the bit at ``index`` is set (e.g. the credential is revoked)."""
        byte, mask = self._locate(index)
        return bool(self._bits[byte] & mask)

    def set(self, index: int, value: bool = True) -> None:
        """Set (or clear, with ``value=False``) the bit at ``index``."""
        byte, mask = self._locate(index)
        if value:
            self._bits[byte] |= mask
        else:
            self._bits[byte] &= ~mask & 0xFF

    def set_indices(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        return [
            i * 8 + bit
            for i, byte in enumerate(self._bits)
            if byte
            for bit in range(8)
            if byte & (0x80 >> bit)
        ]

    def encode(self) -> str:
        """``encodedList``: GZIP (deterministic header) then multibase base64url, no padding."""
        return encode_base64url(gzip.compress(bytes(self._bits), compresslevel=9, mtime=0))

    @classmethod
    def decode(cls, encoded: str) -> StatusList:
        """Parse an ``encodedList``; raises :class:`StatusListError` when malformed or too short."""
        try:
            compressed = decode_base64url(encoded)
        except MultibaseError as exc:
            raise StatusListError(f"encodedList is not multibase base64url: {exc}") from None
        try:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            raw = inflater.decompress(compressed, _MAX_DECODED_BYTES + 1)
        except zlib.error as exc:
            raise StatusListError(f"encodedList is not GZIP data: {exc}") from None
        if len(raw) > _MAX_DECODED_BYTES or inflater.unconsumed_tail:
            raise StatusListError("encodedList expands to more than 16 MiB")
        if not inflater.eof:
            raise StatusListError("encodedList GZIP data is truncated")
        if len(raw) * 8 < MIN_BITS:
            raise StatusListError(
                f"the status list has {len(raw) * 8} entries, fewer than the {MIN_BITS} required"
            )
        status_list = cls.__new__(cls)
        status_list._bits = bytearray(raw)
        return status_list


def allocate_index(
    used: Container[int] | Callable[[int], bool],
    size: int = MIN_BITS,
    *,
    attempts: int = 64,
) -> int:
    """A uniformly random index in ``[0, size)`` that is not ``used`` (a set or a predicate).

    Random choice keeps indices from revealing issuance order. After ``attempts`` collisions
    (a nearly full list) it scans from a random start; raises :class:`StatusListError` when full.
    """
    is_used: Callable[[int], bool] = used if callable(used) else used.__contains__
    for _ in range(attempts):
        candidate = secrets.randbelow(size)
        if not is_used(candidate):
            return candidate
    start = secrets.randbelow(size)
    for offset in range(size):
        candidate = (start + offset) % size
        if not is_used(candidate):
            return candidate
    raise StatusListError(f"all {size} indices of the status list are in use")


def status_list_entry(
    status_list_credential: str, index: int, purpose: str = "revocation"
) -> dict[str, str]:
    """The ``credentialStatus`` value pointing at bit ``index`` of a status list credential."""
    if index < 0:
        raise StatusListError("a status list index is not negative")
    return {
        "id": f"{status_list_credential}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": status_list_credential,
    }


def status_list_credential(
    credential_id: str,
    issuer: str,
    status_list: StatusList,
    *,
    purpose: str = "revocation",
    valid_from: datetime | None = None,
    valid_until: datetime | None = None,
) -> dict[str, Any]:
    """An unsigned ``BitstringStatusListCredential`` carrying ``status_list`` (sign it after)."""
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2],
        "id": credential_id,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": issuer,
    }
    if valid_from is not None:
        credential["validFrom"] = format_datetime(valid_from)
    if valid_until is not None:
        credential["validUntil"] = format_datetime(valid_until)
    credential["credentialSubject"] = {
        "id": f"{credential_id}#list",
        "type": "BitstringStatusList",
        "statusPurpose": purpose,
        "encodedList": status_list.encode(),
    }
    return credential

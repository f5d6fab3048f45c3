"""Multibase text encodings used by Data Integrity: base58btc (``z``) and base64url (``u``).

Both are small enough to own: base58btc is the Bitcoin alphabet with leading zero bytes kept as
``1`` characters, base64url is RFC 4648 section 5 without padding.
"""

from __future__ import annotations

import base64
import binascii

__all__ = [
    "MultibaseError",
    "b58decode",
    "b58encode",
    "decode_base58btc",
    "decode_base64url",
    "encode_base58btc",
    "encode_base64url",
]

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: value for value, char in enumerate(_B58_ALPHABET)}


class MultibaseError(ValueError):
    """A multibase string is malformed or uses an encoding other than the one expected."""


def b58encode(data: bytes) -> str:
    """Encode bytes as base58 (Bitcoin alphabet), keeping leading zero bytes as ``1``."""
    zeros = len(data) - len(data.lstrip(b"\x00"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Decode base58 (Bitcoin alphabet); raises :class:`MultibaseError` on a foreign character."""
    number = 0
    for char in text:
        try:
            number = number * 58 + _B58_INDEX[char]
        except KeyError:
            raise MultibaseError(f"{char!r} is not a base58btc character") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\x00" * zeros + body


def encode_base58btc(data: bytes) -> str:
    """Multibase base58btc: ``z`` followed by the base58 text."""
    return "z" + b58encode(data)


def decode_base58btc(text: str) -> bytes:
    """Decode a multibase base58btc string (must start with ``z``)."""
    if not text.startswith("z"):
        raise MultibaseError("expected multibase base58btc, a string starting with 'z'")
    return b58decode(text[1:])


def encode_base64url(data: bytes) -> str:
    """Multibase base64url without padding: ``u`` followed by the text."""
    return "u" + base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_base64url(text: str) -> bytes:
    """Decode a multibase base64url string (must start with ``u``; padding is optional)."""
    if not text.startswith("u"):
        raise MultibaseError("expected multibase base64url, a string starting with 'u'")
    body = text[1:]
    if not body.isascii() or any(c in "+/" for c in body):
        raise MultibaseError("base64url text may only use A-Z, a-z, 0-9, '-' and '_'")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MultibaseError(f"not valid base64url: {exc}") from None

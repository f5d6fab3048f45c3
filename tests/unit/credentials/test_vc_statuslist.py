"""Bitstring Status List encoding, bits, builders and random index assignment."""

from __future__ import annotations

import gzip

import pytest

from ler.credentials import (
    MIN_BITS,
    StatusList,
    StatusListError,
    allocate_index,
    status_list_credential,
    status_list_entry,
)
from ler.credentials.multibase import decode_base64url, encode_base64url

pytestmark = pytest.mark.unit


def test_new_list_has_131072_clear_bits_and_encodes_compactly() -> None:
    status_list = StatusList()
    assert status_list.size == MIN_BITS == 131_072
    encoded = status_list.encode()
    assert encoded.startswith("u")
    assert "=" not in encoded
    assert len(encoded) < 200  # 16 KiB of zeros gzip to almost nothing
    assert gzip.decompress(decode_base64url(encoded)) == bytes(MIN_BITS // 8)


def test_bit_zero_is_the_most_significant_bit_of_the_first_byte() -> None:
    status_list = StatusList()
    status_list.set(0)
    status_list.set(9)
    raw = gzip.decompress(decode_base64url(status_list.encode()))
    assert raw[0] == 0x80
    assert raw[1] == 0x40


def test_set_get_clear_and_round_trip() -> None:
    status_list = StatusList(MIN_BITS * 2)
    for index in (0, 7, 8, 94567, MIN_BITS * 2 - 1):
        status_list.set(index)
    status_list.set(7, False)
    decoded = StatusList.decode(status_list.encode())
    assert decoded.size == MIN_BITS * 2
    assert decoded.set_indices() == [0, 8, 94567, MIN_BITS * 2 - 1]
    assert decoded.get(94567)
    assert not decoded.get(94566)
    assert not decoded.get(7)


def test_encoding_is_deterministic() -> None:
    first, second = StatusList(), StatusList()
    first.set(42)
    second.set(42)
    assert first.encode() == second.encode()


def test_out_of_range_and_too_small_lists_are_refused() -> None:
    status_list = StatusList()
    with pytest.raises(StatusListError, match="outside"):
        status_list.get(MIN_BITS)
    with pytest.raises(StatusListError, match="outside"):
        status_list.set(-1)
    with pytest.raises(StatusListError, match="at least"):
        StatusList(1024)
    short = encode_base64url(gzip.compress(bytes(1024)))
    with pytest.raises(StatusListError, match="fewer than"):
        StatusList.decode(short)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("zabc", "base64url"),
        ("u" + "A" * 40, "GZIP"),
        (encode_base64url(gzip.compress(bytes(MIN_BITS // 8))[:-12]), "truncated"),
    ],
)
def test_malformed_lists_are_refused(encoded: str, message: str) -> None:
    with pytest.raises(StatusListError, match=message):
        StatusList.decode(encoded)


def test_gzip_bomb_is_refused() -> None:
    bomb = encode_base64url(gzip.compress(bytes(17 * 1024 * 1024)))
    with pytest.raises(StatusListError, match="16 MiB"):
        StatusList.decode(bomb)


def test_allocate_index_is_random_and_avoids_used_indices() -> None:
    picks = {allocate_index(set()) for _ in range(50)}
    assert len(picks) > 45  # 50 draws among 131,072 rarely collide
    assert all(0 <= p < MIN_BITS for p in picks)
    used = set(range(MIN_BITS)) - {12345}
    assert allocate_index(used) == 12345
    assert allocate_index(lambda i: i != 777) == 777
    with pytest.raises(StatusListError, match="in use"):
        allocate_index(lambda _i: True, size=MIN_BITS)


def test_entry_and_list_credential_shapes() -> None:
    url = "https://registry.example.org/v1/status-lists/1"
    entry = status_list_entry(url, 94567)
    assert entry == {
        "id": f"{url}#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": url,
    }
    status_list = StatusList()
    status_list.set(94567)
    credential = status_list_credential(url, "did:web:registry.example.org", status_list)
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    subject = credential["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "revocation"
    assert StatusList.decode(subject["encodedList"]).get(94567)

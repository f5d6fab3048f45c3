"""Multibase, Multikey and key files."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ler.credentials import KeyFileError, PublicKey, SigningKey, generate_key_file, load_key_file
from ler.credentials.multibase import (
    MultibaseError,
    b58decode,
    b58encode,
    decode_base58btc,
    decode_base64url,
    encode_base64url,
)
from ler.credentials.multikey import MultikeyError, decode_public_key, decode_secret_key

pytestmark = pytest.mark.unit

VECTOR_PUBLIC = "z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"\x00", "1"),
        (b"\x00\x00\x01", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (bytes.fromhex("0000287fb4cd"), "11233QC4"),
    ],
)
def test_base58_known_values(raw: bytes, text: str) -> None:
    assert b58encode(raw) == text
    assert b58decode(text) == raw


def test_base58_round_trips_random_bytes() -> None:
    for size in (1, 2, 31, 32, 33, 34, 64):
        data = os.urandom(size)
        assert b58decode(b58encode(data)) == data
        assert b58decode(b58encode(b"\x00\x00" + data)) == b"\x00\x00" + data


def test_base58_rejects_foreign_characters_and_wrong_prefix() -> None:
    with pytest.raises(MultibaseError, match="'0'"):
        b58decode("z0OIl")
    with pytest.raises(MultibaseError, match="'z'"):
        decode_base58btc("6MkrJVna")


def test_base64url_has_prefix_and_no_padding() -> None:
    text = encode_base64url(b"\xfb\xff")
    assert text == "u-_8"
    assert decode_base64url(text) == b"\xfb\xff"
    with pytest.raises(MultibaseError):
        decode_base64url("m+/8=")
    with pytest.raises(MultibaseError):
        decode_base64url("u+/8")


def test_public_multikey_has_the_ed01_prefix() -> None:
    raw = decode_public_key(VECTOR_PUBLIC)
    assert len(raw) == 32
    assert PublicKey(raw).multibase == VECTOR_PUBLIC
    assert decode_base58btc(VECTOR_PUBLIC)[:2] == b"\xed\x01"


def test_secret_key_is_refused_where_a_public_key_is_expected() -> None:
    secret = SigningKey.generate("did:example:1#k", "did:example:1").secret_multibase
    assert secret.startswith("z3u2")
    with pytest.raises(MultikeyError, match="0xed01"):
        decode_public_key(secret)
    with pytest.raises(MultikeyError, match="0x8026"):
        decode_secret_key(VECTOR_PUBLIC)


def test_sign_and_verify() -> None:
    key = SigningKey.generate("did:example:1#k", "did:example:1")
    signature = key.sign(b"message")
    assert key.public_key.verify(signature, b"message")
    assert not key.public_key.verify(signature, b"messagf")
    assert "seed" not in repr(key)
    assert key.secret_multibase not in repr(key)


def test_generated_key_file_is_private_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "key-1.json"
    key = generate_key_file(path, "did:web:registry.example.org#key-1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert set(data) == {"id", "type", "controller", "publicKeyMultibase", "secretKeyMultibase"}
    loaded = load_key_file(path)
    assert isinstance(loaded, SigningKey)
    assert loaded.seed == key.seed
    assert loaded.controller == "did:web:registry.example.org"
    with pytest.raises(FileExistsError):
        generate_key_file(path, "did:web:registry.example.org#key-1")


def test_public_only_key_file_loads_as_public_key(tmp_path: Path) -> None:
    key = SigningKey.generate("did:web:h#key-1", "did:web:h")
    data = key.to_key_file()
    del data["secretKeyMultibase"]
    path = tmp_path / "key-1.json"
    path.write_text(json.dumps(data))
    loaded = load_key_file(path)
    assert isinstance(loaded, PublicKey)
    assert loaded.raw == key.public_key.raw


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"publicKeyMultibase": VECTOR_PUBLIC}, "mismatched halves"),
        ({"id": "did:web:other#key-1"}, "'id'"),
        ({"secretKeyMultibase": "zzzz"}, "0x8026"),
        ({"id": ""}, "'id'"),
    ],
)
def test_bad_key_files_name_the_file_and_field(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    data = SigningKey.generate("did:web:h#key-1", "did:web:h").to_key_file() | change
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(KeyFileError, match=message) as caught:
        load_key_file(path)
    assert str(path) in str(caught.value)


def test_missing_and_malformed_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="not found"):
        load_key_file(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeyFileError, match="not valid JSON"):
        load_key_file(tmp_path / "bad.json")

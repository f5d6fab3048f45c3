"""Avro codec on fastavro, with Avro single-object encoding.

The ``.avsc`` files under ``schemas/avro/<topic>/<EventName>.v<N>.avsc`` are the only definition of
each event. Every message is written as the Avro spec's single-object encoding: the two marker bytes
``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's canonical form,
then the Avro binary body. A reader looks the fingerprint up among every version it knows and
resolves the writer schema to the newest version of that event, so historical data stays readable.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import to_parsing_canonical_form

MARKER = b"\xc3\x01"
HEADER_SIZE = 10
_FILE_NAME = re.compile(r"^(?P<name>[A-Z][A-Za-z0-9]+)\.v(?P<version>[1-9][0-9]*)\.avsc$")
_EMPTY64 = 0xC15D213AA4D7A795


class AvroError(ValueError):
    """A message that cannot be encoded or decoded; the message says why."""


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY64 & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def fingerprint(canonical_form: str) -> int:
    """CRC-64-AVRO (Rabin) fingerprint of a schema's parsing canonical form, as the spec defines."""
    fp = _EMPTY64
    for byte in canonical_form.encode("utf-8"):
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One released version of one event's schema."""

    topic: str
    event_type: str
    version: int
    path: Path
    raw: dict[str, Any]
    parsed: Any
    fingerprint: int

    @property
    def header(self) -> bytes:
        return MARKER + struct.pack("<Q", self.fingerprint)


def default_schema_dir() -> Path:
    """``LER_SCHEMAS_DIR`` if set, else ``schemas/avro`` of the source tree."""
    override = os.environ.get("LER_SCHEMAS_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1] / "schemas" / "avro"


class SchemaRegistry:
    """Every schema version found in a directory tree of ``.avsc`` files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_fingerprint: dict[int, SchemaVersion] = {}
        self._versions: dict[str, list[SchemaVersion]] = {}
        for path in sorted(root.glob("*/*.avsc")):
            self._add(path)
        if not self._versions:
            raise AvroError(f"no .avsc schemas found under {root}")
        for versions in self._versions.values():
            versions.sort(key=lambda v: v.version)

    def _add(self, path: Path) -> None:
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise AvroError(f"{path}: schema files are named <EventName>.v<N>.avsc")
        raw = json.loads(path.read_text(encoding="utf-8"))
        event_type = match["name"]
        if raw.get("name") != event_type:
            raise AvroError(f"{path}: record name {raw.get('name')!r} differs from the file name")
        parsed = parse_schema(raw)
        fp = fingerprint(to_parsing_canonical_form(raw))
        version = SchemaVersion(
            topic=path.parent.name,
            event_type=event_type,
            version=int(match["version"]),
            path=path,
            raw=raw,
            parsed=parsed,
            fingerprint=fp,
        )
        if fp in self._by_fingerprint:
            other = self._by_fingerprint[fp].path
            raise AvroError(f"{path}: same canonical schema as {other}")
        self._by_fingerprint[fp] = version
        self._versions.setdefault(event_type, []).append(version)

    def __iter__(self) -> Iterator[SchemaVersion]:
        for versions in self._versions.values():
            yield from versions

    @property
    def event_types(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, event_type: str) -> list[SchemaVersion]:
        try:
            return self._versions[event_type]
        except KeyError:
            raise AvroError(f"unknown event type {event_type!r}") from None

    def latest(self, event_type: str) -> SchemaVersion:
        return self.versions(event_type)[-1]

    def topic_of(self, event_type: str) -> str:
        return self.latest(event_type).topic

    def by_fingerprint(self, fp: int) -> SchemaVersion:
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise AvroError(f"unknown writer schema fingerprint {fp:016x}") from None


class AvroCodec:
    """Encodes events with the newest schema of their type and decodes any known version."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Encode one event; its ``event_type`` field names the schema."""
        event_type = record.get("event_type")
        if not isinstance(event_type, str):
            raise AvroError("event_type: required, a string naming the schema")
        schema = self.registry.latest(event_type)
        buffer = io.BytesIO()
        buffer.write(schema.header)
        try:
            schemaless_writer(buffer, schema.parsed, dict(record))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AvroError(f"{event_type}: does not match its schema: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode one single-object-encoded event into the newest version of its schema."""
        writer = self.writer_of(data)
        reader = self.registry.latest(writer.event_type)
        try:
            record = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many types on truncated or corrupt input
            raise AvroError(
                f"{writer.event_type} v{writer.version}: body does not decode: {type(exc).__name__}"
            ) from exc
        if not isinstance(record, dict):
            raise AvroError(f"{writer.event_type}: decoded to {type(record).__name__}")
        return record

    def writer_of(self, data: bytes | None) -> SchemaVersion:
        """The writer schema named by a message's single-object header."""
        if data is None:
            raise AvroError("message has no value")
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise AvroError("not Avro single-object encoding (missing C3 01 marker)")
        (fp,) = struct.unpack_from("<Q", data, 2)
        return self.registry.by_fingerprint(fp)


@cache
def default_codec() -> AvroCodec:
    """The codec over the schemas shipped with the platform (loaded once per process)."""
    return AvroCodec(SchemaRegistry(default_schema_dir()))


def write_lock(registry: SchemaRegistry, path: Path) -> list[str]:
    """Add new schema versions to the lock file; refuse if a released version changed."""
    locked: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    added = []
    for version in registry:
        name = str(version.path.relative_to(registry.root))
        value = f"{version.fingerprint:016x}"
        if name in locked and locked[name] != value:
            raise AvroError(
                f"{name} was released with fingerprint {locked[name]}; add a new version"
            )
        if name not in locked:
            locked[name] = value
            added.append(name)
    path.write_text(json.dumps(dict(sorted(locked.items())), indent=2) + "\n")
    return added


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--lock"]:
        sys.exit("usage: python -m ler.avro --lock")
    root = default_schema_dir()
    added = write_lock(SchemaRegistry(root), root / "fingerprints.lock")
    print("locked: " + (", ".join(added) if added else "nothing new"))

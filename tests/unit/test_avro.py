"""The Avro codec: single-object encoding, every schema, and evolution between versions."""

from __future__ import annotations

import io
import itertools
import json
import struct
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as fastavro_fingerprint
from fastavro.schema import parse_schema, to_parsing_canonical_form

from ler.avro import MARKER, AvroCodec, AvroError, SchemaRegistry, default_schema_dir, fingerprint
from ler.envelope import ENVELOPE_FIELDS
from ler.topics import ALL_TOPICS

pytestmark = pytest.mark.unit
SCHEMAS = default_schema_dir()
LOCK = SCHEMAS / "fingerprints.lock"


def sample(schema: Any, name: str = "") -> Any:
    """A valid value for any Avro schema (non-null branch of unions, first enum symbol)."""
    if isinstance(schema, list):
        non_null = [s for s in schema if s != "null"]
        return sample(non_null[0], name)
    if isinstance(schema, dict):
        logical = schema.get("logicalType")
        if logical == "uuid":
            return uuid.UUID(int=7)
        if logical == "timestamp-micros":
            return datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        if logical == "date":
            return date(2025, 6, 30)
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: sample(f["type"], f["name"]) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][0]
        if kind == "array":
            return [sample(schema["items"])]
        if kind == "map":
            return {"k": sample(schema["values"])}
        return sample(kind, name)
    return {
        "string": f"{name}-value",
        "boolean": True,
        "int": 42,
        "long": 4242,
        "double": 1.5,
        "float": 2.5,
        "bytes": b"\x00\xffbytes",
    }[schema]


@pytest.fixture(scope="module")
def registry() -> SchemaRegistry:
    return SchemaRegistry(SCHEMAS)


def test_fingerprint_is_crc64_avro_as_fastavro_computes_it(registry: SchemaRegistry) -> None:
    for version in registry:
        canonical = to_parsing_canonical_form(version.raw)
        # fastavro gives the fingerprint's bytes in the little-endian order the header carries.
        little_endian = struct.pack("<Q", fingerprint(canonical)).hex()
        assert little_endian == fastavro_fingerprint(canonical, "CRC-64-AVRO")


def test_every_event_round_trips_with_the_single_object_header(registry: SchemaRegistry) -> None:
    codec = AvroCodec(registry)
    for event_type in registry.event_types:
        latest = registry.latest(event_type)
        record = sample(latest.raw)
        record["event_type"] = event_type
        data = codec.encode(record)
        assert data[:2] == MARKER == b"\xc3\x01"
        assert struct.unpack_from("<Q", data, 2)[0] == latest.fingerprint
        assert codec.decode(data) == record


def test_every_schema_leads_with_the_envelope(registry: SchemaRegistry) -> None:
    for version in registry:
        names = [f["name"] for f in version.raw["fields"]][: len(ENVELOPE_FIELDS)]
        assert tuple(names) == ENVELOPE_FIELDS, version.path
        event_id, _, occurred_at, *_ = version.raw["fields"]
        assert event_id["type"] == {"type": "string", "logicalType": "uuid"}
        assert occurred_at["type"] == {"type": "long", "logicalType": "timestamp-micros"}


def test_schemas_live_in_a_folder_per_public_topic(registry: SchemaRegistry) -> None:
    topics = {t.name for t in ALL_TOPICS}
    assert {v.topic for v in registry} <= topics


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "missing C3 01 marker"),
        (b'{"json": true}', "missing C3 01 marker"),
        (MARKER + b"\x00" * 8 + b"\x02", "unknown writer schema fingerprint"),
    ],
)
def test_undecodable_messages_say_why(registry: SchemaRegistry, data: bytes, reason: str) -> None:
    with pytest.raises(AvroError, match=reason):
        AvroCodec(registry).decode(data)


def test_a_truncated_body_is_an_avro_error(registry: SchemaRegistry) -> None:
    codec = AvroCodec(registry)
    record = sample(registry.latest("PersonEnrolled").raw)
    record["event_type"] = "PersonEnrolled"
    data = codec.encode(record)
    with pytest.raises(AvroError, match="body does not decode"):
        codec.decode(data[:20])


def test_encoding_a_record_that_breaks_its_schema_names_the_event(registry: SchemaRegistry) -> None:
    with pytest.raises(AvroError, match="ConsentChanged"):
        AvroCodec(registry).encode({"event_type": "ConsentChanged", "granted": "yes"})


def _pairs(registry: SchemaRegistry) -> list[tuple[Any, Any]]:
    pairs = []
    for event_type in registry.event_types:
        versions = registry.versions(event_type)
        assert [v.version for v in versions] == list(range(1, len(versions) + 1)), event_type
        pairs += list(itertools.pairwise(versions))
    return pairs


def test_each_new_version_reads_the_previous_ones_data_and_vice_versa(
    registry: SchemaRegistry,
) -> None:
    for old, new in _pairs(registry):
        for writer, reader in ((old, new), (new, old)):
            record = sample(writer.raw)
            buffer = io.BytesIO()
            schemaless_writer(buffer, writer.parsed, record)
            buffer.seek(0)
            schemaless_reader(buffer, writer.parsed, reader.parsed)


def test_released_schema_versions_never_change(registry: SchemaRegistry) -> None:
    """Every version in the tree is in the lock file with the same fingerprint (a new version is a
    new file; a released file is never edited). Regenerate with ``make schemas-lock``."""
    locked = json.loads(LOCK.read_text())
    current = {str(v.path.relative_to(SCHEMAS)): f"{v.fingerprint:016x}" for v in registry}
    changed = {p: fp for p, fp in current.items() if p in locked and locked[p] != fp}
    assert not changed, f"released schemas were edited: {sorted(changed)}"
    assert set(locked) <= set(current), "a released schema version was deleted"
    assert set(current) == set(locked), "new schema versions: add them with make schemas-lock"


def test_schema_files_are_named_for_their_record(tmp_path: Path) -> None:
    folder = tmp_path / "ler.records.v1"
    folder.mkdir()
    (folder / "Wrong.v1.avsc").write_text(
        json.dumps({"type": "record", "name": "Right", "fields": []})
    )
    with pytest.raises(AvroError, match="differs from the file name"):
        SchemaRegistry(tmp_path)


def test_new_fields_need_defaults_to_stay_compatible(tmp_path: Path) -> None:
    """The evolution check above is real: a field added without a default breaks reading old data."""
    v1 = {"type": "record", "name": "E", "fields": [{"name": "a", "type": "string"}]}
    v2 = {"type": "record", "name": "E", "fields": [*v1["fields"], {"name": "b", "type": "string"}]}
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(v1), {"a": "x"})
    buffer.seek(0)
    with pytest.raises(Exception, match="b"):
        schemaless_reader(buffer, parse_schema(v1), parse_schema(v2))

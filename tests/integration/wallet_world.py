"""Pete's wallet for the wallet integration tests: enrollment, record and verification events
(credentials signed by a real key ring, one revoked) applied by the wallet's own projector to a
real store, and a stand-in of the verification service's public documents (its DID document and
status lists) served over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ler.avro import default_codec
from ler.credentials import load_key_ring
from ler.credentials.multikey import generate_key_file
from ler.envelope import event, new_envelope
from ler.processing import Message
from services.verification.credentials import CredentialInput, Issuer
from services.wallet.bootstrap import new_runner
from services.wallet.store import SqlWalletStore

CODEC = default_codec()
DID = "did:web:registry.test"
LIST_ID = "list-1"


class RegistryDocuments:
    """The verification service's public documents, served over HTTP (mutable: revocations)."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        documents, requests = self.documents, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                found = documents.get(self.path)
                body = json.dumps(found or {"detail": "not found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> RegistryDocuments:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class PeteWorld:
    """Ids and tokens of the world: Pete (mixed records) and Olive (someone else)."""

    pete: str = field(default_factory=lambda: str(uuid.uuid4()))
    olive: str = field(default_factory=lambda: str(uuid.uuid4()))
    org: str = field(default_factory=lambda: str(uuid.uuid4()))
    pete_token: str = field(
        default_factory=lambda: f"ler_person_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    )
    olive_token: str = field(
        default_factory=lambda: f"ler_person_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    )
    records: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    issuer: Issuer | None = None


RECORDS = {
    # name: (owner, type, title, fields, verified?, revoked?, submitted by the org?)
    "employment": (
        "pete",
        "employment",
        "Child Care Worker",
        {"action": "hired", "start_date": date(2022, 3, 1), "soc_code": "39-9011.00"},
        True,
        False,
        True,
    ),
    "cda": (
        "pete",
        "credential",
        "Child Development Associate",
        {"issued_on": date(2023, 6, 1), "credential_type": "CDA"},
        True,
        False,
        True,
    ),
    "cpr": (
        "pete",
        "credential",
        "Pediatric First Aid/CPR",
        {"issued_on": date(2024, 1, 10), "credential_type": "Pediatric First Aid/CPR"},
        False,
        False,
        False,
    ),
    "mandated": (
        "pete",
        "credential",
        "Mandated Reporter Training",
        {"issued_on": date(2024, 2, 1), "credential_type": "Mandated Reporter Training"},
        False,
        False,
        False,
    ),
    "food": (
        "pete",
        "credential",
        "Food Handler Card",
        {"issued_on": date(2021, 5, 1), "credential_type": "Food Handler"},
        True,
        True,
        True,
    ),
    "olive_job": (
        "olive",
        "employment",
        "Preschool Teacher",
        {"action": "hired", "start_date": date(2020, 9, 1), "soc_code": "25-2011"},
        True,
        False,
        True,
    ),
}
EVENT_TYPES = {
    "employment": "EmploymentRecordSubmitted",
    "credential": "CredentialRecordSubmitted",
}


def _envelope(event_type: str) -> Any:
    return new_envelope(event_type, "test", occurred_at=datetime.now(UTC))


def build_world(key_dir: Path, registry: RegistryDocuments) -> tuple[PeteWorld, list[Message]]:
    """The world's events as broker messages (topic, partition 0, consecutive offsets)."""
    key_dir.mkdir(parents=True, exist_ok=True)
    if not (key_dir / "key-1.json").exists():
        generate_key_file(key_dir / "key-1.json", f"{DID}#key-1", controller=DID)
    issuer = Issuer(load_key_ring(key_dir), public_url=registry.url, name="Registry of Tests")
    world = PeteWorld(issuer=issuer)
    out: list[tuple[str, str, dict[str, Any]]] = []
    for name, person, token in (
        ("Pete", world.pete, world.pete_token),
        ("Olive", world.olive, world.olive_token),
    ):
        out.append(
            (
                "ler.enrollment.v1",
                person,
                event(
                    _envelope("PersonEnrolled"),
                    person_id=person,
                    given_name=name,
                    family_name="Tester",
                    email=f"{name.lower()}@example.org",
                    birth_date=date(1988, 7, 14),
                    county="Kent County",
                    education_level="Associate degree",
                    demographics={"gender": "male", "primary_language": "English"},
                    access_token_sha256=_sha(token),
                ),
            )
        )
    out.append(
        (
            "ler.enrollment.v1",
            world.org,
            event(
                _envelope("OrganizationRegistered"),
                organization_id=world.org,
                name="Bright Start Early Learning",
                kind="employer",
            ),
        )
    )
    revoked: list[int] = []
    for index, (name, (owner, kind, title, fields, verified, is_revoked, by_org)) in enumerate(
        RECORDS.items()
    ):
        person = world.pete if owner == "pete" else world.olive
        record_id = str(uuid.uuid4())
        world.records[name] = record_id
        submitted = event(
            _envelope(EVENT_TYPES[kind]),
            record_id=record_id,
            person_id=person,
            submitted_by=world.org if by_org else person,
            submitter_kind="organization" if by_org else "person",
            title=title,
            **fields,
        )
        out.append(("ler.records.v1", person, submitted))
        common = {
            "person_id": person,
            "record_id": record_id,
            "organization_id": world.org if by_org else None,
            "record_type": kind,
            "submitted_at": submitted["occurred_at"],
        }
        if not verified:
            out.append(
                (
                    "ler.verification.v1",
                    person,
                    event(
                        _envelope("RecordQueuedForReview"),
                        **common,
                        actor="system",
                        record_version=1,
                        queue="manual_review",
                        policy_rule="self-reported",
                    ),
                )
            )
            continue
        credential_id = str(uuid.uuid4())
        data = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in fields.items()}
        credential = issuer.issue(
            CredentialInput(
                credential_id=credential_id,
                record_id=record_id,
                person_id=person,
                record_type=kind,
                data={"title": title, **data},
                organization_id=world.org,
                organization_name="Bright Start Early Learning",
            ),
            LIST_ID,
            1000 + index,
        )
        world.credentials[name] = credential
        out.append(
            (
                "ler.verification.v1",
                person,
                event(
                    _envelope("RecordVerified"),
                    **common,
                    actor="system",
                    record_version=1,
                    queue="auto_verification",
                    credential_id=credential_id,
                    credential_type=credential["type"][1],
                    credential=json.dumps(credential),
                ),
            )
        )
        if is_revoked:
            revoked.append(1000 + index)
            out.append(
                (
                    "ler.verification.v1",
                    person,
                    event(
                        _envelope("CredentialRevoked"),
                        **common,
                        actor=f"organization:{world.org}",
                        record_version=2,
                        credential_id=credential_id,
                        reason="card expired and not renewed",
                    ),
                )
            )
    registry.documents["/.well-known/did.json"] = issuer.ring.did_document()
    registry.documents[f"/v1/status-lists/{LIST_ID}"] = issuer.status_list(
        LIST_ID, 131_072, revoked
    )
    offsets: dict[str, int] = {}
    messages = []
    for topic, key, record in out:
        offset = offsets.get(topic, 0)
        offsets[topic] = offset + 1
        messages.append(Message(topic, 0, offset, key.encode(), CODEC.encode(record)))
    return world, messages


async def project(store: SqlWalletStore, messages: list[Message]) -> None:
    """Apply the messages with the wallet's own projector (as ``ler process wallet`` would)."""
    await store.open()
    runner = new_runner(store, emit=False)
    await runner.load_positions()
    await runner.process(messages)


def _sha(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


@contextlib.contextmanager
def registry_documents() -> Iterator[RegistryDocuments]:
    with RegistryDocuments() as registry:
        yield registry

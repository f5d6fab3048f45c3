"""The native RDFC-1.0 path (oxigraph): byte-identical to the W3C rdf-canon vectors and to the
PyLD path on every credential shape the platform issues and accepts; poison graphs still refused."""

from __future__ import annotations

import csv
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyoxigraph as ox
import pytest

from ler.credentials import TooComplexError, canonize
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3
from ler.credentials.did import KeyRing
from ler.credentials.jsonld import _Processor, default_loader
from ler.credentials.native import canonical_nquads, native_canonical, sorted_nquads
from ler.credentials.presentation import build_presentation, sign_presentation
from ler.skills import load_taxonomy
from services.verification.credentials import CredentialInput, Issuer
from services.wallet.domain import PRESENTATION_TERMS
from tests.unit.credentials.test_vc_verification_limits import poison_graph
from tests.unit.credentials.vc_fixtures import (
    REGISTRY_DID,
    employment_credential,
    open_badge_credential,
    registry_key,
    signed,
    vector_json,
)

pytestmark = pytest.mark.unit

RDFC10 = Path(__file__).parent / "vectors" / "rdfc10"
MOMENT = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def _vectors() -> list[dict[str, str]]:
    with (RDFC10 / "manifest.csv").open(encoding="utf-8") as manifest:
        return [row for row in csv.DictReader(manifest) if row["rdfc10"] == "TRUE"]


def _dataset(test: str) -> ox.Dataset:
    path = RDFC10 / f"{test}-in.nq"
    return ox.Dataset(ox.parse(path.read_bytes(), format=ox.RdfFormat.N_QUADS))


def _expected(test: str) -> str:
    return (RDFC10 / f"{test}-rdfc10.nq").read_text(encoding="utf-8")


@pytest.mark.parametrize("row", _vectors(), ids=lambda row: row["test"])
def test_oxigraph_rdfc10_matches_every_w3c_vector(row: dict[str, str]) -> None:
    dataset = _dataset(row["test"])
    algorithm = (
        ox.CanonicalizationAlgorithm.RDFC_1_0_SHA_384
        if row["hashAlgorithm"] == "SHA384"
        else ox.CanonicalizationAlgorithm.RDFC_1_0
    )
    dataset.canonicalize(algorithm)
    assert sorted_nquads(dataset) == _expected(row["test"])


@pytest.mark.parametrize(
    "row", [r for r in _vectors() if not r["hashAlgorithm"]], ids=lambda row: row["test"]
)
def test_the_guarded_native_path_gives_the_vector_or_declines(row: dict[str, str]) -> None:
    # Declining (None) means "bounded PyLD path"; what it gives must be the vector's bytes.
    result = canonical_nquads(_dataset(row["test"]))
    assert result is None or result == _expected(row["test"])


def test_the_guard_takes_most_vectors_and_declines_every_look_alike_one() -> None:
    taken = {r["test"] for r in _vectors() if canonical_nquads(_dataset(r["test"])) is not None}
    assert {"test001", "test002", "test003", "test004", "test005"} <= taken
    # Circles and cliques of blank nodes: first-degree hashes cannot tell their nodes apart.
    look_alike = {"test021", "test022", "test023", "test024", "test033", "test034"}
    assert not taken & (look_alike | {"test044", "test045", "test046"})


def test_the_w3c_negative_poison_vector_is_declined_in_milliseconds() -> None:
    dataset = _dataset("test074")  # a 10-node clique; unbounded RDFC-1.0 runs for hours
    started = time.perf_counter()
    assert canonical_nquads(dataset) is None
    assert time.perf_counter() - started < 0.05


@pytest.mark.parametrize("nodes", [2, 3, 8, 40])
def test_a_poison_graph_never_reaches_the_native_canonicalizer(nodes: int) -> None:
    assert native_canonical(_expand(poison_graph(nodes))) is None
    started = time.perf_counter()
    with pytest.raises(TooComplexError):
        canonize(poison_graph(nodes))  # the default (native) path, through the bounded fallback
    assert time.perf_counter() - started < 0.2


def _expand(document: dict[str, Any]) -> Any:
    loader = default_loader()
    processor = _Processor(loader.processed_contexts)
    options = {"documentLoader": loader, "contextResolver": loader.context_resolver(), "base": None}
    return processor.expand(dict(document), options)


def _issuer() -> Issuer:
    key = registry_key()
    return Issuer(
        KeyRing(key.controller, (key,)),
        public_url="https://registry.example.org",
        name="Workforce Registry",
        taxonomy=load_taxonomy(),
    )


def _record(kind: str, data: dict[str, Any]) -> CredentialInput:
    return CredentialInput(
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        str(uuid.uuid4()),
        kind,
        {"description": 'Done \u00e9t\u00e9 \u2713 "quoted" \\ back', **data},
        str(uuid.uuid4()),
        "Sunny Days Child Care",
    )


RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("employment", {"title": "Lead Teacher", "action": "hired", "start_date": "2024-01-02"}),
    ("employment", {"title": "Director", "action": "separated", "start_date": "2020-05-06"}),
    (
        "learning",
        {
            "title": "Child Development",
            "completed_on": "2025-03-01",
            "hours": 3.0,
            "competencies": ["Child Development", "Health and Safety"],
        },
    ),
    ("learning", {"title": "Module 7", "completed_on": "2025-03-01", "hours": 12.5}),
    ("credential", {"title": "CPR", "issued_on": "2025-01-01", "credential_type": "CPR"}),
]


def _corpus() -> dict[str, dict[str, Any]]:
    issuer = _issuer()
    holder = registry_key(2)
    out: dict[str, dict[str, Any]] = {}
    issued = []
    for i, (kind, data) in enumerate(RECORDS):
        credential = issuer.issue(_record(kind, data), "1", i, MOMENT, suspension=("2", i))
        issued.append(credential)
        out[f"issued-{i}-{kind}"] = credential
        out[f"issued-{i}-{kind}-unsigned"] = {k: v for k, v in credential.items() if k != "proof"}
    out["issued-one-status-entry"] = issuer.issue(_record(*RECORDS[0]), "1", 7, MOMENT)
    for purpose in ("revocation", "suspension"):
        out[f"status-list-{purpose}"] = issuer.status_list(
            "1", 131072, [3, 77], MOMENT, purpose=purpose
        )
    out["employment-fixture"] = signed(employment_credential())
    out["open-badge-fixture"] = signed(open_badge_credential())
    out["w3c-eddsa-vector"] = vector_json("signedDataInt.json")
    presentation = build_presentation(issued[:3], presentation_id=f"urn:uuid:{uuid.uuid4()}")
    out["share-presentation"] = presentation
    with_demographics = dict(presentation)
    with_demographics["@context"] = [CREDENTIALS_V2, PRESENTATION_TERMS]
    with_demographics["holderDemographics"] = {"birthDate": "1990-01-02", "gender": "x"}
    out["share-presentation-demographics"] = with_demographics
    holder_presentation = build_presentation(issued[2:], holder=holder.controller)
    out["signed-presentation"] = sign_presentation(
        holder_presentation,
        holder,
        challenge="c-123",
        domain="https://verifier.example",
        expires=MOMENT + timedelta(minutes=5),
        created=MOMENT,
    )
    out["proof-configuration"] = {
        "@context": [CREDENTIALS_V2, OPEN_BADGES_V3],
        **{k: v for k, v in out["signed-presentation"]["proof"].items() if k != "proofValue"},
    }
    return out


CORPUS = _corpus()
# Shapes the native path declines on purpose (see ler.credentials.native): still equal bytes.
DECLINED = {"share-presentation-demographics"}  # @json literal


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_native_and_pyld_give_the_same_bytes_on_every_platform_shape(name: str) -> None:
    document = CORPUS[name]
    assert canonize(document) == canonize(document, native=False)


@pytest.mark.parametrize("name", sorted(set(CORPUS) - DECLINED))
def test_every_issued_shape_takes_the_native_path(name: str) -> None:
    document = {k: v for k, v in CORPUS[name].items() if k != "proof"}
    assert native_canonical(_expand(document)) == canonize(document, native=False)


EDGES: dict[str, Any] = {
    "control characters": "bell \u0007 and tab \t",
    "a fraction": 0.1,
    "a big float": 1e21,
    "a long integer": 2**70,
    "a language": {"@value": "bonjour", "@language": "fr-CA"},
    "a bad language": {"@value": "x", "@language": "not a tag!"},
    "json": None,
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_edge_values_canonicalize_the_same_both_ways(edge: str) -> None:
    terms: dict[str, Any] = {"v": "urn:example:v"}
    value = EDGES[edge]
    if edge == "json":
        terms = {"v": {"@id": "urn:example:v", "@type": "@json"}}
        value = {"b": [1, 2.5, True], "a": "\u00e9"}
    document = {
        "@context": [CREDENTIALS_V2, terms],
        "type": ["VerifiableCredential"],
        "issuer": REGISTRY_DID,
        "credentialSubject": {"id": "did:example:someone", "v": value},
    }
    assert canonize(document) == canonize(document, native=False)

"""Who may call what: every endpoint of every service x every role, from a table.

Each row names an endpoint as its OpenAPI document does and the roles that get through; every
other role must be refused (401, 403, or 404 where an answer would reveal that something exists).
An endpoint in a service's OpenAPI without a row fails the test, so a new endpoint is classified
when it is added: add a row (and, for a new service, a ``Service`` entry) below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ler.settings import KafkaSettings, PlatformSettings
from ler.web import token_hash
from tests.helpers import client_for
from tests.integration import authz_world
from tests.integration.authz_world import SPARE, World, build_world, new_person

pytestmark = pytest.mark.integration

ROLES = ("admin", "issuer", "reviewer", "person", "other_person", "partner", "anonymous")
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"admin", "reviewer"})
ORGANIZATIONS = frozenset({"issuer", "partner"})
REFUSED = {401, 403, 404}

Body = Callable[[World, str], Any]
Params = Callable[[World, str], dict[str, str]]


@dataclass(frozen=True)
class Row:
    """One endpoint: the roles that get ``ok``; ``{name}`` in the path is ``world.ids[name]``
    unless ``params`` names the object per role (see :func:`own`)."""

    method: str
    path: str
    allowed: frozenset[str]
    body: Body | None = None
    ok: int = 200
    query: str = ""
    params: Params | None = None


def own(param: str, name: str) -> Params:
    """``{param}`` is the object ``name:<role>`` an allowed role's call consumes (a decision,
    a revocation, a deletion); the refused roles all try ``name:spare``, left as it was made."""

    def params(world: World, role: str) -> dict[str, str]:
        return {param: world.ids.get(f"{name}:{role}", world.ids[f"{name}:{SPARE}"])}

    return params


def only(*roles: str) -> frozenset[str]:
    return frozenset(roles)


def _record(world: World, _: str) -> dict[str, Any]:
    return {
        "person_id": world.person_id,
        "type": "credential",
        "title": "CDA Credential",
        "issued_on": "2024-05-01",
    }


def _own_record(_: World, __: str) -> dict[str, Any]:
    return {"type": "learning", "title": "First aid", "completed_on": "2025-01-10"}


def _subscription(_: World, role: str) -> dict[str, Any]:
    types = ["partner_feed.record_published"] if role == "partner" else ["record.verified"]
    return {"url": "https://hooks.example.org/hook", "event_types": types}


PROBES = [Row("GET", "/healthz", EVERYONE), Row("GET", "/readyz", EVERYONE)]

ENROLLMENT = [
    *PROBES,
    Row(
        "POST",
        "/v1/organizations",
        only("admin"),
        lambda w, r: {"name": "Rows & Co", "kind": "employer"},
        201,
    ),
    Row("POST", "/v1/persons", only("admin"), new_person, 201),
    Row(
        "POST",
        "/v1/persons/{person_id}/consents",
        only("admin", "person"),
        lambda w, r: {"partner_id": w.partner_id, "granted": True},
    ),
    Row("POST", "/v1/records", only("issuer"), _record, 202),
    Row(
        "POST",
        "/v1/persons/{person_id}/affiliations",
        only("admin", "person"),
        lambda w, r: {"organization_id": w.ids.get(f"affiliable:{r}", w.ids["affiliable:admin"])},
        201,
    ),
    Row("GET", "/v1/persons/{person_id}/affiliations", only("admin", "person")),
    Row(
        "DELETE",
        "/v1/persons/{person_id}/affiliations/{organization_id}",
        only("admin", "person"),
        ok=204,
        params=own("organization_id", "affiliation"),
    ),
    Row("POST", "/v1/persons/{person_id}/records", only("person"), _own_record, 202),
    # Who holds a credential (the other services ask it; tests/integration/test_access_fresh.py).
    Row(
        "POST",
        "/v1/access/lookup",
        only("admin"),
        lambda w, _: {"sha256": token_hash(w.tokens.get("person") or "nobody")},
    ),
    Row(
        "POST",
        "/v1/persons/{person_id}/access-token",
        only("admin"),
        ok=201,
        params=own("person_id", "resettable"),
    ),
    # An organization revokes its own key too (tests/integration/test_access_revocation.py);
    # here the issuer's key must outlive this row, so only the admin's call is allowed.
    Row(
        "DELETE",
        "/v1/organizations/{organization_id}/api-key",
        only("admin"),
        ok=204,
        params=own("organization_id", "revokeorg"),
    ),
    # Last: the issuer rotates its own key, after which the world's issuer key is gone here.
    Row(
        "POST",
        "/v1/organizations/{organization_id}/api-key",
        only("admin", "issuer"),
        ok=201,
        params=own("organization_id", "keyorg"),
    ),
]

VERIFICATION = [
    *PROBES,
    Row("POST", "/v1/reviewers", only("admin"), lambda w, r: {"name": f"Reviewer {r}"}, 201),
    Row("GET", "/v1/reviews", STAFF),
    Row(
        "DELETE",
        "/v1/reviewers/{reviewer_id}",
        only("admin"),
        ok=204,
        params=own("reviewer_id", "reviewer"),
    ),
    Row(
        "POST",
        "/v1/reviews/{record_id}/decision",
        STAFF,
        lambda w, r: {"decision": "verified"},
        params=own("record_id", "review"),
    ),
    Row(
        "POST",
        "/v1/records/{record_id}/appeals",
        only("person"),
        lambda w, r: {"statement": "I did the course"},
        201,
        params=own("record_id", "file"),
    ),
    Row("GET", "/v1/appeals", STAFF),
    Row(
        "POST",
        "/v1/records/{record_id}/decline",
        only("person"),
        params=own("record_id", "decline"),
    ),
    Row(
        "POST",
        "/v1/appeals/{appeal_id}/decision",
        STAFF,
        lambda w, r: {"decision": "denied", "note": "checked with the provider"},
        params=own("appeal_id", "appeal"),
    ),
    Row("GET", "/v1/records/{record_id}/audit", only("admin", "reviewer", "person")),
    Row("GET", "/v1/credentials/{credential_id}", only("admin", "person")),
    Row(
        "POST",
        "/v1/credentials/{credential_id}/revoke",
        only("admin", "issuer"),
        lambda w, r: {"reason": "issued in error"},
        params=own("credential_id", "credential:revoke"),
    ),
    Row(
        "POST",
        "/v1/credentials/{credential_id}/suspend",
        STAFF,
        lambda w, r: {"reason_code": "under_investigation", "note": "the provider asks"},
        params=own("credential_id", "credential:suspend"),
    ),
    Row(
        "POST",
        "/v1/credentials/{credential_id}/unsuspend",
        STAFF,
        lambda w, r: {"reason_code": "investigation_closed"},
        params=own("credential_id", "credential:unsuspend"),
    ),
    Row("GET", "/v1/status-lists/{list_id}", EVERYONE),
    Row("GET", "/.well-known/did.json", EVERYONE),
    Row("GET", "/v1/sla", STAFF),
    Row("GET", "/ops", EVERYONE),
    # The read-only ops token is no role of the matrix; among the roles, only the admin reads.
    Row("GET", "/v1/ops/summary", only("admin")),
]

WALLET = [
    *PROBES,
    Row("GET", "/wallet", EVERYONE),
    Row("GET", "/v1/roles", EVERYONE),
    Row(
        "POST",
        "/v1/verify",
        EVERYONE,
        lambda w, r: {"credential": {"type": ["VerifiableCredential"]}},
    ),
    # No id in the path: every person reads their own wallet.
    Row("GET", "/v1/wallet", only("person", "other_person")),
    Row("GET", "/v1/wallets/{person_id}", only("person")),
    Row("GET", "/v1/wallets/{person_id}/match", only("person"), query="role=childcare-worker"),
    Row("GET", "/v1/wallets/{person_id}/shares", only("person")),
    Row(
        "POST",
        "/v1/wallets/{person_id}/shares",
        only("person"),
        lambda w, r: {"record_ids": [w.ids["record_id"]], "audience": "Row", "expires_in": 600},
        201,
    ),
    Row(
        "DELETE",
        "/v1/wallets/{person_id}/shares/{share_id}",
        only("person"),
        ok=204,
        params=own("share_id", "share"),
    ),
    Row("GET", "/v1/wallets/{person_id}/audit", only("person")),
    # The share token in the path is the credential: whoever holds the link reads the share.
    Row("GET", "/v1/shares/{token}", EVERYONE),
    Row("GET", "/v1/shares/{token}/qr.svg", EVERYONE),
    Row("GET", "/v1/shares/{token}/match", EVERYONE, query="role=childcare-worker"),
]

NOTIFICATIONS = [
    *PROBES,
    Row("GET", "/v1/webhook-event-types", EVERYONE),
    Row("POST", "/v1/subscriptions", ORGANIZATIONS, _subscription, 201),
    Row("GET", "/v1/subscriptions", ORGANIZATIONS),
    Row(
        "DELETE",
        "/v1/subscriptions/{subscription_id}",
        ORGANIZATIONS,
        ok=204,
        params=own("subscription_id", "subscription"),
    ),
    Row("GET", "/v1/deliveries", ORGANIZATIONS),
    # A delivery of the issuer's: the partner is refused it like any other caller.
    Row("POST", "/v1/deliveries/{delivery_id}/retry", only("issuer"), ok=202),
    Row("GET", "/v1/persons/{person_id}/notification-preferences", only("person")),
    Row(
        "PUT",
        "/v1/persons/{person_id}/notification-preferences",
        only("person"),
        lambda w, r: {"email": True, "events": {}},
    ),
    Row("GET", "/v1/persons/{person_id}/notifications", only("person")),
    Row("GET", "/v1/partner-feed-elements", EVERYONE),
    Row(
        "POST",
        "/v1/agreements",
        only("admin"),
        lambda w, r: {"partner_id": w.partner_id, "elements": ["county"]},
        201,
    ),
    Row("GET", "/v1/partner-feeds/{partner_id}/export", only("partner")),
]


@dataclass
class Service:
    name: str
    rows: list[Row]
    app: Callable[[PlatformSettings, KafkaSettings, Path], FastAPI]


SERVICES = {
    "enrollment": Service("enrollment", ENROLLMENT, authz_world.enrollment),
    "verification": Service("verification", VERIFICATION, authz_world.verification),
    "wallet": Service("wallet", WALLET, authz_world.wallet),
    "notifications": Service("notifications", NOTIFICATIONS, authz_world.notifications),
}


@pytest.fixture(scope="module")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="module")
async def world(kafka: KafkaSettings, platform: PlatformSettings, services_dir: Path) -> World:
    """Organizations, people, a reviewer and the objects the rows name, made through the
    services' APIs and applied by their processors (see :mod:`tests.integration.authz_world`)."""
    return await build_world(kafka, platform, services_dir)


def _operations(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


@pytest.mark.parametrize("name", sorted(SERVICES))
async def test_every_endpoint_and_role_is_classified_and_enforced(
    name: str,
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    services_dir: Path,
) -> None:
    service = SERVICES[name]
    app = service.app(platform, kafka, services_dir)
    rows = {(r.method, r.path): r for r in service.rows}
    unclassified = _operations(app) - set(rows)
    assert not unclassified, (
        f"{name}: endpoints without a row in the authorization matrix: {sorted(unclassified)}"
    )
    assert set(rows) <= _operations(app), f"{name}: rows for endpoints that do not exist"
    checked = 0
    async with client_for(app) as client:
        for row in service.rows:
            for role in ROLES:
                response = await _call(client, row, role, world)
                verdict = f"{name} {row.method} {row.path} as {role}: {response.status_code}"
                if role in row.allowed:
                    assert response.status_code == row.ok, f"{verdict} {response.text[:300]}"
                else:
                    assert response.status_code in REFUSED, verdict
                    if role == "anonymous":
                        assert response.status_code == 401, verdict
                        assert response.headers.get("www-authenticate") == "Bearer", verdict
                checked += 1
    print(f"{name}: {len(service.rows)} endpoints x {len(ROLES)} roles = {checked} calls checked")


async def _call(client: httpx.AsyncClient, row: Row, role: str, world: World) -> httpx.Response:
    ids = {**world.ids, **(row.params(world, role) if row.params else {})}
    path = row.path.format_map(ids) + (f"?{row.query}" if row.query else "")
    body = row.body(world, role) if row.body else None
    return await client.request(row.method, path, json=body, headers=world.headers(role))


def test_every_service_of_the_platform_has_a_matrix() -> None:
    from ler.cli import APIS

    missing = sorted(set(APIS) - set(SERVICES))
    assert not missing, f"services without an authorization matrix: {missing}"

"""Inputs that once answered 500: huge integers in queries, JSON nested deeper than the
encoder's limit, on every JSON endpoint of enrollment, verification and notifications.

The endpoints come from the authorization matrix. Each row is called as the admin or an issuer
where they are allowed (so the body reaches the route), else anonymously (the nesting limit is
checked before authentication), with a body that keeps the row's valid fields and adds (or
replaces one with) a deep value.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from ler.settings import KafkaSettings, PlatformSettings
from tests.helpers import client_for
from tests.integration.authz_world import World, new_person
from tests.integration.test_authorization import SERVICES


@pytest.fixture(scope="module")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="module")
async def world(kafka: KafkaSettings, platform: PlatformSettings, services_dir: Path) -> World:
    """The admin, an issuer and a person, made through enrollment's API."""
    assert platform.admin_token is not None
    world = World(tokens={"admin": platform.admin_token.get_secret_value(), "anonymous": None})
    admin = world.headers("admin")
    async with client_for(SERVICES["enrollment"].app(platform, kafka, services_dir)) as client:
        org = await client.post(
            "/v1/organizations", json={"name": "Deep Co", "kind": "employer"}, headers=admin
        )
        person = await client.post("/v1/persons", json=new_person(world), headers=admin)
    # Objects this world does not make (a row's own decision, share, ...) get fresh ids: the
    # nesting limit answers before any lookup.
    world.ids = defaultdict(lambda: str(uuid.uuid4()))
    world.tokens["issuer"] = org.json()["api_key"]
    world.ids["person_id"] = person.json()["person_id"]
    world.ids["partner_id"] = org.json()["organization_id"]
    return world


pytestmark = pytest.mark.integration
HUGE = "6040678040301275341347880960"  # past int64: once an OverflowError in the SQL driver


def nested(depth: int) -> bytes:
    """``depth`` levels of objects and lists, as bytes (client encoders stop far earlier)."""
    return b'{"a":[' * (depth // 2) + b'"x"' + b"]}" * (depth // 2)


def with_field(body: dict[str, Any], key: str, raw: bytes) -> bytes:
    """``body`` as JSON with ``key`` set to the raw JSON ``raw``."""
    rest = orjson.dumps({k: v for k, v in body.items() if k != key})
    return rest[:-1] + (b"," if len(rest) > 2 else b"") + orjson.dumps(key) + b":" + raw + b"}"


@pytest.mark.parametrize("path", ["/v1/appeals", "/v1/reviews"])
@pytest.mark.parametrize("value", [HUGE, "9223372036854775808", "-1", "1e3"])
async def test_paging_past_any_row_answers_4xx_naming_the_parameter(
    path: str,
    value: str,
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    services_dir: Path,
) -> None:
    app = SERVICES["verification"].app(platform, kafka, services_dir)
    async with client_for(app) as client:
        answer = await client.get(f"{path}?offset={value}", headers=world.headers("admin"))
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "query.offset"
        # The largest offset allowed is a plain empty page.
        fine = await client.get(f"{path}?offset=1000000000", headers=world.headers("admin"))
        assert fine.status_code == 200, fine.text
        assert fine.json()["items"] == []


@pytest.mark.parametrize("name", ["enrollment", "verification", "notifications"])
@pytest.mark.parametrize("depth", [300, 5000])
async def test_json_nested_past_the_encoders_limit_gets_4xx_on_every_endpoint(
    name: str,
    depth: int,
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    services_dir: Path,
) -> None:
    service = SERVICES[name]
    app = service.app(platform, kafka, services_dir)
    deep = nested(depth)
    called = 0
    async with client_for(app) as client:
        for row in service.rows:
            if row.method not in {"POST", "PUT", "PATCH"}:
                continue
            role = next((r for r in ("admin", "issuer") if r in row.allowed), "anonymous")
            path = row.path.format_map(world.ids)
            valid = row.body(world, role) if row.body else {}
            bodies = [deep, with_field(valid, "deep", deep)]
            bodies += [with_field(valid, key, deep) for key in valid]
            headers = {**world.headers(role), "content-type": "application/json"}
            for body in bodies:
                answer = await client.request(row.method, path, content=body, headers=headers)
                what = (
                    f"{row.method} {path} depth {depth}: {answer.status_code} {answer.text[:200]}"
                )
                assert 400 <= answer.status_code < 500, what
                assert answer.json()["errors"], what
                called += 1
    assert called >= 3

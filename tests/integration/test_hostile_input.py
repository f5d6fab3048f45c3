"""Hostile input: generated requests against every service's OpenAPI (schemathesis, in-process),
oversized bodies, floods of intake requests, and how credentials are kept and compared."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.modes import GenerationMode
from schemathesis.generation.overrides import Override
from schemathesis.python import asgi
from sqlalchemy import select

from ler import web
from ler.settings import KafkaSettings, PlatformSettings
from services.enrollment import deps as enrollment_deps
from services.enrollment.api import create_app as enrollment_app
from services.enrollment.bootstrap import bootstrap as enrollment_bootstrap
from services.enrollment.settings import EnrollmentSettings
from tests.helpers import client_for
from tests.integration import test_authorization as matrix
from tests.integration.authz_world import World
from tests.integration.test_authorization import ROLES, SERVICES

# The services, credentials and ids of the authorization matrix serve these tests too.
services_dir = matrix.services_dir
world = matrix.world

pytestmark = pytest.mark.integration
# Per operation, role and generation mode; with the coverage phase's boundary cases (every
# enum value, limits and one past them, wrong types) this keeps the run under two minutes here.
EXAMPLES = 60
STATEFUL_EXAMPLES = 25


def _coverage_cases(operation: Any) -> list[Any]:
    """Schemathesis's coverage phase for one operation: deterministic boundary cases (each
    bound and one past it, each enum value, missing and wrongly typed parameters)."""
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=list(GenerationMode),
        generation_config=operation.schema.config.generation_for(
            operation=operation, phase="coverage"
        ),
        auth_storage=None,
        override=Override(query={}, headers={}, cookies={}, path_parameters={}),
        feedback=FeedbackSources(),
    )
    return list(generator)


def _with_real_ids(case: Any, ids: dict[str, str]) -> None:
    """Point the case's path at objects that exist (and that the caller may reach), so the
    operation runs past its lookups instead of answering 404."""
    if case.path_parameters:
        case.path_parameters = {
            name: ids.get(name, value) for name, value in case.path_parameters.items()
        }


@pytest.mark.parametrize("name", sorted(SERVICES))
@pytest.mark.parametrize("as_role", ["anonymous", "allowed"])
def test_generated_requests_get_no_5xx_and_answers_match_the_schema(
    name: str,
    as_role: str,
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    services_dir: Path,
) -> None:
    service = SERVICES[name]
    # The world's stores: the tokens are known there, so requests get past authentication.
    app = service.app(platform, kafka, services_dir)
    rows = {(r.method, r.path): r for r in service.rows}
    schema = schemathesis.openapi.from_dict(app.openapi())
    calls = coverage = 0
    with asgi.get_client(app) as client:  # type: ignore[arg-type]
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            row = rows[(operation.method.upper(), operation.path)]
            role = (
                "anonymous"
                if as_role == "anonymous"
                else next(r for r in ROLES if r in row.allowed)
            )
            headers = world.headers(role)
            ids = {**world.ids, **(row.params(world, role) if row.params else {})}

            def send(case: Any) -> None:
                case.call_and_validate(
                    session=client,
                    headers=headers,  # noqa: B023 (send() runs inside this iteration)
                    excluded_checks=[schemathesis.checks.positive_data_acceptance],
                )

            # Requests that fit the schema and requests that break it (which must get a 4xx
            # in the documented error shape), half of them on real ids.
            @given(
                case=operation.as_strategy()
                | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
                real_ids=st.booleans(),
            )
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any, real_ids: bool) -> None:
                nonlocal calls
                calls += 1
                if real_ids:
                    _with_real_ids(case, ids)  # noqa: B023
                send(case)

            check()
            for n, case in enumerate(_coverage_cases(operation)):
                if n % 2:
                    _with_real_ids(case, ids)
                send(case)
                coverage += 1
    print(
        f"{name} as {as_role}: {calls} generated and {coverage} coverage requests, no 5xx, "
        "answers match the schema"
    )
    assert calls > 0
    assert coverage > 0


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_integer_parameter_has_bounds(
    name: str, kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> None:
    """An integer in a query, path or header without a maximum reached the SQL driver past
    int64 and answered 500 (``GET /v1/appeals?offset=6040678040301275341347880960``)."""
    app = SERVICES[name].app(platform, kafka, tmp_path)
    unbounded = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                kinds = [parameter.get("schema", {})]
                kinds += parameter.get("schema", {}).get("anyOf", [])
                for kind in kinds:
                    if kind.get("type") == "integer" and (
                        "maximum" not in kind and "exclusiveMaximum" not in kind
                    ):
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert not unbounded, f"integer parameters without a maximum: {unbounded}"


@pytest.fixture
def intake_settings() -> EnrollmentSettings:
    return EnrollmentSettings(
        max_body_bytes=4096, rate_limit_per_second=1, rate_limit_burst=3, max_batch=1000
    )


async def test_bodies_over_the_limit_get_413_declared_or_streamed(
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    tmp_path: Path,
    intake_settings: EnrollmentSettings,
) -> None:
    ctx = enrollment_bootstrap(
        platform, kafka, intake_settings, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db"
    )
    async with client_for(enrollment_app(ctx)) as client:
        big = {"name": "x" * 5000, "kind": "employer"}
        declared = await client.post("/v1/organizations", json=big, headers=world.headers("admin"))
        assert declared.status_code == 413
        assert declared.json()["errors"][0]["field"] == "body"

        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 1000

        streamed = await client.post(
            "/v1/organizations", content=chunks(), headers=world.headers("admin")
        )
        assert streamed.status_code == 413
        small = await client.post(
            "/v1/organizations",
            json={"name": "Small", "kind": "employer"},
            headers=world.headers("admin"),
        )
        assert small.status_code == 201
    # Every service gets a limit from the kit (1 MiB unless it sets its own; intake: 8 MiB).
    over = max(web.DEFAULT_MAX_BODY_BYTES, EnrollmentSettings().max_body_bytes) + 1
    for name, service in SERVICES.items():
        app = service.app(platform, kafka, tmp_path)
        async with client_for(app) as client:
            response = await client.post("/v1/anything", content=b"x" * over)
            assert response.status_code == 413, name


async def test_intake_is_rate_limited_per_organization_with_retry_after(
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    tmp_path: Path,
    intake_settings: EnrollmentSettings,
) -> None:
    ctx = enrollment_bootstrap(
        platform, kafka, intake_settings, database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db"
    )
    async with client_for(enrollment_app(ctx)) as client:
        admin = world.headers("admin")
        keys = []
        for name in ("A", "B"):
            org = await client.post(
                "/v1/organizations", json={"name": name, "kind": "employer"}, headers=admin
            )
            keys.append({"Authorization": f"Bearer {org.json()['api_key']}"})
        person = await client.post(
            "/v1/persons",
            json={
                "given_name": "Rate",
                "family_name": "Limited",
                "email": "rate.limited@example.org",
                "birth_date": "1990-01-01",
            },
            headers=admin,
        )
        record = {
            "person_id": person.json()["person_id"],
            "type": "learning",
            "title": "x",
            "completed_on": "2025-01-01",
        }
        answers = [
            (await client.post("/v1/records", json=record, headers=keys[0])).status_code
            for _ in range(5)
        ]
        assert answers[:3] == [202, 202, 202]
        assert answers[3:] == [429, 429]
        refused = await client.post("/v1/records", json=record, headers=keys[0])
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["errors"][0]["field"] == "rate"
        # Another organization has its own bucket; the first one's refills.
        assert (await client.post("/v1/records", json=record, headers=keys[1])).status_code == 202
        await asyncio.sleep(1.1)
        assert (await client.post("/v1/records", json=record, headers=keys[0])).status_code == 202


def test_default_rate_limits_leave_room_for_the_bench() -> None:
    defaults = EnrollmentSettings()
    # The bench submits 10,000 records a second in batches of 1,000: 10 requests a second.
    assert defaults.rate_limit_per_second >= 3 * 10
    assert defaults.record_rate_limit_per_second >= 3 * 10_000
    assert defaults.record_rate_limit_burst >= defaults.max_batch


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = web.RateLimiter(rate=2, burst=4, clock=lambda: now[0])
    assert [bucket.take("a") for _ in range(4)] == [0.0] * 4
    assert bucket.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take("a") == 0.0
    assert bucket.take("a", cost=5) == float("inf")
    assert bucket.take("b") == 0.0


async def test_credentials_are_stored_hashed_and_compared_in_constant_time(
    world: World, kafka: KafkaSettings, platform: PlatformSettings, tmp_path: Path
) -> None:
    ctx = enrollment_bootstrap(
        platform, kafka, EnrollmentSettings(), database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db"
    )
    async with client_for(enrollment_app(ctx)) as client:
        admin = world.headers("admin")
        org = (
            await client.post(
                "/v1/organizations", json={"name": "Hash", "kind": "employer"}, headers=admin
            )
        ).json()
        person = (
            await client.post(
                "/v1/persons",
                json={
                    "given_name": "Hash",
                    "family_name": "Stored",
                    "email": "hash.stored@example.org",
                    "birth_date": "1990-01-01",
                },
                headers=admin,
            )
        ).json()
        store = ctx.store
        async with store.db.read() as conn:
            org_row = (await conn.execute(select(store.organizations))).mappings().one()
            person_row = (await conn.execute(select(store.persons))).mappings().one()
        stored = " ".join(str(v) for v in [*org_row.values(), *person_row.values()])
        assert org["api_key"] not in stored
        assert person["access_token"] not in stored
        assert org_row["api_key_sha256"] == web.token_hash(org["api_key"])
        assert person_row["access_token_sha256"] == web.token_hash(person["access_token"])
        db_file = await asyncio.to_thread(Path(str(store.db.url).split("///", 1)[1]).read_bytes)
        assert org["api_key"].encode() not in db_file
        assert person["access_token"].encode() not in db_file
    # The admin token is compared with hmac.compare_digest; keys and tokens are looked up by hash.
    assert "compare_digest" in inspect.getsource(web.same_secret)
    source = inspect.getsource(enrollment_deps)
    assert "same_secret(" in source
    assert "token_hash(token)" in source
    assert " == token" not in source


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_stateful_sequences_get_no_5xx(
    name: str,
    world: World,
    kafka: KafkaSettings,
    platform: PlatformSettings,
    services_dir: Path,
) -> None:
    """Sequences along the links schemathesis infers between operations (an id one answer
    returns, used in the next request's path), each call made by a role its row allows."""
    service = SERVICES[name]
    app = service.app(platform, kafka, services_dir)
    rows = {(r.method, r.path): r for r in service.rows}
    schema = schemathesis.openapi.from_dict(app.openapi())
    steps = 0
    with asgi.get_client(app) as client:  # type: ignore[arg-type]

        class Sequences(schema.as_state_machine()):  # type: ignore[misc]
            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                nonlocal steps
                steps += 1
                row = rows[(case.operation.method.upper(), case.operation.path)]
                role = next(r for r in ROLES if r in row.allowed)
                return {"session": client, "headers": world.headers(role)}

            def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
                case.validate_response(
                    response, excluded_checks=[schemathesis.checks.positive_data_acceptance]
                )

        Sequences.run(
            settings=settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=6,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
        )
    links = schema.statistic.transitions.total
    print(f"{name}: {steps} stateful steps along {links} inferred links, no 5xx")
    assert steps > 0
    assert links > 0, "no links between operations were inferred"

"""Read your writes across services: who holds an API key or an access token, asked of the
enrollment service (the source of truth) over HTTP, with the service's own copy (learned from
``ler.enrollment.v1``) as the fallback while enrollment cannot be reached.

A service checks a credential by its SHA-256 hash. With ``LER_ENROLLMENT_URL`` set, the answer
of ``POST /v1/access/lookup`` decides, cached per hash for ``TTL_SECONDS`` (hits and misses), so a
new key works at once and a rotated, revoked or reset one stops working within that time plus
one request, however far the service's processor lags. Without it, or when enrollment does not
answer within ``TIMEOUT_SECONDS`` (or answers 5xx), the local copy decides, as before.
See docs/security.md, "Read your writes across services".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx

log = logging.getLogger(__name__)

TTL_SECONDS = 0.25
TIMEOUT_SECONDS = 0.5
MAX_CACHED = 10_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who a credential opens: a person, or an organization (with its name and kind)."""

    kind: Literal["person", "organization"]
    subject_id: str
    name: str | None = None
    organization_kind: str | None = None

    @property
    def organization_id(self) -> str:
        return self.subject_id


class _Unreachable:
    """Enrollment did not answer: the local copy decides."""


UNREACHABLE = _Unreachable()
Answer = Holder | None | _Unreachable


class EnrollmentAccess:
    """The lookup client of one service process (one HTTP connection pool, one small cache)."""

    def __init__(self, base_url: str | None, admin_token: str | None) -> None:
        self.base_url = base_url.rstrip("/") if base_url else None
        self.admin_token = admin_token
        self._client: httpx.AsyncClient | None = None
        self._cache: dict[str, tuple[Answer, float]] = {}
        self._warned = 0.0

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.admin_token)

    async def who(self, sha256: str) -> Answer:
        if not self.enabled:
            return UNREACHABLE
        now = time.monotonic()
        cached = self._cache.get(sha256)
        if cached and cached[1] > now:
            return cached[0]
        answer = await self._ask(sha256)
        if answer is UNREACHABLE:
            return answer
        if len(self._cache) > MAX_CACHED:
            self._cache.clear()
        self._cache[sha256] = (answer, now + TTL_SECONDS)
        return answer

    async def _ask(self, sha256: str) -> Answer:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=TIMEOUT_SECONDS)
        try:
            response = await self._client.post(
                f"{self.base_url}/v1/access/lookup",
                json={"sha256": sha256},
                headers={"Authorization": f"Bearer {self.admin_token}"},
            )
        except httpx.HTTPError as exc:
            return self._unreachable(type(exc).__name__)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            return self._unreachable(f"HTTP {response.status_code}")
        body: dict[str, Any] = response.json()
        if body.get("kind") == "person":
            return Holder("person", str(body["person_id"]))
        return Holder(
            "organization",
            str(body["organization_id"]),
            body.get("name"),
            body.get("organization_kind"),
        )

    def _unreachable(self, why: str) -> _Unreachable:
        now = time.monotonic()
        if now - self._warned > 30:
            self._warned = now
            log.warning("enrollment access lookup failed (%s); using the local copy", why)
        return UNREACHABLE

    async def person(self, sha256: str, local: Callable[[], Awaitable[str | None]]) -> str | None:
        """The person this access token opens (enrollment's answer, else the local copy)."""
        answer = await self.who(sha256)
        if answer is UNREACHABLE:
            return await local()
        return answer.subject_id if isinstance(answer, Holder) and answer.kind == "person" else None

    async def organization(
        self, sha256: str, local: Callable[[], Awaitable[T | None]]
    ) -> Holder | T | None:
        """The organization this API key opens (enrollment's answer, else the local copy)."""
        answer = await self.who(sha256)
        if answer is UNREACHABLE:
            return await local()
        return answer if isinstance(answer, Holder) and answer.kind == "organization" else None


def access_of(state: Any) -> EnrollmentAccess:
    """The lookup client kept on an app's ``state`` (built from ``state.ctx.platform``)."""
    found: EnrollmentAccess | None = getattr(state, "enrollment_access", None)
    if found is None:
        platform = state.ctx.platform
        token = platform.admin_token.get_secret_value() if platform.admin_token else None
        found = EnrollmentAccess(platform.enrollment_url, token)
        state.enrollment_access = found
    return found

"""The ops dashboard: ``GET /ops`` (a page, no data in it) and ``GET /v1/ops/summary`` (its JSON).

The summary holds ids and counts only: per queue the SLA figures of ``GET /v1/sla`` plus the
oldest open item, breaches bucketed over time, and each stream processor's consumer lag. The lag
comes from the processors themselves: each answers ``GET /lag`` on its health port (measured
from the fetch high-water mark against the offsets its own database applied; Kafka's committed
offsets are not the processors' positions). ``VERIFICATION_OPS_PROCESSORS`` lists them
(``name=http://host:port,...``; ``ler run`` sets it). Readers: the admin token, or the read-only
``VERIFICATION_OPS_TOKEN``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import httpx
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select

from ler.web import ApiError, bearer_token, same_secret
from services.verification.bootstrap import VerificationContext
from services.verification.domain import QUEUES
from services.verification.ops_dlq import DeadLetterCounts
from services.verification.ops_page import render_page
from services.verification.sla import WINDOWS, ItemRow, dashboard

PROCESSOR_NAME = r"^[a-z][a-z0-9-]{0,39}$"


class OpsSettings(BaseSettings):
    """The dashboard's settings (prefix ``VERIFICATION_OPS_``)."""

    model_config = SettingsConfigDict(env_prefix="VERIFICATION_OPS_", extra="ignore")

    token: SecretStr | None = Field(
        default=None,
        description="A read-only token for the ops dashboard (the admin token works too).",
    )
    processors: str = Field(
        default="",
        description="Stream processors whose lag the dashboard shows: name=base URL of the "
        "processor's health port, comma-separated.",
    )
    timeout_seconds: float = Field(default=1.0, gt=0, le=30)
    refresh_seconds: float = Field(default=5.0, ge=1, le=300)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("at least 16 characters")
        return value

    @field_validator("processors")
    @classmethod
    def _parse_processors(cls, value: str) -> str:
        parse_processors(value)
        return value

    def processor_urls(self) -> dict[str, str]:
        return parse_processors(self.processors)


def parse_processors(value: str) -> dict[str, str]:
    """``wallet=http://127.0.0.1:8013,sla=...`` as {name: base URL}; ValueError names the entry."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in value.split(",")):
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        name, url = name.strip(), url.strip().rstrip("/")
        if not sep or not re.match(PROCESSOR_NAME, name):
            raise ValueError(f"{entry!r}: expected name=http://host:port (name: a-z, 0-9, -)")
        if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", url):
            raise ValueError(f"{entry!r}: the URL must be http(s)://host:port")
        if name in out:
            raise ValueError(f"{name!r} is listed twice")
        out[name] = url
    return out


# Breaches over time: the period shown and its bucket.
PERIODS: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
Period = Literal["1h", "24h", "30d"]


def breached_at(row: ItemRow) -> datetime | None:
    """When an item breached: when the SLA processor said so, else (closed late before its
    clock got there) when it closed. The same rule ``GET /v1/sla`` counts by."""
    if row.breached_at is not None:
        return row.breached_at
    if row.closed_at is not None and row.closed_at > row.deadline:
        return row.closed_at
    return None


def breach_series(rows: Iterable[ItemRow], now: datetime, period: str) -> dict[str, Any]:
    """Breaches per queue in equal buckets covering ``period`` up to ``now`` (UTC-aligned; the
    last bucket is the current, partial one)."""
    span, step = PERIODS[period]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    last = epoch + ((now - epoch) // step) * step
    count = round(span / step)
    first = last - (count - 1) * step
    buckets = [{q: 0 for q in QUEUES} for _ in range(count)]
    for row in rows:
        at = breached_at(row)
        if at is None or at < first or at > now:
            continue
        index = min(int((at - first) // step), count - 1)
        buckets[index][row.queue] = buckets[index].get(row.queue, 0) + 1
    return {
        "period": period,
        "bucket_seconds": step.total_seconds(),
        "buckets": [
            {"start": (first + n * step).isoformat(), "counts": counts}
            for n, counts in enumerate(buckets)
        ],
        "total": sum(sum(b.values()) for b in buckets),
    }


async def oldest_open_items(ctx: VerificationContext, now: datetime) -> dict[str, Any]:
    """Each queue's oldest open item: its id, age, and how far it is from its deadline."""
    items = ctx.sla_store.items
    out: dict[str, Any] = {}
    async with ctx.sla_store.db.read() as conn:
        for queue in QUEUES:
            row = (
                await conn.execute(
                    select(items.c.item_id, items.c.submitted_at, items.c.deadline)
                    .where(items.c.queue == queue, items.c.closed_at.is_(None))
                    .order_by(items.c.submitted_at, items.c.item_id)
                    .limit(1)
                )
            ).first()
            if row is None:
                out[queue] = None
                continue
            submitted, deadline = _utc(row.submitted_at), _utc(row.deadline)
            out[queue] = {
                "item_id": row.item_id,
                "age_seconds": (now - submitted).total_seconds(),
                "seconds_to_deadline": (deadline - now).total_seconds(),
            }
    return out


@dataclass(frozen=True, slots=True)
class ProcessorLag:
    name: str
    status: str  # ok | unreachable | invalid
    group: str | None
    partitions: list[dict[str, Any]]
    stalled: dict[str, Any] | None = None  # stopped on a failure it retries (ler.stall)

    def as_json(self) -> dict[str, Any]:
        known = [p["lag"] for p in self.partitions if p.get("lag") is not None]
        return {
            "name": self.name,
            "status": self.status,
            "group": self.group,
            "total_lag": sum(known) if self.status == "ok" else None,
            "partitions": self.partitions,
            "stalled": self.stalled,
        }


async def processor_lags(urls: Mapping[str, str], wait_seconds: float) -> list[ProcessorLag]:
    """Ask every processor's health port for its lag, all at once; a processor that does not
    answer in time is ``unreachable`` (the dashboard still renders)."""
    if not urls:
        return []
    async with httpx.AsyncClient(timeout=wait_seconds, trust_env=False) as client:
        found = await asyncio.gather(*(_lag_of(client, n, u) for n, u in urls.items()))
    return list(found)


async def _lag_of(client: httpx.AsyncClient, name: str, url: str) -> ProcessorLag:
    try:
        response = await client.get(f"{url}/lag")
    except httpx.HTTPError:
        return ProcessorLag(name, "unreachable", None, [])
    if response.status_code != 200:
        return ProcessorLag(name, "invalid", None, [])
    try:
        body = response.json()
        partitions = [
            {
                "topic": str(p["topic"]),
                "partition": int(p["partition"]),
                "applied_offset": _int_or_none(p.get("applied_offset")),
                "highwater": _int_or_none(p.get("highwater")),
                "lag": _int_or_none(p.get("lag")),
            }
            for p in body["partitions"]
        ]
        group = str(body["group"])
        stalled = body.get("stalled")
        if stalled is not None:
            stalled = {
                "since": str(stalled["since"]),
                "seconds": float(stalled["seconds"]),
                "error": str(stalled["error"]),
                "where": str(stalled["where"]),
                "transient": bool(stalled["transient"]),
                "attempts": int(stalled["attempts"]),
            }
    except (ValueError, TypeError, KeyError):
        return ProcessorLag(name, "invalid", None, [])
    return ProcessorLag(name, "ok", group, partitions, stalled)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def summary(
    ctx: VerificationContext,
    settings: OpsSettings,
    period: str,
    now: datetime | None = None,
    dead_letters: DeadLetterCounts | None = None,
) -> dict[str, Any]:
    """Everything the dashboard shows, computed from the SLA processor's store and the
    processors' lag. Ids and counts only."""
    now = now or datetime.now(UTC)
    longest = max(max(WINDOWS.values()), *(span for span, _ in PERIODS.values()))
    dead_letters = dead_letters or DeadLetterCounts(ctx.kafka, settings.timeout_seconds)
    rows, oldest, lags, dlq = await asyncio.gather(
        ctx.sla_store.item_rows(now - longest),
        oldest_open_items(ctx, now),
        processor_lags(settings.processor_urls(), settings.timeout_seconds),
        dead_letters.get(),
    )
    queues = dashboard(rows, now, ctx.budgets)
    for queue, figures in queues.items():
        figures["oldest_open_item"] = oldest.get(queue)
    return {
        "as_of": now.isoformat(),
        "refresh_seconds": settings.refresh_seconds,
        "queues": queues,
        "breaches": breach_series(rows, now, period),
        "processors": [lag.as_json() for lag in lags],
        "dead_letters": dlq,
    }


def ops_settings(request: Request) -> OpsSettings:
    settings: OpsSettings = request.app.state.ops_settings
    return settings


async def ops_reader(request: Request) -> str:
    """The admin or the holder of the read-only ops token (constant-time comparisons)."""
    token = bearer_token(request)
    if token is None:
        raise ApiError(
            401,
            "the admin token or the ops token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    ctx: VerificationContext = request.app.state.ctx
    admin = ctx.platform.admin_token
    ops = ops_settings(request).token
    # Both comparisons always run, so timing does not tell which one matched.
    is_admin = admin is not None and same_secret(token, admin.get_secret_value())
    is_ops = ops is not None and same_secret(token, ops.get_secret_value())
    if is_admin:
        return "admin"
    if is_ops:
        return "ops"
    raise ApiError(403, "this endpoint is for operators (the admin token or the ops token)")


OpsReader = Annotated[str, Depends(ops_reader)]
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def add_ops_routes(
    app: FastAPI, ctx: VerificationContext, settings: OpsSettings | None = None
) -> None:
    """Register ``GET /ops`` and ``GET /v1/ops/summary`` (settings from the environment unless
    given)."""
    from ler.settings import load

    app.state.ops_settings = settings or load(OpsSettings)
    app.state.dead_letters = DeadLetterCounts(ctx.kafka, app.state.ops_settings.timeout_seconds)

    @app.get(
        "/ops",
        tags=["operations"],
        summary="The ops dashboard (a page; it asks for the admin or ops token and holds no data)",
        response_class=HTMLResponse,
    )
    async def ops_page() -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        csp = (
            "default-src 'none'; "
            f"script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        return HTMLResponse(
            render_page(nonce, app.state.ops_settings.refresh_seconds),
            headers={**PAGE_HEADERS, "Content-Security-Policy": csp},
        )

    @app.get(
        "/v1/ops/summary",
        tags=["operations"],
        summary="The ops dashboard's figures: backlog, oldest item, percentiles against each "
        "SLA, breaches over time, consumer lag per processor (admin or ops token)",
    )
    async def ops_summary(
        _: OpsReader,
        response: Response,
        period: Annotated[
            Period, Query(description="Breaches over the last hour, 24 hours or 30 days")
        ] = "24h",
    ) -> dict[str, Any]:
        response.headers["Cache-Control"] = "no-store"
        return await summary(
            ctx, app.state.ops_settings, period, dead_letters=app.state.dead_letters
        )

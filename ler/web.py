"""HTTP pieces every service shares: app factory, probes, error shape, bearer tokens, request
tracing, request body limits and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ler import telemetry
from ler.jsondepth import MAX_JSON_DEPTH, JsonDepthMiddleware

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class JsonResponse(Response):
    """JSON rendered by orjson (UUIDs, dates and datetimes included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


RULES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "string_too_short": "too short",
    "string_too_long": "too long",
    "string_pattern_mismatch": "wrong format",
    "date_from_datetime_parsing": "must be a date (YYYY-MM-DD)",
    "date_parsing": "must be a date (YYYY-MM-DD)",
    "date_type": "must be a date (YYYY-MM-DD)",
    "literal_error": "not one of the allowed values",
    "enum": "not one of the allowed values",
    "union_tag_invalid": "not one of the allowed values",
    "union_tag_not_found": "required",
    "uuid_parsing": "must be a UUID",
    "uuid_type": "must be a UUID",
    "too_long": "too many items",
    "too_short": "too few items",
    "greater_than": "too small",
    "greater_than_equal": "too small",
    "less_than": "too large",
    "less_than_equal": "too large",
    "json_invalid": "must be valid JSON",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be a list",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "value_error": "invalid value",
}


class ApiError(HTTPException):
    """A 4xx with the platform's error shape: a sentence plus, per problem, field and rule."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        errors: Sequence[dict[str, Any]] = (),
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status_code, detail, headers)
        self.errors = list(errors)
        self.extra = extra


class ErrorItem(BaseModel):
    """One problem of a request: the field and the rule it breaks."""

    model_config = ConfigDict(extra="allow")

    field: str
    rule: str
    message: str


class ErrorBody(BaseModel):
    """What every 4xx (and 5xx) answer holds."""

    model_config = ConfigDict(extra="allow")

    detail: str
    errors: list[ErrorItem]


class ReadinessBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str


def problem(field: str, rule: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"field": field, "rule": rule, "message": message or f"{field}: {rule}"}
    item.update(extra)
    return item


def pydantic_problems(errors: Sequence[Any], skip: int = 0) -> list[dict[str, Any]]:
    """Turn pydantic errors into ``{field, rule, message}`` items."""
    out = []
    for error in errors:
        loc = [str(part) for part in error["loc"][skip:] if part != "body"]
        field = ".".join(loc) or "body"
        rule = RULES.get(error["type"], error["type"].replace("_", " "))
        if error["type"] in {"value_error", "assertion_error"}:
            rule = str(error["msg"]).removeprefix("Value error, ")
        out.append(problem(field, rule, f"{field}: {error['msg']}"))
    return out


def new_app(
    title: str,
    description: str,
    readiness: ReadinessCheck | None = None,
    *,
    service: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    **kwargs: Any,
) -> FastAPI:
    """A FastAPI app with ``/healthz``, ``/readyz``, the platform's error shape (documented in
    the OpenAPI as every operation's default answer), a span per request, a body size limit
    (413 past ``max_body_bytes``) and a JSON nesting limit (422 past ``MAX_JSON_DEPTH``)."""
    service = service or title.lower().replace(" ", "-")
    telemetry.configure_from_environment(service)
    app = FastAPI(
        title=title,
        description=description,
        version="1.0.0",
        **kwargs,
    )
    # Inside the body limit: the depth check reads only bodies that passed it.
    app.add_middleware(JsonDepthMiddleware, max_depth=MAX_JSON_DEPTH, service=service)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes, service=service)
    app.add_middleware(TracingMiddleware, service=service)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JsonResponse:
        body: dict[str, Any] = {"detail": exc.detail, "errors": exc.errors, **exc.extra}
        return JsonResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request))}
        return JsonResponse(
            {"detail": exc.detail, "errors": []}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JsonResponse:
        errors = pydantic_problems(exc.errors())
        return JsonResponse({"detail": "the request is invalid", "errors": errors}, status_code=422)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness",
        responses={
            200: {"model": ReadinessBody, "description": "Ready"},
            503: {"model": ReadinessBody, "description": "Not ready (a dependency is down)"},
        },
    )
    async def readyz() -> JsonResponse:
        try:
            checks = await readiness() if readiness else {}
        except Exception as exc:
            return JsonResponse(
                {"status": "unavailable", "reason": type(exc).__name__}, status_code=503
            )
        return JsonResponse({"status": "ready", **checks})

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = documented_errors(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's 405 names only the first
    matching route's, and FastAPI makes a route per method)."""
    methods: set[str] = set()
    for route in request.app.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def documented_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Document the platform's error shape: as every operation's ``default`` answer, and in
    place of FastAPI's own validation error (the platform answers 422 with :class:`ErrorBody`)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorBody"] = ErrorBody.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name, sub in components["ErrorBody"].pop("$defs", {}).items():
        components[name] = sub
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    }
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    description = response.get("description", "Error")
                    if code == "503" and "ReadinessBody" in orjson.dumps(response).decode():
                        continue
                    response.clear()
                    response.update(description=description, **error)
            responses.setdefault("default", {"description": "An error", **error})
    return schema


class TracingMiddleware:
    """A server span per HTTP request, continuing the caller's ``traceparent`` if it sends one.

    Attributes hold the method, the route template and the status: never the path itself (it
    may hold a share token) nor the query string.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        incoming = next((v for k, v in scope["headers"] if k == b"traceparent"), None)
        span = telemetry.tracer().start_span(
            method,
            context=telemetry.context_of(incoming),
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.scheme": scope.get("scheme", "http"),
                "ler.service": self.service,
            },
        )
        status = {"code": 500}

        async def send_traced(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            await self.app(scope, receive, send_traced)
        except BaseException as exc:
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            route = getattr(scope.get("route"), "path", None)
            if route:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", status["code"])
            if status["code"] >= 500:
                span.set_status(Status(StatusCode.ERROR))
            otel_context.detach(token)
            span.end()


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body larger than {limit} bytes",
            [problem("body", f"at most {limit} bytes")],
        )


class BodyLimitMiddleware:
    """Answers 413 to a request whose body passes ``max_body_bytes`` (declared or streamed)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, service: str = "ler") -> None:
        self.app = app
        self.limit = max_body_bytes
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, send_started)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        telemetry.http_rejection(self.service, 413)
        error = BodyTooLarge(self.limit)
        body = orjson.dumps({"detail": error.detail, "errors": error.errors})
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """Token buckets, one per key: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: MutableMapping[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 if granted, else the seconds to wait
        before the same request would be (nothing is taken then)."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            if cost > self.burst:
                self._buckets[key] = (tokens, now)
                return math.inf
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate


def too_many_requests(wait: float, what: str, service: str = "ler") -> ApiError:
    """The 429 answer for a refused :meth:`RateLimiter.take` (``Retry-After`` in whole seconds)."""
    telemetry.http_rejection(service, 429)
    retry_after = max(1, math.ceil(min(wait, 3600.0)))
    return ApiError(
        429,
        f"rate limit exceeded: {what}; retry after {retry_after} s",
        [problem("rate", what)],
        headers={"Retry-After": str(retry_after)},
    )


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def new_secret(prefix: str) -> str:
    """An unguessable credential (256 bits) with a prefix that says what it is."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    """SHA-256 hex of a high-entropy credential: what the platform stores and compares."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison of two credentials."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))

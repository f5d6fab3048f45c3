"""A tiny HTTP responder for processors: ``/healthz`` (alive), ``/readyz`` (consuming) and any
read-only JSON endpoints the processor adds (``/lag``: consumer lag per partition)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import orjson

JsonEndpoint = Callable[[], Any]


async def serve_health(
    port: int,
    ready: Callable[[], bool],
    host: str = "127.0.0.1",
    *,
    endpoints: Mapping[str, JsonEndpoint] | None = None,
    stalled: Callable[[], Mapping[str, Any] | None] | None = None,
) -> asyncio.Server:
    """Answer liveness and readiness probes on ``host:port`` (HTTP/1.0, one request a connection),
    and ``GET <path>`` with the JSON each of ``endpoints`` returns when called. ``stalled`` says
    why the processor is stopped on a failure (None: it is not); ``/readyz`` then answers 503
    ``{"status": "stalled", "stalled": ...}``."""
    extra = dict(endpoints or {})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            path = parts[1].partition("?")[0] if len(parts) > 1 else ""
            body: dict[str, Any]
            if path == "/healthz":
                status, body = 200, {"status": "ok"}
            elif path == "/readyz":
                stall = stalled() if stalled else None
                if stall is not None:
                    status, body = 503, {"status": "stalled", "stalled": dict(stall)}
                elif ready():
                    status, body = 200, {"status": "ready"}
                else:
                    status, body = 503, {"status": "starting"}
            elif path in extra:
                status, body = 200, extra[path]()
            else:
                status, body = 404, {"detail": "not found"}
            payload = orjson.dumps(body)
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.0 {status} {reason}\r\nContent-Type: application/json\r\n"
                f"Cache-Control: no-store\r\nContent-Length: {len(payload)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)

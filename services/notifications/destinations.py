"""Where a webhook may be sent: public addresses only, checked when each delivery is sent.

A subscription's URL names a host; what that name resolves to can change after the subscription
was accepted (or point at this machine from the start: ``localhost.``, a name in /etc/hosts, a
DNS record an attacker controls). The dispatcher's connector resolves every name through
:class:`PublicOnlyResolver`, which refuses the name when any of its addresses is not public, and
aiohttp connects to the addresses the resolver returned: the checked address is the one
connected to, with no second lookup in between. IP literals never reach a resolver, so
:func:`destination_problem` checks them before each request.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from services.notifications.domain import is_public_address

REFUSED = "refused: the destination is not a public address"


class RefusedDestination(OSError):
    """A webhook host that resolves (or is) a loopback, private, link-local or reserved address.

    An ``OSError``, so aiohttp reports it as a failed connection like any unreachable host."""

    def __init__(self) -> None:
        super().__init__(REFUSED)


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing names that resolve to any address that is not public."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        resolved = await self._inner.resolve(host, port, family)
        if not resolved or not all(is_public_address(r["host"]) for r in resolved):
            raise RefusedDestination
        return resolved

    async def close(self) -> None:
        await self._inner.close()


def destination_problem(url: str) -> str | None:
    """Why a URL whose host is an IP literal may not be sent to now, or None (names are the
    resolver's to check)."""
    host = urlsplit(url).hostname or ""
    if _is_ip_literal(host) and not is_public_address(host):
        return REFUSED
    return None


def _is_ip_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True

"""``POST /v1/verify``: credentials and presentations checked by anyone.

The kit's verifier (``ler.credentials``) is pure and synchronous, so the documents it needs are
fetched first: the registry's DID document (``did:web``) and its status lists, over HTTP from the
verification service, each cached for a while. ``did:key`` needs nothing fetched. Verdicts are
cached by content (a signature over the same bytes with the same keys and the same status list
always checks the same way) and recomputed whenever a date that matters (validFrom, validUntil,
a proof's created or expires) has passed since.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from ler.credentials import (
    Check,
    Outcome,
    Problem,
    StaticDidResolver,
    StatusListFetcher,
    Verdict,
    verify_credential,
    verify_presentation,
)

log = logging.getLogger(__name__)

_DATE_KEYS = frozenset({"validFrom", "validUntil", "created", "expires"})
_MAX_CACHED = 20_000


class FetchedStatusLists(StatusListFetcher):
    """Status list credentials fetched beforehand, by the URL the credentials name."""

    def __init__(self, by_url: Mapping[str, Mapping[str, Any]]) -> None:
        self.by_url = dict(by_url)

    def fetch(self, url: str) -> Mapping[str, Any] | None:
        return self.by_url.get(url)


@dataclass(frozen=True, eq=False)
class Fetched:
    """A document read from the registry, with what every verdict resting on it needs: its
    digest (part of the verdict's cache key) and its dates (when the verdict may change).
    Computed once per fetch; every request names the same few documents, tens of KB each."""

    document: dict[str, Any]
    digest: str
    boundaries: tuple[datetime, ...]

    @classmethod
    def of(cls, document: dict[str, Any]) -> Fetched:
        return cls(document, _digest(document), tuple(_boundaries(document)))


@dataclass
class _Cached:
    value: Fetched | None
    until: float


class RegistryDocuments:
    """The registry's DID document and status lists, read over HTTP and cached.

    Only this registry's documents are fetched: its ``did:web`` document from
    ``{verification_url}/.well-known/did.json`` and status lists whose URL starts with
    ``{public_url}/v1/status-lists/`` from the same path under ``verification_url``. Nothing else
    is fetched (no request to a host named by a document someone posted).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        verification_url: str,
        public_url: str | None = None,
        *,
        did_ttl: float = 300.0,
        status_ttl: float = 30.0,
        failure_ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.verification_url = verification_url.rstrip("/")
        self.public_url = (public_url or verification_url).rstrip("/")
        self.did_ttl = did_ttl
        self.status_ttl = status_ttl
        self.failure_ttl = failure_ttl
        self.clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0

    async def did_document(self, did: str) -> Fetched | None:
        """The registry's DID document if ``did`` is the registry's ``did:web``, else None."""
        if not did.startswith("did:web:"):
            return None
        found = await self._get(f"{self.verification_url}/.well-known/did.json", self.did_ttl)
        if found is None or found.document.get("id") != did:
            return None
        return found

    async def status_list(self, url: str) -> Fetched | None:
        prefix = f"{self.public_url}/v1/status-lists/"
        if not url.startswith(prefix) or "/" in url[len(prefix) :] or "?" in url:
            return None
        return await self._get(
            f"{self.verification_url}/v1/status-lists/{url[len(prefix) :]}", self.status_ttl
        )

    async def _get(self, url: str, ttl: float) -> Fetched | None:
        cached = self._cache.get(url)
        if cached is not None and cached.until > self.clock():
            return cached.value
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._cache.get(url)
            if cached is not None and cached.until > self.clock():
                return cached.value
            value: Fetched | None = None
            self.fetches += 1
            try:
                response = await self.client.get(url, timeout=5.0)
                if response.status_code == 200:
                    body = response.json()
                    value = Fetched.of(body) if isinstance(body, dict) else None
                else:
                    log.warning("verify: %s answered %s", url, response.status_code)
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("verify: cannot read %s (%s)", url, type(exc).__name__)
            self._cache[url] = _Cached(value, self.clock() + (ttl if value else self.failure_ttl))
            return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _node_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _did_of(reference: Any) -> str | None:
    if not isinstance(reference, str) or not reference.startswith("did:"):
        return None
    return reference.split("#", 1)[0]


def _references(document: Any) -> tuple[set[str], set[str]]:
    """DIDs and status list URLs a credential or presentation (and what it holds) names."""
    dids: set[str] = set()
    urls: set[str] = set()
    if not isinstance(document, Mapping):
        return dids, urls
    for who in (document.get("issuer"), document.get("holder")):
        did = _did_of(_node_id(who))
        if did:
            dids.add(did)
    for proof in _as_list(document.get("proof")):
        if isinstance(proof, Mapping):
            did = _did_of(proof.get("verificationMethod"))
            if did:
                dids.add(did)
    for entry in _as_list(document.get("credentialStatus")):
        if isinstance(entry, Mapping) and isinstance(entry.get("statusListCredential"), str):
            urls.add(entry["statusListCredential"])
    for nested in _as_list(document.get("verifiableCredential")):
        more_dids, more_urls = _references(nested)
        dids |= more_dids
        urls |= more_urls
    return dids, urls


def _boundaries(document: Any) -> Iterator[datetime]:
    """Every date in a document that can change a verdict when it passes."""
    if isinstance(document, Mapping):
        for key, value in document.items():
            if key in _DATE_KEYS and isinstance(value, str):
                try:
                    moment = datetime.fromisoformat(value)
                except ValueError:
                    continue
                yield moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            else:
                yield from _boundaries(value)
    elif isinstance(document, list):
        for item in document:
            yield from _boundaries(item)


def _digest(document: Any) -> str:
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class _Entry:
    verdict: Verdict
    evaluated_at: datetime
    boundaries: tuple[datetime, ...]


class VerdictCache:
    """Verdicts by content: reused only while no date that matters has passed since."""

    def __init__(self, max_entries: int = _MAX_CACHED) -> None:
        self.max_entries = max_entries
        self._entries: dict[str, _Entry] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str, now: datetime) -> Verdict | None:
        entry = self._entries.get(key)
        if entry is None or any(entry.evaluated_at < b <= now for b in entry.boundaries):
            self.misses += 1
            return None
        self.hits += 1
        return entry.verdict

    def put(
        self, key: str, verdict: Verdict, now: datetime, boundaries: Iterable[datetime]
    ) -> None:
        """Keep ``verdict`` until one of these dates (of the documents it rests on) passes."""
        if len(self._entries) >= self.max_entries:
            # Drop the oldest half: cheap, and the cache only saves work.
            for old in list(self._entries)[: self.max_entries // 2]:
                del self._entries[old]
        self._entries[key] = _Entry(verdict, now, tuple(b for b in boundaries if b > now))


@dataclass
class _Context:
    """What the registry holds for one request: the resolver and status lists the kit's checks
    read, and the fetched documents by DID or status list URL."""

    resolver: StaticDidResolver
    lists: FetchedStatusLists
    fetched: dict[str, Fetched]

    def rests_on(self, document: Any) -> list[Fetched]:
        """The fetched documents a verdict on ``document`` depends on."""
        dids, urls = _references(document)
        return [self.fetched[ref] for ref in [*sorted(dids), *sorted(urls)] if ref in self.fetched]


def _key(kind: str, shown: Any, rests_on: list[Fetched]) -> str:
    parts = [_digest([kind, shown]), *(f.digest for f in rests_on)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _dates(shown: Any, rests_on: list[Fetched]) -> list[datetime]:
    return [*_boundaries(shown), *(b for f in rests_on for b in f.boundaries)]


class Verifier:
    """Verifies credentials and presentations from this registry and from any issuer that uses
    the same standards (``did:key``; ``did:web`` of this registry).

    Checks run on the event loop, a credential at a time (about a millisecond each, mostly
    JSON-LD canonicalization), after an ``asyncio.sleep(0)`` that lets waiting I/O through. A
    worker thread was measured to cost more than it spared: every OpenSSL, zlib and hashlib call
    in a check releases the GIL and then waits up to the switch interval (5 ms) to take it back
    from the busy loop (cold presentations: 145-185/s in a thread, 240/s on the loop).
    """

    def __init__(self, documents: RegistryDocuments, cache: VerdictCache | None = None) -> None:
        self.documents = documents
        self.cache = cache or VerdictCache()
        self._resolvers: dict[tuple[str, ...], StaticDidResolver] = {}

    async def _context(self, document: Any) -> _Context:
        dids, urls = _references(document)
        fetched: dict[str, Fetched] = {}
        for url in sorted(urls):
            found = await self.documents.status_list(url)
            if found is not None:
                fetched[url] = found
                issuer = _did_of(_node_id(found.document.get("issuer")))
                if issuer:
                    dids.add(issuer)
        for did in sorted(dids):
            doc = await self.documents.did_document(did)
            if doc is not None:
                fetched[did] = doc
        lists = FetchedStatusLists({url: fetched[url].document for url in urls if url in fetched})
        dids_found = [fetched[did] for did in sorted(dids) if did in fetched]
        return _Context(self._resolver(dids_found), lists, fetched)

    def _resolver(self, documents: list[Fetched]) -> StaticDidResolver:
        """One resolver object per set of DID documents (by content): the kit remembers a status
        list's verdict per resolver (ler.credentials.verify), so the registry's status list is
        not re-verified for every request (a sixth of a cold presentation's cost, measured)."""
        key = tuple(d.digest for d in documents)
        resolver = self._resolvers.get(key)
        if resolver is None:
            if len(self._resolvers) >= 64:
                self._resolvers.clear()
            resolver = self._resolvers[key] = StaticDidResolver(d.document for d in documents)
        return resolver

    async def verify_credential(self, credential: Any, now: datetime | None = None) -> Verdict:
        context = await self._context(credential)
        await asyncio.sleep(0)
        return self._credential(credential, context, now or datetime.now(UTC))

    def _credential(self, credential: Any, context: _Context, now: datetime) -> Verdict:
        rests_on = context.rests_on(credential)
        key = _key("credential", credential, rests_on)
        cached = self.cache.get(key, now)
        if cached is not None:
            return cached
        verdict = verify_credential(credential, context.resolver, context.lists, now=now)
        self.cache.put(key, verdict, now, _dates(credential, rests_on))
        return verdict

    async def verify_presentation(
        self,
        presentation: Any,
        *,
        challenge: str | None = None,
        domain: str | None = None,
        now: datetime | None = None,
    ) -> Verdict:
        now = now or datetime.now(UTC)
        context = await self._context(presentation)
        rests_on = context.rests_on(presentation)
        key = _key("presentation", [presentation, challenge, domain], rests_on)
        cached = self.cache.get(key, now)
        if cached is not None:
            return cached
        if (
            isinstance(presentation, Mapping)
            and "proof" not in presentation
            and challenge is None
            and domain is None
        ):
            verdict = await self._unsigned_presentation(presentation, context, now)
        else:
            await asyncio.sleep(0)
            verdict = verify_presentation(
                presentation,
                context.resolver,
                context.lists,
                now=now,
                challenge=challenge,
                domain=domain,
            )
        self.cache.put(key, verdict, now, _dates(presentation, rests_on))
        return verdict

    async def _unsigned_presentation(
        self, presentation: Mapping[str, Any], context: _Context, now: datetime
    ) -> Verdict:
        # Nothing signs the presentation as a whole, so each credential in it stands alone and
        # its (cached) verdict is reused: a new presentation of known credentials costs little.
        shell = {k: v for k, v in presentation.items() if k != "verifiableCredential"}
        outer = verify_presentation(shell, context.resolver, context.lists, now=now)
        nested = []
        for item in _as_list(presentation.get("verifiableCredential")):
            await asyncio.sleep(0)
            nested.append(self._credential(item, context, now))
        checks = [c for c in outer.checks if c.name != "credentials"]
        checks.append(_credentials_check(tuple(nested)))
        return Verdict("presentation", outer.id, tuple(checks), tuple(nested))


def _credentials_check(nested: tuple[Verdict, ...]) -> Check:
    """The presentation's ``credentials`` check, worded as the kit's verifier words it."""
    failed = [v for v in nested if not v.verified]
    if not nested:
        return Check("credentials", Outcome.PASSED, "The presentation holds no credentials.")
    if not failed:
        return Check("credentials", Outcome.PASSED, f"All {len(nested)} credentials verified.")
    names = ", ".join(v.id or "(no id)" for v in failed)
    reasons = "; ".join(p.title for v in failed for p in v.problems)
    detail = f"{len(failed)} of {len(nested)} credentials did not verify ({names}): {reasons}."
    return Check(
        "credentials",
        Outcome.FAILED,
        detail,
        Problem("urn:ler:problem:credential-failed", "A credential failed its checks", detail),
    )


def verdict_body(verdict: Verdict) -> dict[str, Any]:
    """The answer of ``POST /v1/verify``: the verdict, and one RFC 9457 problem per failed check
    (nested credentials' included, each naming the check and the credential)."""
    body = verdict.to_dict()
    problems: list[dict[str, Any]] = []

    def collect(v: Verdict, credential: str | None) -> None:
        for check in v.checks:
            if check.problem is not None and not (
                check.name == "credentials" and v.kind == "presentation"
            ):
                item: dict[str, Any] = {**check.problem.to_dict(), "check": check.name}
                if credential is not None:
                    item["credential"] = credential
                problems.append(item)
        for index, inner in enumerate(v.credentials):
            collect(inner, inner.id or f"verifiableCredential[{index}]")

    collect(verdict, None)
    if verdict.kind == "presentation" and not problems:
        problems.extend(
            {**c.problem.to_dict(), "check": c.name} for c in verdict.checks if c.problem
        )
    body["problems"] = problems
    return body

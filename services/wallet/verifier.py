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
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from cachetools import LRUCache

from ler.credentials import (
    Check,
    Outcome,
    Problem,
    StaticDidResolver,
    StatusListFetcher,
    TrustList,
    Verdict,
    verify_credential,
    verify_presentation,
    with_issuer_trust,
)
from services.wallet.verify_pool import Deadline, VerificationPool

log = logging.getLogger(__name__)

_DATE_KEYS = frozenset({"validFrom", "validUntil", "created", "expires"})
_MAX_CACHED = 20_000
#: Fetched documents kept (the registry's DID document and its status lists), most recent first.
MAX_FETCHED_CACHED = 256
#: Distinct status lists and DIDs one request may make the wallet look up; more are not fetched.
MAX_LOOKUPS_PER_REQUEST = 8
#: A status list id: one path segment of plain characters (the verification service's are digits).
_LIST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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
        self._cache: LRUCache[str, _Cached] = LRUCache(maxsize=MAX_FETCHED_CACHED)
        self._locks: LRUCache[str, asyncio.Lock] = LRUCache(maxsize=MAX_FETCHED_CACHED)
        self.fetches = 0

    @property
    def cached(self) -> int:
        """How many fetched documents (or failures) are held."""
        return len(self._cache)

    async def did_document(self, did: str) -> Fetched | None:
        """The registry's DID document if ``did`` is the registry's ``did:web``, else None."""
        if not did.startswith("did:web:"):
            return None
        found = await self._get(f"{self.verification_url}/.well-known/did.json", self.did_ttl)
        if found is None or found.document.get("id") != did:
            return None
        return found

    async def status_list(self, url: str) -> Fetched | None:
        """The registry's status list named ``url`` exactly: ``{public_url}/v1/status-lists/``
        and a list id (one plain path segment). Anything else (a query, a fragment, another path or host) is
        not fetched, so posted documents cannot make the wallet fetch or cache new entries."""
        prefix = f"{self.public_url}/v1/status-lists/"
        if not url.startswith(prefix) or not _LIST_ID.match(url[len(prefix) :]):
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
    """The DID of a DID URL: without its fragment, query or path."""
    if not isinstance(reference, str) or not reference.startswith("did:"):
        return None
    return re.split(r"[#?/]", reference, maxsplit=1)[0]


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


TIMED_OUT = "urn:ler:problem:verification-timeout"


def _timed_out(verdict: Verdict) -> bool:
    return any(problem.type == TIMED_OUT for problem in verdict.problems)


def _not_reached(credential: Any) -> Verdict:
    """The verdict of a credential the request's deadline passed before: not checked at all."""
    detail = (
        "This verifier stopped before checking this credential: the presentation took longer "
        "to check than allowed."
    )
    problem = Problem(TIMED_OUT, "Too complex to verify", detail)
    credential_id = _node_id(credential) if isinstance(credential, Mapping) else None
    return Verdict("credential", credential_id, (Check("proof", Outcome.FAILED, detail, problem),))


class Verifier:
    """Verifies credentials and presentations from this registry and from any issuer that uses
    the same standards (``did:key``; ``did:web`` of this registry), and says of each credential
    whether its issuer is on the trust list.

    The checks themselves (JSON-LD canonicalization, mostly) run in a bounded pool of worker
    threads under a deadline per request (``services.wallet.verify_pool``), never on the event
    loop: one slow document must not hold every other request. Cached verdicts are answered on
    the loop. A verdict cut short by the deadline is not cached (it says nothing about the
    document, only about the moment).
    """

    def __init__(
        self,
        documents: RegistryDocuments,
        cache: VerdictCache | None = None,
        *,
        trust: TrustList | None = None,
        pool: VerificationPool | None = None,
        deadline_seconds: float = 0.8,
    ) -> None:
        self.documents = documents
        self.cache = cache or VerdictCache()
        self.trust = trust or TrustList(())
        self.pool = pool or VerificationPool()
        self.deadline_seconds = deadline_seconds
        self._resolvers: dict[tuple[str, ...], StaticDidResolver] = {}

    async def _context(self, document: Any) -> _Context:
        dids, urls = _references(document)
        fetched: dict[str, Fetched] = {}
        # A document may name any number of status lists and DIDs; only a few are looked up
        # (a credential of this registry names one DID and one or two lists).
        for url in sorted(urls)[:MAX_LOOKUPS_PER_REQUEST]:
            found = await self.documents.status_list(url)
            if found is not None:
                fetched[url] = found
                issuer = _did_of(_node_id(found.document.get("issuer")))
                if issuer:
                    dids.add(issuer)
        for did in sorted(dids)[:MAX_LOOKUPS_PER_REQUEST]:
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
        """Raises :class:`~services.wallet.verify_pool.VerificationBusy` when no worker is free
        before the deadline."""
        context = await self._context(credential)
        deadline = Deadline(self.deadline_seconds)
        return await self._credential(credential, context, now or datetime.now(UTC), deadline)

    async def _credential(
        self, credential: Any, context: _Context, now: datetime, deadline: Deadline
    ) -> Verdict:
        rests_on = context.rests_on(credential)
        key = _key("credential", credential, rests_on)
        cached = self.cache.get(key, now)
        if cached is not None:
            return cached

        def check() -> Verdict:
            verdict = verify_credential(credential, context.resolver, context.lists, now=now)
            return with_issuer_trust(verdict, credential, self.trust)

        verdict = await self.pool.run(deadline, check)
        if not _timed_out(verdict):
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
        """Raises :class:`~services.wallet.verify_pool.VerificationBusy` as
        :meth:`verify_credential` does."""
        now = now or datetime.now(UTC)
        context = await self._context(presentation)
        deadline = Deadline(self.deadline_seconds)
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
            verdict = await self._unsigned_presentation(presentation, context, now, deadline)
        else:

            def check() -> Verdict:
                verdict = verify_presentation(
                    presentation,
                    context.resolver,
                    context.lists,
                    now=now,
                    challenge=challenge,
                    domain=domain,
                )
                nested = presentation.get("verifiableCredential")
                nested = _as_list(nested) if isinstance(presentation, Mapping) else []
                return with_issuer_trust(verdict, presentation, self.trust, nested)

            verdict = await self.pool.run(deadline, check)
        if not _timed_out(verdict):
            self.cache.put(key, verdict, now, _dates(presentation, rests_on))
        return verdict

    async def _unsigned_presentation(
        self, presentation: Mapping[str, Any], context: _Context, now: datetime, deadline: Deadline
    ) -> Verdict:
        # Nothing signs the presentation as a whole, so each credential in it stands alone and
        # its (cached) verdict is reused: a new presentation of known credentials costs little.
        # The shell has no proof: checking it is structure and dates only, done here.
        shell = {k: v for k, v in presentation.items() if k != "verifiableCredential"}
        outer = verify_presentation(shell, context.resolver, context.lists, now=now)
        nested = []
        for item in _as_list(presentation.get("verifiableCredential")):
            if deadline.remaining() <= 0:
                nested.append(_not_reached(item))
            else:
                nested.append(await self._credential(item, context, now, deadline))
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

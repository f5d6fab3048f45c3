"""Offline JSON-LD processing: a document loader that serves only pinned contexts, and RDF
dataset canonicalization (RDFC-1.0, which PyLD implements as URDNA2015) in "safe mode".

Safe mode refuses a document in which a property or a type does not map to an absolute IRI: such
a term would silently vanish from the canonical form, so it would not be covered by the signature.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from cachetools import LRUCache
from frozendict import frozendict
from pyld import jsonld  # type: ignore[import-untyped]
from pyld.context_resolver import ContextResolver  # type: ignore[import-untyped]
from pyld.identifier_issuer import IdentifierIssuer  # type: ignore[import-untyped]
from pyld.jsonld import _is_absolute_iri  # type: ignore[import-untyped]

from ler.credentials.canon import BoundedURDNA2015, WorkLimitExceeded, check_deadline
from ler.credentials.contexts import PINNED_CONTEXTS, load_context
from ler.credentials.native import native_canonical

__all__ = [
    "CanonicalizationError",
    "ContextNotPinnedError",
    "OfflineDocumentLoader",
    "TooComplexError",
    "canonize",
    "default_loader",
]

#: Inline contexts longer than this (as JSON) are processed afresh each time, never memoized.
MEMO_MAX_CONTEXT_BYTES = 8192
_ABSOLUTE_IRI = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|_:)")


class ContextNotPinnedError(LookupError):
    """A document referred to a context URL that is not pinned; nothing is fetched, ever."""

    def __init__(self, url: str) -> None:
        super().__init__(
            f"the JSON-LD context {url!r} is not one of the contexts this platform has pinned; "
            "documents are never fetched from the network"
        )
        self.url = url


class CanonicalizationError(ValueError):
    """A document could not be turned into canonical N-Quads, or would lose data doing so."""


class TooComplexError(CanonicalizationError):
    """Canonicalizing the document would take more work than allowed (``ler.credentials.canon``):
    a "poison graph" of look-alike blank nodes, too many statements, or past the deadline."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(f"the document is too complex to check: {reason}")
        self.reason = reason
        self.timed_out = timed_out


class OfflineDocumentLoader:
    """PyLD document loader that serves pinned contexts only and refuses every other URL.

    ``extra`` adds documents (for example a test's own context); they are deep-copied so a caller
    cannot change them afterwards. The loader keeps its own cache of processed contexts, so use
    one loader per thread.
    """

    def __init__(self, extra: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._extra = {url: copy.deepcopy(dict(doc)) for url, doc in (extra or {}).items()}
        self._resolved_cache: LRUCache[str, Any] = LRUCache(maxsize=64)
        self.processed_contexts: LRUCache[tuple[Any, ...], tuple[Any, Any]] = LRUCache(maxsize=512)

    @property
    def urls(self) -> frozenset[str]:
        """Every URL this loader answers."""
        return frozenset(PINNED_CONTEXTS) | frozenset(self._extra)

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The PyLD remote document for ``url``; raises :class:`ContextNotPinnedError` otherwise."""
        if url in self._extra:
            document = copy.deepcopy(self._extra[url])
        elif url in PINNED_CONTEXTS:
            document = load_context(url)
        else:
            raise ContextNotPinnedError(url)
        return {
            "contextUrl": None,
            "documentUrl": url,
            "document": document,
            "contentType": "application/ld+json",
            # "static" lets PyLD keep the processed context across calls (pinned files never change)
            "tag": "static",
        }

    def context_resolver(self) -> ContextResolver:
        """A PyLD context resolver bound to this loader and its private cache."""
        return ContextResolver(self._resolved_cache, self)


class _Processor(jsonld.JsonLdProcessor):  # type: ignore[misc]
    """PyLD's processor with its context processing memoized across documents.

    PyLD caches a processed context by the ``_uuid`` of the active context it was applied to,
    but every non-propagating type-scoped context (VC 2.0 and Open Badges use them on every node)
    clones the active context under a fresh ``_uuid``, so the cache never hits and each credential
    re-processes the same scoped contexts (measured: half of the canonicalization time). Here the
    result is kept by the identity of the frozen active context and the value of the local context:
    an active context is immutable once frozen, and results are themselves frozen and reused, so the
    same derivation yields the very same objects next time. An entry holds its active context, so
    that identity is never reused while the entry lives; anything not frozen goes through PyLD.
    """

    def __init__(self, memo: LRUCache[tuple[Any, ...], tuple[Any, Any]], **kwargs: Any):
        super().__init__(**kwargs)
        self._memo = memo

    # Expansion and the node map check the deadline (``ler.credentials.canon.deadline``) at
    # every element: PyLD's node map merges values with a duplicate check that is quadratic in
    # the values of one property (5,000 strings in one list took 14 s here).
    def _expand(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return super()._expand(*args, **kwargs)

    def _create_node_map(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        return super()._create_node_map(*args, **kwargs)

    def _process_context(
        self,
        active_ctx: Any,
        local_ctx: Any,
        options: Any,
        override_protected: bool = False,
        propagate: bool = True,
        validate_scoped: bool = True,
        cycles: Any = None,
    ) -> Any:
        key: tuple[Any, ...] | None = None
        if isinstance(active_ctx, frozendict):
            local_key = _context_key(local_ctx)
            if local_key is not None:
                key = (id(active_ctx), local_key, override_protected, propagate, validate_scoped)
                hit = self._memo.get(key)
                if hit is not None and hit[0] is active_ctx:
                    return hit[1]
        result = super()._process_context(
            active_ctx,
            local_ctx,
            options,
            override_protected=override_protected,
            propagate=propagate,
            validate_scoped=validate_scoped,
            cycles=cycles,
        )
        if key is not None and isinstance(result, frozendict):
            self._memo[key] = (active_ctx, result)
        return result


def _context_key(local_ctx: Any) -> str | bytes | None:
    """A local context by value: a URL, or the JSON text of the context in its own key order
    (processing reads nothing else of it). None when it is not plain JSON, or longer than
    ``MEMO_MAX_CONTEXT_BYTES``: the memo holds at most 512 entries, and a key of any size posted by
    anyone would let a few requests pin a lot of memory."""
    if isinstance(local_ctx, str):
        return local_ctx if len(local_ctx) <= MEMO_MAX_CONTEXT_BYTES else None
    try:
        text = orjson.dumps(local_ctx)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return text if len(text) <= MEMO_MAX_CONTEXT_BYTES else None


_PER_THREAD = threading.local()


def default_loader() -> OfflineDocumentLoader:
    """The loader over the pinned contexts for the calling thread (created on first use).

    One per thread because PyLD's context caches are not safe to share between threads.
    """
    loader: OfflineDocumentLoader | None = getattr(_PER_THREAD, "loader", None)
    if loader is None:
        loader = OfflineDocumentLoader()
        _PER_THREAD.loader = loader
    return loader


def _find_cause(exc: BaseException) -> ContextNotPinnedError | WorkLimitExceeded | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ContextNotPinnedError | WorkLimitExceeded):
            return current
        seen.add(id(current))
        details = getattr(current, "details", None)
        if isinstance(details, Mapping):
            nested = details.get("cause")
            if isinstance(nested, BaseException):
                inner = _find_cause(nested)
                if inner is not None:
                    return inner
        current = current.__cause__ or current.__context__
    return None


def _relative_iris(node: Any) -> Iterable[str]:
    if isinstance(node, list):
        for item in node:
            yield from _relative_iris(item)
    elif isinstance(node, dict) and "@value" not in node:
        for key, value in node.items():
            if key in ("@type", "@id"):
                for iri in value if isinstance(value, list) else [value]:
                    if isinstance(iri, str) and not _ABSOLUTE_IRI.match(iri):
                        yield iri
            else:
                yield from _relative_iris(value)


def _normalize_expanded(
    processor: jsonld.JsonLdProcessor, expanded: Any, loader: OfflineDocumentLoader
) -> Any:
    """URDNA2015 of an already expanded document.

    PyLD's ``normalize`` expands its input again before building the RDF dataset; the document
    is expanded here already (for the safe-mode checks), so this builds the dataset from that
    expansion with the same steps ``to_rdf`` takes after expanding, and canonicalizes it. The
    W3C test vectors pin the result byte for byte.
    """
    options: dict[str, Any] = {
        "algorithm": "URDNA2015",
        "format": "application/n-quads",
        "base": None,
        "documentLoader": loader,
        "contextResolver": loader.context_resolver(),
        "produceGeneralizedRdf": False,
        "extractAllScripts": True,
        "processingMode": "json-ld-1.1",
    }
    issuer = IdentifierIssuer("_:b")
    node_map: dict[str, Any] = {"@default": {}}
    processor._create_node_map(expanded, node_map, "@default", issuer)
    dataset = {}
    for graph_name, graph in sorted(node_map.items()):
        if graph_name == "@default" or _is_absolute_iri(graph_name):
            dataset[graph_name] = processor._graph_to_rdf(graph, issuer, options)
    return BoundedURDNA2015().main(dataset, options)


def canonize(
    document: Mapping[str, Any],
    loader: OfflineDocumentLoader | None = None,
    *,
    native: bool = True,
) -> str:
    """Canonical N-Quads (RDFC-1.0 / URDNA2015) of a JSON-LD document, offline and in safe mode.

    With ``native`` (the default) the RDF and its canonical form are computed by oxigraph when
    ``ler.credentials.native`` admits the document, by the bounded PyLD path otherwise; both give
    the same bytes (tests compare them). ``native=False`` always takes the PyLD path.

    Raises :class:`ContextNotPinnedError` for an unpinned context and
    :class:`CanonicalizationError` when a term would be dropped or the JSON-LD is invalid.
    """
    loader = loader or default_loader()
    dropped: list[str] = []

    def on_dropped(term: str | None) -> None:
        dropped.append(term or "(unnamed)")

    processor = _Processor(loader.processed_contexts, on_property_dropped=on_dropped)
    options: dict[str, Any] = {
        "documentLoader": loader,
        "contextResolver": loader.context_resolver(),
        # No base IRI: PyLD would otherwise resolve relative IRIs against a made-up
        # "http://example.org/base/" that other implementations do not use; safe mode below
        # refuses relative IRIs instead.
        "base": None,
    }
    try:
        expanded = processor.expand(dict(document), options)
    except jsonld.JsonLdError as exc:
        cause = _find_cause(exc)
        if isinstance(cause, WorkLimitExceeded):
            raise TooComplexError(cause.reason, timed_out=cause.timed_out) from None
        if cause is not None:
            raise cause from None
        raise CanonicalizationError(f"the document is not valid JSON-LD: {exc}") from None
    except WorkLimitExceeded as exc:
        raise TooComplexError(exc.reason, timed_out=exc.timed_out) from None
    if dropped:
        names = ", ".join(sorted(set(dropped)))
        raise CanonicalizationError(
            f"these properties are not defined by the document's @context and would not be "
            f"signed: {names}"
        )
    relative = sorted(set(_relative_iris(expanded)))
    if relative:
        raise CanonicalizationError(
            "these identifiers or types are neither absolute IRIs nor defined by the document's "
            f"@context, so they would not be signed: {', '.join(relative)}"
        )
    try:
        nquads = native_canonical(expanded) if native else None
        if nquads is None:
            nquads = _normalize_expanded(processor, expanded, loader)
    except WorkLimitExceeded as exc:
        raise TooComplexError(exc.reason, timed_out=exc.timed_out) from None
    except jsonld.JsonLdError as exc:
        raise CanonicalizationError(f"the document could not be canonicalized: {exc}") from None
    if not isinstance(nquads, str):  # pragma: no cover - PyLD returns str for this format
        raise CanonicalizationError("canonicalization did not produce N-Quads text")
    return nquads

"""RDFC-1.0 in native code (pyoxigraph's Rust core) for the documents it is proven on.

PyLD still expands the document (with its memoized, offline contexts, and the safe-mode checks of
``ler.credentials.jsonld``); oxigraph turns that expansion into RDF and canonicalizes it. Its own
JSON-LD front end is not used: fed the pinned contexts inline it took longer than PyLD (it keeps no
processed contexts), and it silently drops relative and malformed IRIs that safe mode must see.

The native path is taken only when nothing about the document can make the two implementations
differ or make the work unbounded; :func:`native_canonical` returns None otherwise, and the caller
uses the bounded PyLD path (``ler.credentials.canon``):

- the expansion holds only node, value, list and graph objects; IRIs are plain ASCII absolute IRIs
  both accept; literals have no control characters (their escaping differs) and no ``@json`` or
  ``@direction``; numbers are integers (double formatting is not compared);
- the statements and blank nodes are within :class:`~ler.credentials.canon.CanonicalizationLimits`;
- every blank node has its own first-degree hash (RDFC-1.0 section 4.6), so the Hash N-Degree Quads
  step, whose cost is exponential in look-alike blank nodes, never runs: a poison graph always
  takes the bounded path, which refuses it as before.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import orjson
import pyoxigraph as ox

from ler.credentials.canon import DEFAULT_LIMITS, CanonicalizationLimits, check_deadline

__all__ = ["canonical_nquads", "native_canonical", "sorted_nquads"]

# ASCII absolute IRIs without the characters RFC 3987 forbids or PyLD and oxigraph treat apart.
_SAFE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*$")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BLANK = re.compile(r"^_:[A-Za-z0-9_.-]+$")
_LANGUAGE = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_NODE_KEYS = frozenset({"@id", "@type", "@graph"})
_VALUE_KEYS = frozenset({"@value", "@type", "@language"})


def _iri(value: Any) -> bool:
    return isinstance(value, str) and bool(_SAFE_IRI.match(value)) and not _PERCENT.search(value)


def _reference(value: Any) -> bool:
    return isinstance(value, str) and (bool(_BLANK.match(value)) or _iri(value))


def _value_ok(node: dict[str, Any]) -> bool:
    if not node.keys() <= _VALUE_KEYS:
        return False
    value = node["@value"]
    if isinstance(value, str):
        if _CONTROL.search(value):
            return False
    elif isinstance(value, bool):
        pass
    elif not isinstance(value, int) or abs(value) >= 10**21:
        return False
    language = node.get("@language")
    if language is not None and not (isinstance(language, str) and _LANGUAGE.match(language)):
        return False
    datatype = node.get("@type")
    return datatype is None or _iri(datatype)


def _expansion_ok(expanded: Any) -> bool:
    """True when the expanded document has only what both implementations turn into the same RDF."""
    stack: list[Any] = [expanded]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
            continue
        if not isinstance(item, dict):
            return False
        if "@value" in item:
            if not _value_ok(item):
                return False
            continue
        if "@list" in item:
            if len(item) != 1:
                return False
            stack.append(item["@list"])
            continue
        for key, value in item.items():
            if key.startswith("@"):
                if key not in _NODE_KEYS:
                    return False
                if key == "@id" and not _reference(value):
                    return False
                if key == "@type" and not all(_reference(v) for v in value):
                    return False
                if key == "@graph":
                    stack.append(value)
            elif not _iri(key):
                return False
            else:
                stack.append(value)
    return True


def _first_degree_unique(quads: ox.Dataset) -> tuple[bool, int]:
    """Whether every blank node has its own first-degree hash input (RDFC-1.0 4.6), and how many
    blank nodes there are. Compares the inputs themselves: equal inputs are equal hashes."""
    mentions: defaultdict[str, list[tuple[str, ...]]] = defaultdict(list)
    for quad in quads:
        terms = (quad.subject, quad.object, quad.graph_name)
        blanks = {t.value for t in terms if isinstance(t, ox.BlankNode)}
        if not blanks:
            continue
        predicate = str(quad.predicate)
        for node in blanks:
            named = [
                ("a" if t.value == node else "z") if isinstance(t, ox.BlankNode) else str(t)
                for t in terms
            ]
            mentions[node].append((*named, predicate))
    seen: set[tuple[tuple[str, ...], ...]] = set()
    for entries in mentions.values():
        entries.sort()
        key = tuple(entries)
        if key in seen:
            return False, len(mentions)
        seen.add(key)
    return True, len(mentions)


def canonical_nquads(
    dataset: ox.Dataset, limits: CanonicalizationLimits = DEFAULT_LIMITS
) -> str | None:
    """RDFC-1.0 canonical N-Quads of ``dataset`` (changed in place), or None when it is over the
    limits or has blank nodes its first-degree hashes cannot tell apart (see the module)."""
    if len(dataset) > limits.max_statements:
        return None
    unique, blank_nodes = _first_degree_unique(dataset)
    if not unique or blank_nodes > limits.max_blank_nodes:
        return None
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return sorted_nquads(dataset)


def sorted_nquads(dataset: ox.Dataset) -> str:
    """The dataset's N-Quads, one statement a line, in code point order (RDFC-1.0's output).
    Split on "\n" only: literals may hold U+0085 or U+2028, which ``str.splitlines`` splits on."""
    return "".join(f"{line}\n" for line in sorted(str(dataset).split("\n")) if line)


def native_canonical(expanded: Any, limits: CanonicalizationLimits = DEFAULT_LIMITS) -> str | None:
    """Canonical N-Quads of an expanded (and safe-mode checked) document by oxigraph's RDFC-1.0,
    or None when the document is not one the native path is proven on (see the module)."""
    if not _expansion_ok(expanded):
        return None
    check_deadline()
    try:
        # Lenient: keep every IRI, as PyLD does; the checks above admitted only plain ones.
        dataset = ox.Dataset(
            ox.parse(orjson.dumps(expanded), format=ox.RdfFormat.JSON_LD, lenient=True)
        )
    except (SyntaxError, ValueError):
        return None
    nquads = canonical_nquads(dataset, limits)
    check_deadline()
    return nquads

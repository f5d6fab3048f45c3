"""Limits on a document given to a verifier, checked before any JSON-LD processing.

A credential is a few kilobytes of JSON a few levels deep; a verifier open to anyone must refuse
what is far beyond that before it spends time on it (JSON-LD expansion and canonicalization cost
grows with every value, and a deep document breaks recursive code: orjson refuses to encode past
255 levels). The walk here is iterative, so it works at any depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DocumentLimits", "LimitProblem", "document_problem"]


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    """What a document to verify may be: bytes of JSON, nesting depth, values, credentials."""

    max_bytes: int = 256 * 1024
    max_depth: int = 32
    max_values: int = 20_000
    max_credentials: int = 50


@dataclass(frozen=True, slots=True)
class LimitProblem:
    """The limit a document passed: the field and the rule, in the platform's error terms."""

    field: str
    rule: str


def document_problem(document: Any, limits: DocumentLimits) -> LimitProblem | None:
    """The first limit ``document`` passes, or None. Stops walking as soon as one is passed.

    Depth counts objects and lists inside one another (``[[]]`` is 2 deep); values count every
    object, list, string, number, boolean and null."""
    values = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1
        if values > limits.max_values:
            return LimitProblem("body", f"at most {limits.max_values} JSON values")
        if isinstance(node, Mapping):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limits.max_depth:
            return LimitProblem("body", f"nested at most {limits.max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)
    return _credentials_problem(document, limits)


def _credentials_problem(document: Any, limits: DocumentLimits) -> LimitProblem | None:
    """A presentation (as is, or as ``{"presentation": ...}``) holds at most so many credentials."""
    if not isinstance(document, Mapping):
        return None
    inner = document.get("presentation")
    target = inner if isinstance(inner, Mapping) else document
    credentials = target.get("verifiableCredential")
    if isinstance(credentials, list) and len(credentials) > limits.max_credentials:
        field = "presentation.verifiableCredential" if target is inner else "verifiableCredential"
        return LimitProblem(field, f"at most {limits.max_credentials} credentials")
    return None

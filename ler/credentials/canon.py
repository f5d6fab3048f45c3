"""RDFC-1.0 (URDNA2015) with a bound on its effort.

Canonicalization is fast for the documents credentials are made of, but a dataset whose blank nodes
cannot be told apart by their own statements (a "poison graph": blank nodes that all refer to each
other) sends the Hash N-Degree Quads algorithm through every permutation of them, recursively: seven
such nodes took 4.8 s here, eight 46 s. RDFC-1.0's security considerations ask implementations
to bound that work. This one bounds it three ways and raises
:class:`WorkLimitExceeded` as soon as one is passed:

- the number of blank nodes and of statements of the dataset;
- the deep iterations: Hash N-Degree Quads may run at most ``n ** work_factor`` times in all,
  ``n`` being the number of blank nodes the first-degree hashes left undecided (the rule and the
  default of Digital Bazaar's ``rdf-canonize`` 5, ``maxWorkFactor = 1``, which the JavaScript
  verifiers of the interop test use: what they refuse, this refuses);
- the permutations tried, in total, and a wall-clock deadline (:func:`deadline`), checked at each
  step of the algorithm.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pyld.canon import URDNA2015  # type: ignore[import-untyped]

__all__ = [
    "DEFAULT_LIMITS",
    "BoundedURDNA2015",
    "CanonicalizationLimits",
    "WorkLimitExceeded",
    "check_deadline",
    "deadline",
]


@dataclass(frozen=True, slots=True)
class CanonicalizationLimits:
    """How much work one canonicalization may do (see the module's docstring)."""

    max_blank_nodes: int = 2_000
    max_statements: int = 20_000
    work_factor: int = 1
    max_permutations: int = 10_000


DEFAULT_LIMITS = CanonicalizationLimits()


class WorkLimitExceeded(Exception):
    """A canonicalization passed one of its limits; ``timed_out`` when it was the deadline."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


_DEADLINE: ContextVar[float | None] = ContextVar("ler_canonicalization_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Canonicalizations in this block (in this thread or task) stop after ``seconds``."""
    token = _DEADLINE.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_deadline() -> None:
    """Raise :class:`WorkLimitExceeded` when the deadline of :func:`deadline` has passed."""
    until = _DEADLINE.get()
    if until is not None and time.monotonic() > until:
        raise WorkLimitExceeded("checking it took longer than allowed", timed_out=True)


class BoundedURDNA2015(URDNA2015):  # type: ignore[misc]
    """PyLD's URDNA2015 with the limits of :class:`CanonicalizationLimits` and the deadline."""

    def __init__(self, limits: CanonicalizationLimits = DEFAULT_LIMITS) -> None:
        super().__init__()
        self.limits = limits
        self.deadline = _DEADLINE.get()
        self.max_deep_iterations = -1
        self.deep_iterations = 0
        self.permutations = 0

    def main(self, dataset: dict[str, Any], options: dict[str, Any]) -> Any:
        statements = sum(len(triples) for triples in dataset.values())
        if statements > self.limits.max_statements:
            raise WorkLimitExceeded(
                f"it has {statements} statements; at most {self.limits.max_statements} are checked"
            )
        blank: set[str] = set()
        for triples in dataset.values():
            for triple in triples:
                for key in ("subject", "object"):
                    if triple[key]["type"] == "blank node":
                        blank.add(triple[key]["value"])
        if len(blank) > self.limits.max_blank_nodes:
            raise WorkLimitExceeded(
                f"it has {len(blank)} unnamed (blank) nodes; at most "
                f"{self.limits.max_blank_nodes} are checked"
            )
        self._check_time()
        return super().main(dataset, options)

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        if self.max_deep_iterations < 0:
            # First call: the first-degree hashes have named every blank node they could.
            undecided = sum(
                1 for node in self.blank_node_info if not self.canonical_issuer.has_id(node)
            )
            self.max_deep_iterations = undecided**self.limits.work_factor
        if self.deep_iterations >= self.max_deep_iterations:
            raise WorkLimitExceeded(
                "its unnamed (blank) nodes are so alike that telling them apart needs more than "
                f"{self.max_deep_iterations} rounds"
            )
        self.deep_iterations += 1
        self._check_time()
        return super().hash_n_degree_quads(id_, issuer)

    def create_hash_to_related(self, id_: str, issuer: Any) -> Any:
        related = super().create_hash_to_related(id_, issuer)
        for nodes in related.values():
            if len(nodes) > 1:
                self.permutations += math.factorial(min(len(nodes), 20))
        if self.permutations > self.limits.max_permutations:
            raise WorkLimitExceeded(
                "telling its unnamed (blank) nodes apart would take more than "
                f"{self.limits.max_permutations} orderings of them"
            )
        return related

    def _check_time(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise WorkLimitExceeded("checking it took longer than allowed", timed_out=True)

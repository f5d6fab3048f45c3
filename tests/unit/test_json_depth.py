"""The JSON nesting limit every service applies to request bodies (ler.jsondepth)."""

from __future__ import annotations

import orjson
import pytest

from ler.jsondepth import MAX_JSON_DEPTH, nests_deeper_than

pytestmark = pytest.mark.unit


def levels(n: int) -> bytes:
    return b'{"a":[' * (n // 2) + b"1" + b"]}" * (n // 2)


def test_the_limit_counts_objects_and_lists_exactly() -> None:
    assert not nests_deeper_than(levels(MAX_JSON_DEPTH))
    assert nests_deeper_than(levels(MAX_JSON_DEPTH + 2))
    assert not nests_deeper_than(b"[" * 64 + b"]" * 64)
    assert nests_deeper_than(b"[" * 65 + b"]" * 65)
    # Many shallow containers are no depth.
    assert not nests_deeper_than(b"[" + b"[]," * 10_000 + b"[]]")


def test_brackets_inside_strings_do_not_count() -> None:
    text = orjson.dumps({"title": '\\"' + "[" * 500, "more": ["{" * 500]})
    assert not nests_deeper_than(text)


def test_a_real_batch_is_far_below_the_limit() -> None:
    record = {"person_id": "p", "type": "learning", "title": "First aid [2]", "completed_on": "x"}
    assert not nests_deeper_than(orjson.dumps({"records": [record] * 1000}))

"""Date rules on 29 February: "a year from today" has no 29 February the next year."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.enrollment.domain import one_year_after, record_dates_problems

pytestmark = pytest.mark.unit
LEAP_DAY = date(2028, 2, 29)


def _employment(start: date) -> dict[str, Any]:
    return {"type": "employment", "action": "hired", "start_date": start, "end_date": None}


def test_employment_start_dates_are_checked_on_a_leap_day() -> None:
    assert record_dates_problems(_employment(date(2029, 2, 28)), LEAP_DAY) == []
    assert record_dates_problems(_employment(date(2029, 3, 1)), LEAP_DAY) == [
        ("start_date", "must be within a year from today")
    ]


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (LEAP_DAY, date(2029, 2, 28)),
        (date(2027, 2, 28), date(2028, 2, 28)),
        (date(2026, 12, 1), date(2027, 12, 1)),
        (date(2027, 3, 1), date(2028, 3, 1)),
    ],
)
def test_one_year_after_keeps_the_day_or_takes_the_last_of_february(
    today: date, expected: date
) -> None:
    assert one_year_after(today) == expected

"""Series buckets: UTC days, ISO weeks from Monday, calendar months and years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dora_cloudevents.metrics.buckets import bucket_day, bucket_days, bucket_start
from dora_cloudevents.metrics.filters import Window


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(("day", "bucket", "start"), [
    (date(2024, 3, 6), "day", date(2024, 3, 6)),
    (date(2024, 3, 6), "week", date(2024, 3, 4)),  # Wednesday -> Monday
    (date(2024, 3, 4), "week", date(2024, 3, 4)),
    (date(2024, 3, 10), "week", date(2024, 3, 4)),  # Sunday belongs to the week before
    (date(2024, 1, 1), "week", date(2024, 1, 1)),
    (date(2023, 1, 1), "week", date(2022, 12, 26)),  # ISO week 52 of 2022
    (date(2024, 2, 29), "month", date(2024, 2, 1)),
    (date(2024, 12, 31), "year", date(2024, 1, 1)),
])
def test_bucket_day(day: date, bucket: str, start: date) -> None:
    assert bucket_day(day, bucket) == start  # type: ignore[arg-type]


def test_bucket_start_is_utc_midnight_of_the_utc_day() -> None:
    moment = datetime(2024, 3, 4, 1, 30, tzinfo=UTC) + timedelta(hours=-3)  # Mar 3 22:30 UTC
    assert bucket_start(moment, "day") == utc(2024, 3, 3)
    assert bucket_start(moment, "week") == utc(2024, 2, 26)


def test_bucket_days_cover_the_window() -> None:
    window = Window(utc(2024, 3, 1), utc(2024, 4, 1))
    assert bucket_days(window, "week") == [date(2024, 2, 26) + timedelta(weeks=n)
                                           for n in range(5)]
    assert bucket_days(window, "month") == [date(2024, 3, 1)]  # `to` itself is excluded
    assert len(bucket_days(window, "day")) == 31
    year_end = Window(utc(2023, 11, 15, 12), utc(2024, 2, 1, 0, 0, 1))
    assert bucket_days(year_end, "month") == [date(2023, 11, 1), date(2023, 12, 1),
                                              date(2024, 1, 1), date(2024, 2, 1)]
    assert bucket_days(year_end, "year") == [date(2023, 1, 1), date(2024, 1, 1)]


def test_unknown_bucket() -> None:
    with pytest.raises(ValueError, match="unknown bucket"):
        bucket_day(date(2024, 1, 1), "hour")  # type: ignore[arg-type]

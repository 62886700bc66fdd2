"""Time buckets for series: UTC days, ISO weeks (starting Monday), calendar months and years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal, get_args

from dora_cloudevents.metrics.filters import Window

Bucket = Literal["day", "week", "month", "year"]
BUCKETS: tuple[str, ...] = get_args(Bucket)


def bucket_day(day: date, bucket: Bucket) -> date:
    """The first day of the bucket holding ``day``."""
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    if bucket == "year":
        return day.replace(month=1, day=1)
    raise ValueError(f"unknown bucket {bucket!r}; choose from {', '.join(BUCKETS)}")


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def bucket_start(moment: datetime, bucket: Bucket) -> datetime:
    """The start (UTC midnight) of the bucket holding ``moment``."""
    return midnight(bucket_day(moment.astimezone(UTC).date(), bucket))


def next_bucket_day(start: date, bucket: Bucket) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(weeks=1)
    if bucket == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return date(start.year + 1, 1, 1)


def bucket_days(window: Window, bucket: Bucket) -> list[date]:
    """First days of every bucket that overlaps the window, in order."""
    last = window.end - timedelta(microseconds=1)
    current = bucket_day(window.start.astimezone(UTC).date(), bucket)
    final = bucket_day(last.astimezone(UTC).date(), bucket)
    days = []
    while current <= final:
        days.append(current)
        current = next_bucket_day(current, bucket)
    return days

"""Deployment frequency category (metrics/frequency.py) from constructed deployment days."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dora_cloudevents.metrics.filters import Window
from dora_cloudevents.metrics.frequency import (
    DaySlot,
    block_of,
    complete_blocks,
    frequency_category,
    slots_from_times,
)
from dora_cloudevents.metrics.stats import median

JUNE = Window(datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))  # 4 weeks
SPRING = Window(datetime(2024, 3, 3, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))  # 120 days


def on(days: list[str], per_day: int = 1) -> list[datetime]:
    return [datetime.combine(date.fromisoformat(day), time(9 + n), tzinfo=UTC)
            for day in days for n in range(per_day)]


def category(times: list[datetime], window: Window) -> str:
    return frequency_category(slots_from_times(times, window), window)


def test_on_demand_needs_three_days_a_week_and_two_deployments_a_day() -> None:
    times = (on(["2024-06-03", "2024-06-04", "2024-06-05"], 2)
             + on(["2024-06-10", "2024-06-11", "2024-06-12"], 2)
             + on(["2024-06-17", "2024-06-18", "2024-06-19", "2024-06-20"], 2)
             + on(["2024-06-24"]))
    assert category(times, JUNE) == "on-demand"


def test_volume_on_one_day_does_not_make_on_demand() -> None:
    times = (on(["2024-06-03", "2024-06-04", "2024-06-05"])
             + on(["2024-06-10", "2024-06-11", "2024-06-12"])
             + on(["2024-06-17", "2024-06-18", "2024-06-19", "2024-06-20"])
             + on(["2024-06-24"], 5))
    assert category(times, JUNE) == "daily"


def test_weekly_monthly_yearly_none() -> None:
    assert category(on(["2024-06-04", "2024-06-06"], 3) + on(["2024-06-19"]), JUNE) == "weekly"
    assert category(on(["2024-06-19"]), JUNE) == "yearly"  # 1 of 4 weeks; no 30-day block
    assert category(on(["2024-04-10", "2024-06-10", "2024-06-11", "2024-06-12"]),
                    SPRING) == "monthly"
    assert category(on(["2024-05-15"]), SPRING) == "yearly"
    assert category([], SPRING) == "none"
    # outside [from, to): just before from, exactly at to
    assert category([datetime(2024, 3, 2, 23, 59, tzinfo=UTC),
                     datetime(2024, 7, 1, tzinfo=UTC)], SPRING) == "none"


def test_a_deployment_in_the_dropped_leading_block_is_yearly_at_best() -> None:
    # SPRING's 7-day blocks start Mar 4: Mar 3 is in no week (but in the first 30-day block)
    assert category(on(["2024-03-03"]), SPRING) == "yearly"


def test_window_shorter_than_a_week() -> None:
    short = Window(datetime(2024, 6, 3, tzinfo=UTC), datetime(2024, 6, 8, tzinfo=UTC))
    many = on(["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"], 3)
    assert complete_blocks(short, 7) == 0
    assert category(many, short) == "yearly"  # no week to take a median of


def test_blocks_end_at_to_even_mid_day() -> None:
    # to = Jun 29 12:00: the last week is [Jun 22 12:00, Jun 29 12:00)
    window = Window(datetime(2024, 6, 1, 12, tzinfo=UTC), datetime(2024, 6, 29, 12, tzinfo=UTC))
    assert block_of(date(2024, 6, 29), False, window, 7) == 0  # Jun 29 before 12:00
    assert block_of(date(2024, 6, 22), True, window, 7) == 0  # Jun 22 from 12:00
    assert block_of(date(2024, 6, 22), False, window, 7) == 1  # Jun 22 before 12:00
    # Three deployment days in each week only if Jun 22 morning and afternoon are split
    times = [datetime(2024, 6, d, h, tzinfo=UTC) for d, h in [
        (1, 13), (3, 9), (5, 9), (8, 13), (10, 9), (12, 9), (15, 13), (17, 9), (19, 9),
        (22, 11), (22, 13), (24, 9), (26, 9)]]
    assert category(times, window) == "daily"


def test_empty_slots_are_ignored() -> None:
    assert frequency_category([DaySlot(date(2024, 6, 10), False, 0)], JUNE) == "none"


# ---- Against a literal transcription of §7 over exact times --------------------------------

def reference(times: list[datetime], window: Window) -> str:
    inside = sorted(t for t in times if window.start <= t < window.end)
    if not inside:
        return "none"

    def blocks(days: int) -> list[list[datetime]]:
        size = timedelta(days=days)
        count = (window.end - window.start) // size
        return [[t for t in inside if window.end - (k + 1) * size <= t < window.end - k * size]
                for k in range(count)]

    weeks = blocks(7)
    per_week = [len({t.date() for t in week}) for week in weeks]
    per_day = Counter(t.date() for week in weeks for t in week)
    if weeks and (median(per_week) or 0) >= 3:
        return "on-demand" if (median(per_day.values()) or 0) >= 2 else "daily"
    if weeks and 2 * sum(1 for n in per_week if n) >= len(weeks):
        return "weekly"
    months = blocks(30)
    if months and 2 * sum(1 for month in months if month) >= len(months):
        return "monthly"
    return "yearly"


BASE = datetime(2024, 1, 1, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 60 * 24 * 60),  # minutes after BASE
    length=st.integers(1, 60 * 24 * 100),  # minutes
    offsets=st.lists(st.integers(-60 * 24 * 5, 60 * 24 * 110), max_size=200),
    spread=st.sampled_from([1, 4, 10, 40]),
)
def test_day_slots_agree_with_exact_times(start: int, length: int, offsets: list[int],
                                          spread: int) -> None:
    """Deployments every few hours (spread 40) down to a handful of days (spread 1)."""
    window = Window(BASE + timedelta(minutes=start), BASE + timedelta(minutes=start + length))
    times = [window.end - timedelta(minutes=offset // spread, microseconds=offset % 7)
             for offset in offsets]
    assert category(times, window) == reference(times, window)


@pytest.mark.parametrize("boundary_minutes", [0, 1, 720, 1439])
def test_exact_block_boundaries(boundary_minutes: int) -> None:
    end = datetime(2024, 6, 29, tzinfo=UTC) + timedelta(minutes=boundary_minutes)
    window = Window(end - timedelta(days=28), end)
    # one deployment exactly at each block start, one just before it
    times = [end - timedelta(days=7 * k) for k in range(1, 5)]
    times += [t - timedelta(microseconds=1) for t in times]
    assert category(times, window) == reference(times, window)

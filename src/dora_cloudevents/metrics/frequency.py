"""Deployment frequency category (DESIGN.md §7), from deployments counted per UTC day.

The window is cut into consecutive 7-day blocks ending at ``to`` (an incomplete leading block is
dropped) and into 30-day blocks likewise. Then:

* ``on-demand``: the median week has deployments on ≥ 3 distinct days and the median deployment
  day has ≥ 2 deployments;
* ``daily``: the median week has deployments on ≥ 3 distinct days;
* ``weekly``: at least half of the weeks have a deployment;
* ``monthly``: at least half of the 30-day blocks have a deployment;
* ``yearly``: some deployment in the window; ``none``: no deployment at all.

Where §7 is silent:

* A window shorter than one block has no such blocks, and "at least half of none" is not taken
  as true: such a window can only be ``yearly`` or ``none`` at that block size.
* The median deployment day is taken over the deployment days of the complete 7-day blocks
  (the days the weekly median looks at; a dropped leading block does not count).
* A UTC day that a block boundary cuts in two counts as a deployment day in each block it
  has deployments in.

Blocks end at ``to``, which need not be midnight, so a deployment's block depends on its UTC
day and on whether its time of day is before or at/after ``to``'s time of day. That is all the
database has to return (``DaySlot``): at most two rows per day, whatever the volume.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from dora_cloudevents.metrics.filters import Window
from dora_cloudevents.metrics.stats import median

WEEK_DAYS = 7
MONTH_DAYS = 30
CATEGORIES = ("on-demand", "daily", "weekly", "monthly", "yearly", "none")


@dataclass(frozen=True)
class DaySlot:
    """Deployments on one UTC ``day``, before (``late`` False) or at/after ``to``'s time of day."""

    day: date
    late: bool
    deployments: int


def end_time_of_day(window: Window) -> time:
    return window.end.astimezone(UTC).time()


def time_of_day_key(window: Window) -> str:
    """``to``'s time of day as ``HH:MM:SS.ffffff``, comparable with the SQL expression's text."""
    return end_time_of_day(window).isoformat(timespec="microseconds")


def slot_of(moment: datetime, window: Window) -> tuple[date, bool]:
    moment = moment.astimezone(UTC)
    return moment.date(), moment.time() >= end_time_of_day(window)


def slots_from_times(times: Iterable[datetime], window: Window) -> list[DaySlot]:
    """Count deployment times (those inside the window) into slots."""
    counts = Counter(slot_of(moment, window) for moment in times if moment in window)
    return [DaySlot(day, late, n) for (day, late), n in sorted(counts.items())]


def block_of(day: date, late: bool, window: Window, length_days: int) -> int:
    """Index of the ``length_days`` block holding the slot, 0 for the block that ends at ``to``.

    Block k is ``[to - (k+1)·L, to - k·L)``. A time on ``day`` that is ``d`` days before ``to``'s
    day lies in block ``d // L`` before ``to``'s time of day, ``(d - 1) // L`` at or after it.
    """
    distance = (window.end.astimezone(UTC).date() - day).days
    return (distance - 1) // length_days if late else distance // length_days


def complete_blocks(window: Window, length_days: int) -> int:
    return (window.end - window.start) // timedelta(days=length_days)


def frequency_category(slots: Iterable[DaySlot], window: Window) -> str:
    slots = list(slots)
    weeks = complete_blocks(window, WEEK_DAYS)
    months = complete_blocks(window, MONTH_DAYS)
    week_days: list[set[date]] = [set() for _ in range(weeks)]
    month_has: list[bool] = [False] * months
    per_day: Counter[date] = Counter()
    for slot in slots:
        if slot.deployments <= 0:
            continue
        week = block_of(slot.day, slot.late, window, WEEK_DAYS)
        if 0 <= week < weeks:
            week_days[week].add(slot.day)
            per_day[slot.day] += slot.deployments
        month = block_of(slot.day, slot.late, window, MONTH_DAYS)
        if 0 <= month < months:
            month_has[month] = True
    if not any(slot.deployments > 0 for slot in slots):
        return "none"
    median_week = median(len(days) for days in week_days)
    if median_week is not None and median_week >= 3:
        median_day = median(per_day.values())
        return "on-demand" if median_day is not None and median_day >= 2 else "daily"
    if weeks and 2 * sum(1 for days in week_days if days) >= weeks:
        return "weekly"
    if months and 2 * sum(month_has) >= months:
        return "monthly"
    return "yearly"

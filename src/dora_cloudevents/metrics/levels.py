"""Performance levels (DESIGN.md §7, the default table) and the overall level.

| level  | frequency category | lead time  | change failure rate | recovery time |
|--------|--------------------|------------|---------------------|---------------|
| elite  | on-demand          | < 1 day    | ≤ 5 %               | < 1 hour      |
| high   | daily, weekly      | < 1 week   | ≤ 10 %              | < 1 day       |
| medium | monthly            | < 30 days  | ≤ 15 %              | < 1 week      |
| low    | yearly             | ≥ 30 days  | > 15 %              | ≥ 1 week      |

"Recovery time" is the failed deployment recovery time (the metric whose JSON carries the
level). A metric with no data (no category but ``none``, no median, no rate) has level None.

The **overall level** is the lowest (worst) of the four metric levels (deployment frequency,
lead time, change failure rate, failed deployment recovery time) that have data, and None when
none has: a team is only as good as its weakest measured key. (The stricter reading, None as
soon as one key has no data, is ``overall_level(..., require_all=True)``.)

The table is data (``PerformanceTable``); ``DEFAULT_TABLE`` is the one §7 gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction
from typing import Literal

Level = Literal["elite", "high", "medium", "low"]
LEVELS: tuple[Level, ...] = ("elite", "high", "medium", "low")
"""Best first."""


@dataclass(frozen=True)
class PerformanceTable:
    """Thresholds, best level first; a value that meets none of them is ``low``."""

    frequency: Mapping[str, Level] = field(default_factory=lambda: {
        "on-demand": "elite", "daily": "high", "weekly": "high", "monthly": "medium",
        "yearly": "low",
    })
    lead_time_below: tuple[tuple[timedelta, Level], ...] = (
        (timedelta(days=1), "elite"), (timedelta(weeks=1), "high"),
        (timedelta(days=30), "medium"),
    )
    change_failure_rate_at_most: tuple[tuple[Fraction, Level], ...] = (
        (Fraction(5, 100), "elite"), (Fraction(10, 100), "high"), (Fraction(15, 100), "medium"),
    )
    recovery_time_below: tuple[tuple[timedelta, Level], ...] = (
        (timedelta(hours=1), "elite"), (timedelta(days=1), "high"),
        (timedelta(weeks=1), "medium"),
    )


DEFAULT_TABLE = PerformanceTable()


def _below(seconds: float | None, thresholds: Iterable[tuple[timedelta, Level]]) -> Level | None:
    if seconds is None:
        return None
    for limit, level in thresholds:
        if seconds < limit.total_seconds():
            return level
    return "low"


def frequency_level(category: str, table: PerformanceTable = DEFAULT_TABLE) -> Level | None:
    """``none`` (no deployment) and any unknown category have no level."""
    return table.frequency.get(category)


def lead_time_level(median_seconds: float | None,
                    table: PerformanceTable = DEFAULT_TABLE) -> Level | None:
    return _below(median_seconds, table.lead_time_below)


def change_failure_rate_level(failed: int, deployments: int,
                              table: PerformanceTable = DEFAULT_TABLE) -> Level | None:
    """From the counts, so 1 failure in 20 deployments is exactly 5 % (no float rounding)."""
    if deployments == 0:
        return None
    rate = Fraction(failed, deployments)
    for limit, level in table.change_failure_rate_at_most:
        if rate <= limit:
            return level
    return "low"


def recovery_time_level(median_seconds: float | None,
                        table: PerformanceTable = DEFAULT_TABLE) -> Level | None:
    return _below(median_seconds, table.recovery_time_below)


def overall_level(levels: Iterable[Level | None], *, require_all: bool = False) -> Level | None:
    """The lowest of the known levels (None when none is known, or with ``require_all`` when
    any is unknown)."""
    given = list(levels)
    known = [level for level in given if level is not None]
    if not known or (require_all and len(known) < len(given)):
        return None
    return max(known, key=LEVELS.index)

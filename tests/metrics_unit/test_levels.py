"""The default performance table of DESIGN.md §7 and the overall level (metrics/levels.py)."""

from __future__ import annotations

import pytest

from dora_cloudevents.metrics.levels import (
    change_failure_rate_level,
    frequency_level,
    lead_time_level,
    overall_level,
    recovery_time_level,
)

HOUR, DAY = 3600, 86400


@pytest.mark.parametrize(("category", "level"), [
    ("on-demand", "elite"), ("daily", "high"), ("weekly", "high"), ("monthly", "medium"),
    ("yearly", "low"), ("none", None),
])
def test_frequency(category: str, level: str | None) -> None:
    assert frequency_level(category) == level


@pytest.mark.parametrize(("seconds", "level"), [
    (None, None), (0, "elite"), (DAY - 1, "elite"), (DAY, "high"), (7 * DAY - 0.5, "high"),
    (7 * DAY, "medium"), (30 * DAY - 1, "medium"), (30 * DAY, "low"), (400 * DAY, "low"),
])
def test_lead_time_limits_are_exclusive(seconds: float | None, level: str | None) -> None:
    assert lead_time_level(seconds) == level


@pytest.mark.parametrize(("failed", "deployments", "level"), [
    (0, 0, None), (0, 1, "elite"), (1, 20, "elite"), (3, 60, "elite"), (2, 20, "high"),
    (3, 20, "medium"), (7, 46, "low"), (4, 20, "low"), (1, 1, "low"),
])
def test_change_failure_rate_limits_are_inclusive(failed: int, deployments: int,
                                                  level: str | None) -> None:
    # 3/60 and 3/20 are exactly 5 % and 15 %: compared as fractions, not rounded floats
    assert change_failure_rate_level(failed, deployments) == level


@pytest.mark.parametrize(("seconds", "level"), [
    (None, None), (HOUR - 1, "elite"), (HOUR, "high"), (DAY, "medium"), (7 * DAY, "low"),
])
def test_recovery_time(seconds: float | None, level: str | None) -> None:
    assert recovery_time_level(seconds) == level


def test_overall_is_the_worst_known_level() -> None:
    assert overall_level(["elite", "high", "elite", "medium"]) == "medium"
    assert overall_level(["medium", None, "low", "elite"]) == "low"
    assert overall_level(["high", None, None, None]) == "high"
    assert overall_level([None, None, None, None]) is None
    assert overall_level(["elite", None, "elite", "elite"], require_all=True) is None
    assert overall_level(["elite", "high", "elite", "elite"], require_all=True) == "high"

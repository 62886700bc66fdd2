"""Median and nearest-rank percentiles (metrics/stats.py)."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dora_cloudevents.metrics.stats import median, percentile


def test_no_values_give_none() -> None:
    assert median([]) is None
    assert percentile([], 90) is None


def test_median_odd_and_even() -> None:
    assert median([3, 1, 2]) == 2
    assert median([4, 1, 3, 2]) == 2.5
    assert median([14400, 18000]) == 16200


@pytest.mark.parametrize(("values", "expected"), [
    ([5], 5),
    ([1, 2], 2),  # rank ceil(1.8) = 2
    ([14400, 18000, 21600], 21600),  # rank ceil(2.7) = 3
    (list(range(1, 11)), 9),  # rank ceil(9.0) = 9, exactly, without float noise
    (list(range(1, 21)), 18),
    (list(range(1, 101)), 90),
])
def test_p90_is_nearest_rank(values: list[int], expected: int) -> None:
    assert percentile(values, 90) == expected


def test_percent_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"1\.\.100"):
        percentile([1], 0)


@given(st.lists(st.integers(-10**9, 10**9), min_size=1, max_size=300))
def test_against_references(values: list[int]) -> None:
    assert median(values) == statistics.median(values)
    ordered = sorted(values)
    assert percentile(values, 90) == ordered[math.ceil(len(values) * 9 / 10) - 1]
    assert percentile(values, 100) == ordered[-1]

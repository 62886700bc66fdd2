"""The summary statistics the metrics report: median and nearest-rank percentiles.

* **median**: the middle value of the sorted values, or the mean of the two middle values when
  there is an even number of them (the usual definition; ``statistics.median``).
* **p90** (and any other percentile): *nearest rank*, the smallest value such that at least
  90 % of the values are less than or equal to it: ``sorted[ceil(0.9 n) - 1]``. It is always one
  of the observed values (PostgreSQL's ``percentile_disc``), never an interpolation.

Both are None for no values: a metric with no data has no value, never 0.
"""

from __future__ import annotations

from collections.abc import Iterable

P90 = 90


def median_ranks(count: int) -> tuple[int, ...]:
    """The 1-based ranks of the sorted values whose mean is the median (none for none)."""
    if count == 0:
        return ()
    middle = count // 2
    return (middle + 1,) if count % 2 else (middle, middle + 1)


def nearest_rank(count: int, percent: int) -> int:
    """The 1-based rank of the nearest-rank ``percent`` percentile of ``count`` values."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in 1..100, not {percent}")
    return -(-percent * count // 100)  # ceil(percent/100 * n) without float rounding


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    ranks = median_ranks(len(ordered))
    if not ranks:
        return None
    return sum(float(ordered[rank - 1]) for rank in ranks) / len(ranks)


def percentile(values: Iterable[float], percent: int) -> float | None:
    """Nearest-rank percentile, ``percent`` in 1..100 (integer, so the rank is exact)."""
    ordered = sorted(values)
    rank = nearest_rank(len(ordered), percent)
    return float(ordered[rank - 1]) if ordered else None

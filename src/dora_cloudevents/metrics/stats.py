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


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    count = len(ordered)
    if count == 0:
        return None
    middle = count // 2
    if count % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values: Iterable[float], percent: int) -> float | None:
    """Nearest-rank percentile, ``percent`` in 1..100 (integer, so the rank is exact)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in 1..100, not {percent}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = -(-percent * len(ordered) // 100)  # ceil(percent/100 * n) without float rounding
    return float(ordered[rank - 1])

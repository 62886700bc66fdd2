"""Per-day rollups the projector keeps beside the facts, so wide metric queries read days.

``daily_deployments`` counts, per (environment, UTC day), the deployments and how many of
them failed or are rework; ``daily_lead_times`` counts, per (environment, UTC day of the
first deployment, lead bucket), the changes first deployed with a lead time in that bucket.
Every write of the facts they summarise adds its difference here in the same transaction
(``DailyCounts``), so a rollup always equals the aggregate of its facts.

Lead buckets are monotonic in the lead time (``lead_bucket``): the bucket counts locate the
bucket holding any rank, and only that bucket's values need to be read to know the exact
median or p90 (metrics/queries.py). They are 1/16 of a doubling wide (about 4.4 %).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from dora_cloudevents.metrics.durations import fill_durations
from dora_cloudevents.metrics.expressions import flag
from dora_cloudevents.metrics.expressions import utc_date as utc_date_of
from dora_cloudevents.store.schema import (
    daily_deployments,
    daily_lead_times,
    deployments,
    first_deployments,
)

BUCKETS_PER_DOUBLING = 16
REBUILD_PAGE = 20_000


def lead_bucket(seconds: float) -> int:
    """The bucket of a lead time: 0 up to one second (and for negative ones), then 16 per
    doubling. Monotonic: a longer lead time never lands in a lower bucket."""
    if seconds <= 1:
        return 0
    return 1 + math.floor(math.log2(seconds) * BUCKETS_PER_DOUBLING)


def utc_date(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


class DailyCounts:
    """The differences one write makes to the rollups, added to them by ``apply``."""

    def __init__(self) -> None:
        # (environment, day) -> [deployments, failed, rework]
        self.deployments: defaultdict[tuple[str, date], list[int]] = defaultdict(
            lambda: [0, 0, 0])
        self.lead_times: Counter[tuple[str, date, int]] = Counter()

    def deployment(self, environment: str, time: datetime, *, count: int = 0, failed: int = 0,
                   rework: int = 0) -> None:
        sums = self.deployments[(environment, utc_date(time))]
        for index, delta in enumerate((count, failed, rework)):
            sums[index] += delta

    def lead_times_of(self, rows: Iterable[tuple[str, datetime, int | None]], sign: int
                      ) -> None:
        """Count (``sign`` 1) or uncount (-1) first deployments given as (environment,
        deployed_at, lead_bucket)."""
        for environment, deployed_at, bucket in rows:
            if bucket is not None:
                self.lead_times[(environment, utc_date(deployed_at), bucket)] += sign

    def apply(self, connection: Connection) -> None:
        statements = _statements(connection.dialect.name)
        days = [{"environment": environment, "day": day, "deployments": count,
                 "failed": failed, "rework": rework}
                for (environment, day), (count, failed, rework) in self.deployments.items()
                if count or failed or rework]
        if days:
            connection.execute(statements["deployments"], days)
        leads = [{"environment": environment, "day": day, "lead_bucket": bucket,
                  "changes": delta}
                 for (environment, day, bucket), delta in self.lead_times.items() if delta]
        if leads:
            connection.execute(statements["lead_times"], leads)
            # A bucket a first deployment left may now count nothing: drop it, so the rows
            # depend on the facts alone, not on the order the projectors wrote them in.
            emptied = [{"environment": environment, "day": day, "lead_bucket": bucket}
                       for (environment, day, bucket), delta in self.lead_times.items()
                       if delta < 0]
            if emptied:
                rolled = daily_lead_times.c
                connection.execute(delete(daily_lead_times).where(
                    rolled.environment == bindparam("environment"),
                    rolled.day == bindparam("day"),
                    rolled.lead_bucket == bindparam("lead_bucket"), rolled.changes == 0),
                    emptied)
        self.deployments.clear()
        self.lead_times.clear()


@lru_cache(maxsize=2)
def _statements(dialect_name: str) -> dict[str, Any]:
    """Upserts that add to the stored counts (both back-ends' ON CONFLICT)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    days = dialect.insert(daily_deployments)
    leads = dialect.insert(daily_lead_times)
    return {
        "deployments": days.on_conflict_do_update(
            index_elements=["environment", "day"],
            set_={column: daily_deployments.c[column] + days.excluded[column]
                  for column in ("deployments", "failed", "rework")}),
        "lead_times": leads.on_conflict_do_update(
            index_elements=["environment", "day", "lead_bucket"],
            set_={"changes": daily_lead_times.c.changes + leads.excluded.changes}),
    }


def rebuild(connection: Connection) -> None:
    """Recompute every derived column and both rollups from the facts, for facts written by
    other means than the projector."""
    fill_durations(connection)
    rebuild_rollups(connection)


def rebuild_rollups(connection: Connection) -> None:
    """Recompute the lead buckets and both rollups from the facts (migration 0007 fills them
    for databases projected before they existed)."""
    first = first_deployments.c
    done: tuple[str, str] = ("", "")
    while True:  # keyset pages: never the whole table in memory
        page = list(connection.execute(
            select(first.change_key, first.environment, first.lead_seconds)
            .where(tuple_(first.change_key, first.environment) > done)
            .order_by(first.change_key, first.environment).limit(REBUILD_PAGE)))
        if not page:
            break
        connection.execute(
            update(first_deployments).where(first.change_key == bindparam("b_key"),
                                            first.environment == bindparam("b_environment"))
            .values(lead_bucket=bindparam("b_bucket")),
            [{"b_key": key, "b_environment": environment,
              "b_bucket": None if seconds is None else lead_bucket(seconds)}
             for key, environment, seconds in page])
        done = (page[-1].change_key, page[-1].environment)
    shipped = deployments.c
    connection.execute(delete(daily_deployments))
    day = utc_date_of(shipped.time)
    connection.execute(daily_deployments.insert().from_select(
        ["environment", "day", "deployments", "failed", "rework"],
        select(shipped.environment, day, func.count(), func.sum(flag(shipped.failed)),
               func.sum(flag(shipped.rework)))
        .group_by(shipped.environment, day)))
    connection.execute(delete(daily_lead_times))
    day = utc_date_of(first.deployed_at)
    connection.execute(daily_lead_times.insert().from_select(
        ["environment", "day", "lead_bucket", "changes"],
        select(first.environment, day, first.lead_bucket, func.count())
        .where(first.lead_bucket.is_not(None))
        .group_by(first.environment, day, first.lead_bucket)))


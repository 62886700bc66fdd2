"""Change lead time summaries (count, median, p90), reading as few values as possible.

Lead buckets are ordered like their values (metrics/rollups.py), so counts per bucket say
which bucket holds any rank, and only the buckets holding the medians' and the p90s' ranks
are read and sorted: the exact values of stats.py, not estimates. Over every service the
whole days' counts come from ``daily_lead_times`` and the partial days' from the facts; for
some services, from their facts (an index-only count per bucket).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Connection, Integer, Text, and_, func, select, values
from sqlalchemy import column as sql_column

from dora_cloudevents.metrics import queries
from dora_cloudevents.metrics.buckets import midnight
from dora_cloudevents.metrics.chunking import chunks
from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.queries import WholeDays, first_deployment_filters, lead_time_facts
from dora_cloudevents.metrics.rollups import lead_bucket, utc_date
from dora_cloudevents.metrics.stats import P90, median, median_ranks, nearest_rank, percentile
from dora_cloudevents.store.schema import UTCDateTime, daily_lead_times, first_deployments

K = TypeVar("K")
GroupKey = Callable[[date, str | None, str], K]  # (UTC day, service, environment) -> group
ONE_DAY = timedelta(days=1)
VALUES_ROWS = 200  # rows of a VALUES list joined in one statement
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeadTimes:
    """The lead time summary: how many values, their median and nearest-rank p90."""

    count: int
    median: float | None
    p90: float | None


def lead_times(connection: Connection, selection: Selection) -> LeadTimes:
    """Count, median and p90 of the selection's lead times: the values at the wanted ranks
    are picked in the database, inside the bucket that holds each rank."""
    selection = queries.with_environments(connection, selection)
    counts = _bucket_counts(connection, selection)
    found = _values_at(connection, selection, _locate(counts, _wanted_ranks(counts.total())))
    if any(value is None for value in found.values()):
        log.warning("daily_lead_times disagrees with first_deployments; reading every value")
        return _summary([row[3] for row in lead_time_facts(connection, selection)])
    return _summary_at(counts.total(), found)  # type: ignore[arg-type]


def _bucket_counts(connection: Connection, selection: Selection) -> Counter[int]:
    """How many of the selection's lead times fall in each bucket: the whole days' from
    the rollup when every service is selected, the rest from the facts."""
    split = queries.whole_days(connection, selection)
    parts = [selection] if split is None else [split.selection(edge) for edge in split.edges]
    # Counting reads a time range: the bucket is hidden from the planner, which would rather
    # walk the lead-bucket index in bucket order (no sort) through the whole environment.
    bucket = _hidden(first_deployments.c.lead_bucket)
    counts: Counter[int] = Counter()
    for part in parts:
        for found, count in connection.execute(select(bucket, func.count()).where(
                *first_deployment_filters(part)).group_by(bucket)).all():
            if found is not None:
                counts[found] += count
    if split is not None:
        rolled = daily_lead_times.c
        for found, count in connection.execute(
                select(rolled.lead_bucket, func.sum(rolled.changes))
                .where(rolled.environment.in_(split.environments), rolled.day >= split.first,
                       rolled.day < split.end)
                .group_by(rolled.lead_bucket)).all():
            counts[found] += int(count)
    return counts


def _values_at(connection: Connection, selection: Selection,
               located: dict[int, tuple[int, int]]) -> dict[int, float | None]:
    """The value at each rank, from its (bucket, index in the bucket); None where the
    bucket holds fewer values than its count said.

    Over every service the database sorts each bucket (thousands of values, read from the
    lead-bucket index) and returns the one value; a few services' buckets are small enough
    to read, and reading them keeps to the services' index (SQLite's planner, without
    statistics, would sort through the whole environment's range instead)."""
    column = _lead_bucket_of(selection)
    seconds = first_deployments.c.lead_seconds
    filters = first_deployment_filters(selection)
    if selection.services is None:
        # One sort per bucket: the median's two ranks (and often the p90) share one.
        wanted: defaultdict[int, dict[int, int]] = defaultdict(dict)
        for rank, (bucket, index) in located.items():
            wanted[bucket][rank] = index
        found: dict[int, float | None] = {}
        for bucket, indexes in wanted.items():
            low = min(indexes.values())
            span = connection.execute(
                select(seconds).where(*filters, column == bucket).order_by(seconds)
                .offset(low).limit(max(indexes.values()) - low + 1)).scalars().all()
            found.update({rank: span[index - low] if index - low < len(span) else None
                          for rank, index in indexes.items()})
        return found
    read: defaultdict[int, list[float]] = defaultdict(list)
    for bucket, value in connection.execute(select(column, seconds).where(
            *filters, column.in_(sorted({bucket for bucket, _ in located.values()})))).all():
        read[bucket].append(value)
    ordered = {bucket: sorted(values) for bucket, values in read.items()}
    return {rank: ordered[bucket][index] if index < len(ordered.get(bucket, [])) else None
            for rank, (bucket, index) in located.items()}


def _wanted_ranks(total: int) -> set[int]:
    return {*median_ranks(total), nearest_rank(total, P90)} if total else set()


def _locate(counts: Counter[int], ranks: set[int]) -> dict[int, tuple[int, int]]:
    """Each rank's (bucket, index in the bucket), buckets being ordered like their values."""
    located, below = {}, 0
    for bucket in sorted(counts):
        for rank in ranks:
            if below < rank <= below + counts[bucket]:
                located[rank] = (bucket, rank - below - 1)
        below += counts[bucket]
    return located


def _summary_at(total: int, values: dict[int, float]) -> LeadTimes:
    """The summary of ``total`` values from those at the median's and the p90's ranks."""
    if not total:
        return LeadTimes(0, None, None)
    middle = [float(values[rank]) for rank in median_ranks(total)]
    return LeadTimes(total, sum(middle) / len(middle), float(values[nearest_rank(total, P90)]))


def _lead_bucket_of(selection: Selection) -> ColumnElement[int]:
    """The lead bucket column, hidden from the planner (``+ 0``) when services are selected:
    their own index ranges are what to read, and without statistics SQLite would rather
    walk the lead-bucket index through every service's values."""
    bucket = first_deployments.c.lead_bucket
    return _hidden(bucket) if selection.services is not None else bucket


def _hidden(bucket: ColumnElement[int]) -> ColumnElement[int]:
    """The column as an expression (``+ 0``), which no index can serve."""
    return (bucket + 0).label("lead_bucket")


def lead_time_summaries(connection: Connection, selection: Selection,
                        key: GroupKey[K], *, by_service: bool = False) -> dict[K, LeadTimes]:
    """Count, median and p90 of the lead times of each group: ``key`` names the group of a
    change first deployed on a UTC day by a service to an environment, and must give each
    group consecutive days (a series bucket does). With ``by_service`` false, ``key`` is
    given no service (None): the rollups do not keep services apart.
    """
    split = None if by_service else queries.whole_days(connection, selection)
    if split is not None:
        found = _summaries_by_bucket(connection, split, key)
        if found is not None:
            return found
    grouped_values: dict[K, list[float]] = defaultdict(list)
    for deployed_at, service, environment, seconds in lead_time_facts(connection, selection):
        grouped_values[key(utc_date(deployed_at), service if by_service else None,
                           environment)].append(seconds)
    return {group: _summary(values) for group, values in grouped_values.items()}


def _summary(values: list[float]) -> LeadTimes:
    return LeadTimes(len(values), median(values), percentile(values, P90))


@dataclass
class _Group:
    """One group's lead times while they are located: bucket counts, the values read so
    far per bucket, its days, and which bucket and place each wanted rank is at."""

    counts: Counter[int] = field(default_factory=Counter)
    values: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))
    days: set[date] = field(default_factory=set)
    ranks: dict[int, tuple[int, int]] = field(default_factory=dict)

    def locate(self) -> None:
        self.ranks = _locate(self.counts, _wanted_ranks(self.counts.total()))

    def summary(self) -> LeadTimes:
        ordered = {bucket: sorted(values) for bucket, values in self.values.items()}
        return _summary_at(self.counts.total(), {
            rank: ordered[bucket][index] for rank, (bucket, index) in self.ranks.items()})


def _summaries_by_bucket(connection: Connection, split: WholeDays, key: GroupKey[K],
                         ) -> dict[K, LeadTimes] | None:
    """None when the bucket counts disagree with the values (then read them all)."""
    groups: defaultdict[K, _Group] = defaultdict(_Group)
    loose: defaultdict[K, list[float]] = defaultdict(list)
    for edge in split.edges:
        for deployed_at, _, environment, seconds in lead_time_facts(
                connection, split.selection(edge)):
            name = key(utc_date(deployed_at), None, environment)
            loose[name].append(seconds)
            groups[name].counts[lead_bucket(seconds)] += 1
    rolled = daily_lead_times.c
    group_of: dict[tuple[date, str], _Group] = {}  # key() once per day, not per row
    for row in connection.execute(
            select(rolled.day, rolled.environment, rolled.lead_bucket, func.sum(rolled.changes))
            .where(rolled.environment.in_(split.environments), rolled.day >= split.first,
                   rolled.day < split.end)
            .group_by(rolled.day, rolled.environment, rolled.lead_bucket)).all():
        day, environment, bucket, count = row
        found = group_of.get((day, environment))
        if found is None:
            found = group_of[(day, environment)] = groups[key(day, None, environment)]
            found.days.add(day)
        found.counts[bucket] += int(count)
    for name, located in groups.items():
        located.locate()
        for value in loose[name]:
            located.values[lead_bucket(value)].append(value)
    wanted = {(name, bucket) for name, group in groups.items()
              for bucket, _ in group.ranks.values()}
    _read_bucket_values(connection, split, key, groups, wanted)
    if any(len(groups[name].values[bucket]) != groups[name].counts[bucket]
           for name, bucket in wanted):
        log.warning("daily_lead_times disagrees with first_deployments; reading every value")
        return None
    return {name: group.summary() for name, group in groups.items()}


def _read_bucket_values(connection: Connection, split: WholeDays,
                        key: GroupKey[K], groups: dict[K, _Group],
                        wanted: set[tuple[K, int]]) -> None:
    """Add the whole days' values of the wanted (group, bucket) pairs to their groups: one
    index range (environment, bucket, days) per pair and environment of the group."""
    targets: list[tuple[K, int]] = []
    pieces = []
    for name, bucket in sorted(wanted, key=repr):
        days = groups[name].days
        for environment in split.environments:
            if days and key(min(days), None, environment) == name:
                pieces.append((len(targets), environment, bucket, midnight(min(days)),
                               midnight(max(days)) + ONE_DAY))
                targets.append((name, bucket))
    first = first_deployments.c
    for chunk in chunks(pieces, VALUES_ROWS):
        piece = values(sql_column("piece", Integer()), sql_column("environment", Text()),
                       sql_column("bucket", Integer()), sql_column("begin", UTCDateTime()),
                       sql_column("end", UTCDateTime()), name="pieces").data(chunk).cte()
        for index, value in connection.execute(
                select(piece.c.piece, first.lead_seconds).select_from(piece).join(
                    first_deployments, and_(
                        first.environment == piece.c.environment,
                        first.lead_bucket == piece.c.bucket,
                        first.deployed_at >= piece.c.begin, first.deployed_at < piece.c.end))
                ).all():
            name, bucket = targets[index]
            groups[name].values[bucket].append(value)

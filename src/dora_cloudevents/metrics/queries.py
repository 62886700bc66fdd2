"""The SQL behind the metrics: the facts each metric needs, filtered and counted in the database.

Every query here is bounded by the selection's window through an indexed time column
(``deployments(environment, time)`` / ``(service, environment, time)``,
``incidents(service, environment, detected_at)``), and returns either aggregates (counts per
UTC day) or just the columns a median needs. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    func,
    select,
    true,
    values,
)
from sqlalchemy import column as sql_column

from dora_cloudevents.metrics.buckets import midnight
from dora_cloudevents.metrics.expressions import flag, utc_day, utc_time_of_day
from dora_cloudevents.metrics.filters import Selection, Window
from dora_cloudevents.metrics.frequency import MONTH_DAYS, WEEK_DAYS
from dora_cloudevents.metrics.stats import median_ranks
from dora_cloudevents.store import schema
from dora_cloudevents.store.schema import (
    UTCDateTime,
    changes,
    daily_deployments,
    deployments,
    incidents,
)

GroupBy = Literal["service", "environment", "team"]
K = TypeVar("K")
GroupKey = Callable[[date, str | None, str], K]  # (UTC day, service, environment) -> group
ONE_DAY = timedelta(days=1)
VALUES_ROWS = 200  # rows of a VALUES list joined in one statement
log = logging.getLogger(__name__)


# ---- Filters -----------------------------------------------------------------------------------

def deployment_filters(selection: Selection, *, window: bool = True
                       ) -> list[ColumnElement[bool]]:
    column = deployments.c
    clauses = ([column.time >= selection.window.start, column.time < selection.window.end]
               if window else [])
    if selection.services is not None:
        clauses.append(column.service.in_(sorted(selection.services)))
    if selection.environments is not None:
        clauses.append(column.environment.in_(sorted(selection.environments)))
    return clauses


def incident_filters(selection: Selection) -> list[ColumnElement[bool]]:
    column = incidents.c
    clauses = [column.detected_at >= selection.window.start,
               column.detected_at < selection.window.end]
    if selection.services is not None:
        clauses.append(column.service.in_(sorted(selection.services)))
    if selection.environments is not None:
        clauses.append(column.environment.in_(sorted(selection.environments)))
    return clauses


def _group_column(table_columns: Any, group_by: GroupBy) -> ColumnElement[str]:
    """The column a query groups on: team is resolved from the service afterwards."""
    if group_by == "environment":
        return table_columns.environment  # type: ignore[no-any-return]
    return table_columns.service  # type: ignore[no-any-return]


# ---- Whole days: where the per-day rollups answer --------------------------------------------

@dataclass(frozen=True)
class WholeDays:
    """A window over every service cut at UTC midnights: the whole days ``[first, end)``,
    which the rollups (metrics/rollups.py) answer, and the partial days at either end
    (``edges``), which the facts answer."""

    first: date
    end: date
    edges: list[Window]
    environments: list[str]

    def selection(self, window: Window) -> Selection:
        return Selection(window, None, frozenset(self.environments))


def whole_days(connection: Connection, selection: Selection) -> WholeDays | None:
    """The window's whole days, when the rollups can answer the selection (every service:
    they do not keep services apart) and it holds one."""
    if selection.services is not None:
        return None
    window = selection.window
    first = _next_midnight(window.start)
    end = midnight(window.end.astimezone(UTC).date())
    if end <= first:
        return None
    edges = [Window(begin, until) for begin, until in ((window.start, first), (end, window.end))
             if begin < until]
    environments = sorted(with_environments(connection, selection).environments or ())
    return WholeDays(first.date(), end.date(), edges, environments)


def with_environments(connection: Connection, selection: Selection) -> Selection:
    """``selection`` naming every environment that has deployments when it selects them all
    (``environment=*``): the indexes lead with the environment."""
    if selection.environments is not None:
        return selection
    known = connection.execute(select(daily_deployments.c.environment).distinct()).scalars()
    return Selection(selection.window, selection.services, frozenset(known))


def _next_midnight(moment: datetime) -> datetime:
    """``moment`` when it is a UTC midnight, else the next one."""
    day = midnight(moment.astimezone(UTC).date())
    return day if day == moment else day + timedelta(days=1)


# ---- Deployments: counts per UTC day -----------------------------------------------------------

@dataclass(frozen=True)
class DeploymentDay:
    """Deployments on one UTC day (and, when split, one side of ``to``'s time of day)."""

    day: date
    late: bool
    group: str | None
    deployments: int
    failed: int
    rework: int


def deployment_days(
    connection: Connection,
    selection: Selection,
    *,
    split_at: str | None = None,
    group_by: GroupBy | None = None,
) -> list[DeploymentDay]:
    """Counts of deployments, failed ones and rework ones per UTC day in the selection.

    ``split_at`` (``HH:MM:SS.ffffff``) also splits each day at that time of day (see
    frequency.py); ``group_by`` splits by service or environment (team: by service).

    Across all services, the window's whole days come from ``daily_deployments``: one row
    per day, not per deployment. A day then has a single slot, except where a week or
    30-day block of frequency.py ends inside it: only there does the split change a block.
    """
    split = whole_days(connection, selection) if group_by != "service" else None
    if split is None:
        return _days_of_facts(connection, selection, split_at, group_by)
    days = [row for edge in split.edges
            for row in _days_of_facts(connection, split.selection(edge), split_at, group_by)]
    whole = _rolled_up_days(connection, split, group_by)
    if split_at:
        whole = _split_block_ends(connection, split, whole, time.fromisoformat(split_at),
                                  selection.window, group_by)
    return days + whole


def _rolled_up_days(connection: Connection, split: WholeDays, group_by: GroupBy | None
                    ) -> list[DeploymentDay]:
    rolled = daily_deployments.c
    keys: list[ColumnElement[Any]] = [rolled.day]
    if group_by:
        keys.append(rolled.environment)
    query = (select(*keys, func.sum(rolled.deployments), func.sum(rolled.failed),
                    func.sum(rolled.rework))
             .where(rolled.environment.in_(split.environments), rolled.day >= split.first,
                    rolled.day < split.end)
             .group_by(*keys))
    days = []
    for row in connection.execute(query):
        group = row[1] if group_by else None
        count, failed, rework = (int(value or 0) for value in row[-3:])
        if count or failed or rework:
            days.append(DeploymentDay(row[0], False, group, count, failed, rework))
    return days


def _split_block_ends(connection: Connection, split: WholeDays, days: list[DeploymentDay],
                      at: time, window: Window, group_by: GroupBy | None
                      ) -> list[DeploymentDay]:
    """Split the days where a 7- or 30-day block ends (``to``'s time of day on a day a
    multiple of 7 or 30 days before ``to``'s) into before ``at`` and at or after it."""
    last = window.end.astimezone(UTC).date()
    ends = sorted({day.day for day in days if day.deployments
                   and ((last - day.day).days % WEEK_DAYS == 0
                        or (last - day.day).days % MONTH_DAYS == 0)})
    early_days = set(ends)
    early: dict[tuple[date, str | None], DeploymentDay] = {}
    offset = datetime.combine(date.min, at) - datetime.min
    if ends and offset:
        pieces = [(midnight(day), midnight(day) + offset) for day in ends]
        for row in _days_of_facts(connection, split.selection(Window(
                pieces[0][0], pieces[-1][1])), None, group_by, pieces):
            early[(row.day, row.group)] = row
    result = []
    for day in days:
        if day.day not in early_days:
            result.append(day)
            continue
        before = early.get((day.day, day.group), DeploymentDay(day.day, False, day.group, 0, 0, 0))
        after = DeploymentDay(day.day, True, day.group, day.deployments - before.deployments,
                              day.failed - before.failed, day.rework - before.rework)
        result.extend(slot for slot in (before, after) if slot.deployments)
    return result


def _days_of_facts(connection: Connection, selection: Selection, split_at: str | None,
                   group_by: GroupBy | None,
                   ranges: Sequence[tuple[datetime, datetime]] = ()) -> list[DeploymentDay]:
    """``deployment_days`` counted from the deployments themselves; with ``ranges``, those
    in the ``[begin, end)`` ranges instead of the window (a VALUES list each row of which
    is one index range scan)."""
    column = deployments.c
    keys: list[ColumnElement[Any]] = [utc_day(column.time)]
    if split_at:
        keys.append(flag(utc_time_of_day(column.time) >= split_at))
    if group_by:
        keys.append(_group_column(column, group_by))
    query = select(*keys, func.count(), func.sum(flag(column.failed)),
                   func.sum(flag(column.rework)))
    if ranges:
        piece = values(sql_column("begin", UTCDateTime()), sql_column("end", UTCDateTime()),
                       name="pieces").data(list(ranges)).cte()
        query = query.select_from(piece).join(deployments, and_(
            column.time >= piece.c.begin, column.time < piece.c.end)).where(
            *deployment_filters(selection, window=False))
    else:
        query = query.where(*deployment_filters(selection))
    days = []
    for row in connection.execute(query.group_by(*keys)):
        fields = list(row)
        day = date.fromisoformat(fields.pop(0))
        late = bool(fields.pop(0)) if split_at else False
        group = fields.pop(0) if group_by else None
        count, failed, rework = (int(value or 0) for value in fields)
        days.append(DeploymentDay(day, late, group, count, failed, rework))
    return days


# ---- Failed deployment recovery ----------------------------------------------------------------

@dataclass(frozen=True)
class Recovery:
    time: datetime
    recovered_at: datetime
    service: str
    environment: str

    @property
    def seconds(self) -> float:
        return (self.recovered_at - self.time).total_seconds()


def recoveries(connection: Connection, selection: Selection) -> list[Recovery]:
    """Failed deployments in the selection that have recovered."""
    column = deployments.c
    query = select(column.time, column.recovered_at, column.service, column.environment).where(
        *deployment_filters(selection), column.failed == true(), column.recovered_at.is_not(None)
    )
    return [Recovery(*row) for row in connection.execute(query).all()]


@dataclass(frozen=True)
class Durations:
    """How many durations there are and their median (None for none)."""

    count: int
    median: float | None


def recovery_durations(connection: Connection, selection: Selection) -> Durations:
    """``recoveries``' count and median recovery time, computed in the database."""
    column = deployments.c
    selection = with_environments(connection, selection)  # to range-scan each environment
    return median_in_database(
        connection, deployments, column.recovery_seconds,
        [*deployment_filters(selection), column.failed == true(),
         column.recovery_seconds.is_not(None)])


def median_in_database(connection: Connection, table: Table, seconds: ColumnElement[float],
                       where: list[ColumnElement[bool]]) -> Durations:
    """The count and median of ``seconds`` over the rows of ``table`` that ``where``
    selects, without reading them: a count, then the middle one or two sorted values."""
    count = connection.execute(select(func.count()).select_from(table).where(*where)
                               ).scalar_one()
    ranks = median_ranks(count)
    if not ranks:
        return Durations(0, None)
    middle = connection.execute(select(seconds).where(*where).order_by(seconds)
                                .offset(ranks[0] - 1).limit(len(ranks))).scalars().all()
    return Durations(count, sum(middle) / len(middle))


# ---- Incidents ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncidentSpan:
    detected_at: datetime
    resolved_at: datetime | None
    service: str
    environment: str

    @property
    def seconds(self) -> float | None:
        if self.resolved_at is None:
            return None
        return (self.resolved_at - self.detected_at).total_seconds()


def incident_spans(connection: Connection, selection: Selection) -> list[IncidentSpan]:
    """Incidents detected in the selection, open or resolved."""
    column = incidents.c
    query = select(column.detected_at, column.resolved_at, column.service,
                   column.environment).where(*incident_filters(selection))
    return [IncidentSpan(*row) for row in connection.execute(query).all()]


def restore_durations(connection: Connection, selection: Selection) -> tuple[Durations, int]:
    """The resolved incidents' count and median time to restore, and how many are open."""
    column = incidents.c
    where = incident_filters(selection)
    resolved = median_in_database(connection, incidents, column.restore_seconds,
                                  [*where, column.restore_seconds.is_not(None)])
    total = connection.execute(select(func.count()).select_from(incidents).where(*where))
    return resolved, int(total.scalar_one()) - resolved.count


# ---- Change lead time --------------------------------------------------------------------------

def change_time() -> ColumnElement[datetime]:
    """DESIGN.md §6: earliest commit, else the change's creation, else its merge."""
    column = changes.c
    return func.coalesce(column.earliest_commit_at, column.created_at, column.merged_at,
                         type_=column.created_at.type)


def first_deployment_query(selection: Selection) -> Select[Any]:
    """One row per (change, environment) whose first deployment to that environment is selected.

    A change counts once, at its first deployment to each environment, whichever service made
    it; the projector keeps that row current in ``first_deployments`` (earliest deployment,
    ties to the lowest deployment id). The service, team and environment filters apply to
    that first deployment.

    Columns: change_key, environment, service, deployment_seq, deployed_at, change_time and
    lead_seconds (deployed_at - change_time; NULL when the change's time is unknown).
    """
    first = schema.first_deployments.c
    return select(first.change_key, first.environment, first.service, first.deployment_seq,
                  first.deployed_at, first.change_time, first.lead_seconds).where(
        *first_deployment_filters(selection))


def first_deployment_filters(selection: Selection) -> list[ColumnElement[bool]]:
    first = schema.first_deployments.c
    clauses = [first.deployed_at >= selection.window.start,
               first.deployed_at < selection.window.end]
    if selection.services is not None:
        clauses.append(first.service.in_(sorted(selection.services)))
    if selection.environments is not None:
        clauses.append(first.environment.in_(sorted(selection.environments)))
    return clauses


@dataclass(frozen=True)
class FirstDeployment:
    """A change's first deployment to an environment."""

    change_key: str
    environment: str
    service: str
    deployment_seq: int
    deployed_at: datetime
    change_time: datetime | None
    lead_seconds: float | None


def first_deployments(connection: Connection, selection: Selection,
                      change_keys: Sequence[str] | None = None) -> list[FirstDeployment]:
    """The rows of ``first_deployment_query``, optionally for some changes only."""
    query = first_deployment_query(selection)
    if change_keys is not None:
        query = query.where(schema.first_deployments.c.change_key.in_(list(change_keys)))
    return [FirstDeployment(*row) for row in connection.execute(query)]


def lead_time_facts(connection: Connection, selection: Selection,
                    ) -> list[tuple[datetime, str, str, float]]:
    """(deployed_at, service, environment, lead_seconds) of the pairs with a lead time."""
    values = first_deployment_query(selection).subquery()
    query = select(values.c.deployed_at, values.c.service, values.c.environment,
                   values.c.lead_seconds).where(values.c.lead_seconds.is_not(None))
    return [tuple(row) for row in connection.execute(query).all()]


def changes_first_deployed(connection: Connection, selection: Selection, *, limit: int,
                           offset: int) -> tuple[int, list[str]]:
    """How many changes have a first deployment in the selection, and one page of their keys,
    latest first deployment first (then by key)."""
    values = first_deployment_query(selection).subquery()
    total = connection.execute(
        select(func.count(func.distinct(values.c.change_key)))).scalar_one()
    latest = func.max(values.c.deployed_at)
    page = connection.execute(
        select(values.c.change_key).group_by(values.c.change_key)
        .order_by(latest.desc(), values.c.change_key).limit(limit).offset(offset)).scalars()
    return int(total), list(page)

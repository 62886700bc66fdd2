"""The SQL behind the metrics: the facts each metric needs, filtered and counted in the database.

Every query here is bounded by the selection's window through an indexed time column
(``deployments(environment, time)`` / ``(service, environment, time)``,
``incidents(service, environment, detected_at)``), and returns either aggregates (counts per
UTC day) or just the columns a median needs. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    Select,
    String,
    case,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.stats import P90, median, percentile
from dora_cloudevents.store import schema
from dora_cloudevents.store.schema import changes, deployments, incidents

GroupBy = Literal["service", "environment", "team"]


# ---- Portable UTC calendar expressions -------------------------------------------------------

class utc_day(FunctionElement[str]):
    """The UTC date of a timestamp column as ``YYYY-MM-DD`` text."""

    type = String()
    inherit_cache = True


class utc_time_of_day(FunctionElement[str]):
    """The UTC time of day of a timestamp column as ``HH:MM:SS.ffffff`` text."""

    type = String()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text (schema.UTCDateTime).
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(timezone('UTC', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


@compiles(utc_time_of_day)
def _utc_time_sqlite(element: utc_time_of_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 12, 15)"


@compiles(utc_time_of_day, "postgresql")
def _utc_time_postgresql(element: utc_time_of_day, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(timezone('UTC', {column}), 'HH24:MI:SS.US')"


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 where ``condition`` holds, else 0 (sums the same on both back-ends)."""
    return case((condition, 1), else_=0)


# ---- Filters -----------------------------------------------------------------------------------

def deployment_filters(selection: Selection) -> list[ColumnElement[bool]]:
    column = deployments.c
    clauses = [column.time >= selection.window.start, column.time < selection.window.end]
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
    """
    column = deployments.c
    keys: list[ColumnElement[Any]] = [utc_day(column.time)]
    if split_at:
        keys.append(_flag(utc_time_of_day(column.time) >= split_at))
    if group_by:
        keys.append(_group_column(column, group_by))
    query = (
        select(*keys, func.count(), func.sum(_flag(column.failed)),
               func.sum(_flag(column.rework)))
        .where(*deployment_filters(selection))
        .group_by(*keys)
    )
    days = []
    for row in connection.execute(query):
        values = list(row)
        day = date.fromisoformat(values.pop(0))
        late = bool(values.pop(0)) if split_at else False
        group = values.pop(0) if group_by else None
        count, failed, rework = (int(value or 0) for value in values)
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
        *deployment_filters(selection), column.failed.is_(True), column.recovered_at.is_not(None)
    )
    return [Recovery(*row) for row in connection.execute(query)]


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
    return [IncidentSpan(*row) for row in connection.execute(query)]


# ---- Change lead time --------------------------------------------------------------------------

class seconds_between(FunctionElement[float]):
    """``later - earlier`` in seconds (float, exact to the microsecond on both back-ends)."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    # strftime('%s') rounds fractional seconds, so whole seconds come from the text without
    # its fraction ('YYYY-MM-DD HH:MM:SS') and the fraction ('.ffffff') is added apart.
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return (f"((strftime('%s', substr({later}, 1, 19)) - strftime('%s', substr({earlier}, 1, 19)))"
            f" + (CAST(substr({later}, 20) AS REAL) - CAST(substr({earlier}, 20) AS REAL)))")


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"


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
    query = select(first.change_key, first.environment, first.service, first.deployment_seq,
                   first.deployed_at, first.change_time, first.lead_seconds).where(
        first.deployed_at >= selection.window.start, first.deployed_at < selection.window.end)
    if selection.services is not None:
        query = query.where(first.service.in_(sorted(selection.services)))
    if selection.environments is not None:
        query = query.where(first.environment.in_(sorted(selection.environments)))
    return query


@dataclass(frozen=True)
class LeadTimes:
    """The lead time summary: how many values, their median and nearest-rank p90."""

    count: int
    median: float | None
    p90: float | None


def lead_times(connection: Connection, selection: Selection) -> LeadTimes:
    """Median and p90 of the selection's lead times, without fetching them on PostgreSQL."""
    values = first_deployment_query(selection).subquery()
    known = values.c.lead_seconds.is_not(None)
    if connection.dialect.name == "postgresql":
        # percentile_cont(0.5) is the usual median; percentile_disc(0.9) is nearest rank.
        count, middle, p90 = connection.execute(
            select(func.count(), func.percentile_cont(0.5).within_group(values.c.lead_seconds),
                   func.percentile_disc(0.9).within_group(values.c.lead_seconds))
            .where(known)).one()
        return LeadTimes(int(count), _float(middle), _float(p90))
    seconds = list(connection.execute(select(values.c.lead_seconds).where(known)).scalars())
    return LeadTimes(len(seconds), median(seconds), percentile(seconds, P90))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


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
    return [tuple(row) for row in connection.execute(query)]


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

"""Time series of each metric per bucket (``GET /api/v1/metrics/{name}``).

Each point is the metric computed over the facts of one bucket (its ``time`` is the bucket's
start, UTC) and of the window: the first and last buckets may be cut by the window's bounds.
Facts fall in a bucket by the time the summary uses for them: a deployment's time, a change's
first deployment to the environment, an incident's detection.

Every bucket that overlaps the window gets a point, with counts 0 and a null value when it has
no data; with ``group_by`` each group that has data in the window gets a point for every bucket,
sorted by time then group. A grouped point names its group twice: under ``group`` and under
the group_by key itself (``service``, ``environment`` or ``team``; services without a team make
the team null).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import Connection

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics import lead_times, queries
from dora_cloudevents.metrics.buckets import Bucket, bucket_day, bucket_days, midnight
from dora_cloudevents.metrics.catalog import ServiceCatalog
from dora_cloudevents.metrics.dora import rate
from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.models import (
    AnySeries,
    ChangeFailureRatePoint,
    ChangeFailureRateSeries,
    DeploymentFrequencyPoint,
    DeploymentFrequencySeries,
    LeadTimePoint,
    LeadTimeSeries,
    MetricName,
    RecoveryTimePoint,
    RecoveryTimeSeries,
    ReworkRatePoint,
    ReworkRateSeries,
    TimeToRestorePoint,
    TimeToRestoreSeries,
)
from dora_cloudevents.metrics.queries import GroupBy
from dora_cloudevents.metrics.stats import median

METRICS: tuple[MetricName, ...] = (
    "deployment-frequency", "lead-time", "change-failure-rate",
    "failed-deployment-recovery-time", "time-to-restore", "rework-rate",
)

Key = tuple[date, str | None]
T = TypeVar("T")
P = TypeVar("P")


class Grid:
    """The buckets of the window, the groups of ``group_by``, and the points over both."""

    def __init__(self, settings: Settings, selection: Selection, bucket: Bucket,
                 group_by: GroupBy | None) -> None:
        self.selection = selection
        self.bucket = bucket
        self.group_by = group_by
        self.catalog = ServiceCatalog.from_settings(settings)

    @property
    def query_group(self) -> GroupBy | None:
        """What the database groups by: teams are folded from services here."""
        return "service" if self.group_by == "team" else self.group_by

    def key(self, moment: date, service: str | None, environment: str | None) -> Key:
        """The point a fact of ``service`` in ``environment`` at ``moment`` counts in."""
        day = bucket_day(moment, self.bucket)
        if self.group_by is None:
            return day, None
        if self.group_by == "environment":
            return day, environment
        if self.group_by == "team":
            return day, self.catalog.team_of(service) if service is not None else None
        return day, service

    def key_of_row(self, row: queries.DeploymentDay) -> Key:
        """The point of a row the database grouped by ``query_group``."""
        if self.group_by == "environment":
            return self.key(row.day, None, row.group)
        return self.key(row.day, row.group, None)

    def fields(self, key: Key) -> dict[str, Any]:
        """A point's time, and its group keys when the series is grouped."""
        fields: dict[str, Any] = {"time": midnight(key[0])}
        if self.group_by is not None:
            fields["group"] = fields[self.group_by] = key[1]
        return fields

    def points(self, data: dict[Key, T], make: Callable[[Key, T | None], P]) -> list[P]:
        """``make`` for every bucket (x every group with data), by time then group."""
        groups: list[str | None] = [None]
        if self.group_by is not None:
            groups = sorted({group for _, group in data},
                            key=lambda name: (name is not None, name or ""))
        return [make((day, group), data.get((day, group)))
                for day in bucket_days(self.selection.window, self.bucket) for group in groups]


def _deployment_series(connection: Connection, grid: Grid, metric: MetricName) -> AnySeries:
    data: dict[Key, list[queries.DeploymentDay]] = defaultdict(list)
    for row in queries.deployment_days(connection, grid.selection, group_by=grid.query_group):
        data[grid.key_of_row(row)].append(row)

    def sums(days: list[queries.DeploymentDay] | None) -> tuple[int, int, int, int]:
        days = days or []
        return (sum(d.deployments for d in days), sum(d.failed for d in days),
                sum(d.rework for d in days), len({d.day for d in days if d.deployments}))

    def frequency(key: Key, days: list[queries.DeploymentDay] | None,
                  ) -> DeploymentFrequencyPoint:
        count, _, _, active = sums(days)
        return DeploymentFrequencyPoint(**grid.fields(key), value=count, deployment_days=active)

    def failure(key: Key, days: list[queries.DeploymentDay] | None) -> ChangeFailureRatePoint:
        count, failed, _, _ = sums(days)
        return ChangeFailureRatePoint(**grid.fields(key), value=rate(failed, count),
                                      failed_deployments=failed, deployments=count)

    def rework(key: Key, days: list[queries.DeploymentDay] | None) -> ReworkRatePoint:
        count, _, reworked, _ = sums(days)
        return ReworkRatePoint(**grid.fields(key), value=rate(reworked, count),
                               rework_deployments=reworked, deployments=count)

    if metric == "deployment-frequency":
        return DeploymentFrequencySeries(metric=metric, bucket=grid.bucket,
                                         series=grid.points(data, frequency))
    if metric == "change-failure-rate":
        return ChangeFailureRateSeries(metric=metric, bucket=grid.bucket,
                                       series=grid.points(data, failure))
    return ReworkRateSeries(metric="rework-rate", bucket=grid.bucket,
                            series=grid.points(data, rework))


def _lead_time_series(connection: Connection, grid: Grid) -> LeadTimeSeries:
    """One value per (change, environment) first deployed in the bucket."""
    data = lead_times.lead_time_summaries(
        connection, grid.selection, lambda day, service, environment: grid.key(
            day, service, environment), by_service=grid.group_by in ("service", "team"))

    def point(key: Key, summary: lead_times.LeadTimes | None) -> LeadTimePoint:
        summary = summary or lead_times.LeadTimes(0, None, None)
        return LeadTimePoint(**grid.fields(key), value=summary.median,
                             p90_seconds=summary.p90, changes=summary.count)
    return LeadTimeSeries(metric="lead-time", bucket=grid.bucket,
                          series=grid.points(data, point))


def _recovery_series(connection: Connection, grid: Grid) -> RecoveryTimeSeries:
    data: dict[Key, list[float]] = defaultdict(list)
    for recovery in queries.recoveries(connection, grid.selection):
        data[grid.key(recovery.time.date(), recovery.service, recovery.environment)].append(
            recovery.seconds)

    def point(key: Key, values: list[float] | None) -> RecoveryTimePoint:
        values = values or []
        return RecoveryTimePoint(**grid.fields(key), value=median(values),
                                 failed_deployments=len(values))
    return RecoveryTimeSeries(metric="failed-deployment-recovery-time", bucket=grid.bucket,
                              series=grid.points(data, point))


def _restore_series(connection: Connection, grid: Grid) -> TimeToRestoreSeries:
    data: dict[Key, list[queries.IncidentSpan]] = defaultdict(list)
    for span in queries.incident_spans(connection, grid.selection):
        data[grid.key(span.detected_at.date(), span.service, span.environment)].append(span)

    def point(key: Key, spans: list[queries.IncidentSpan] | None) -> TimeToRestorePoint:
        spans = spans or []
        restored = [span.seconds for span in spans if span.seconds is not None]
        return TimeToRestorePoint(**grid.fields(key), value=median(restored),
                                  incidents=len(restored),
                                  open_incidents=len(spans) - len(restored))
    return TimeToRestoreSeries(metric="time-to-restore", bucket=grid.bucket,
                               series=grid.points(data, point))


def metric_series(connection: Connection, settings: Settings, selection: Selection,
                  metric: MetricName, bucket: Bucket, group_by: GroupBy | None = None,
                  ) -> AnySeries:
    grid = Grid(settings, selection, bucket, group_by)
    if metric in ("deployment-frequency", "change-failure-rate", "rework-rate"):
        return _deployment_series(connection, grid, metric)
    if metric == "lead-time":
        return _lead_time_series(connection, grid)
    if metric == "failed-deployment-recovery-time":
        return _recovery_series(connection, grid)
    if metric == "time-to-restore":
        return _restore_series(connection, grid)
    raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")

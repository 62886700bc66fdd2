"""The JSON shapes of the metrics API (DESIGN.md §8, contract) as pydantic models.

``/api/v1/dora`` and ``dora-ce report --format json`` both serialise ``DoraReport`` with
``to_json`` so the two are byte for byte the same. Times are RFC 3339 strings in UTC with a
``Z``; durations are seconds; a metric with no data is null (counts stay 0).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from dora_cloudevents.events import format_rfc3339
from dora_cloudevents.metrics.buckets import Bucket
from dora_cloudevents.metrics.levels import Level

Timestamp = Annotated[
    datetime,
    PlainSerializer(format_rfc3339, return_type=str, when_used="json"),
    Field(json_schema_extra={"format": "date-time"}),
]
Category = Literal["on-demand", "daily", "weekly", "monthly", "yearly", "none"]
Seconds = Annotated[float | None, Field(description="Seconds; null when there is no data.")]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, ser_json_inf_nan="null")

    def to_json(self, *, exclude_unset: bool = False) -> bytes:
        return self.model_dump_json(by_alias=True, exclude_unset=exclude_unset).encode()


class WindowView(_Model):
    from_: Timestamp = Field(alias="from", description="Start of the window (inclusive).")
    to: Timestamp = Field(description="End of the window (exclusive).")


class DeploymentFrequency(_Model):
    deployments: int = Field(description="Deployments in the window.")
    deployment_days: int = Field(description="Distinct UTC days with one or more deployments.")
    per_week: float = Field(description="deployments x 7 / the window's length in days.")
    category: Category = Field(description="How often, not how much (DESIGN.md §7).")
    level: Level | None


class LeadTimeForChanges(_Model):
    median_seconds: Seconds
    p90_seconds: Seconds = Field(description="Nearest-rank 90th percentile, in seconds.")
    changes: int = Field(description="(change, environment) pairs first deployed in the window.")
    level: Level | None


class ChangeFailureRate(_Model):
    failed_deployments: int
    deployments: int
    rate: float | None = Field(description="failed_deployments / deployments; null without "
                               "deployments.")
    level: Level | None


class FailedDeploymentRecoveryTime(_Model):
    median_seconds: Seconds = Field(description="Median of recovery - deployment over failed "
                                    "deployments that recovered.")
    failed_deployments: int = Field(description="Failed deployments the median is over (those "
                                    "that recovered).")
    level: Level | None


class TimeToRestore(_Model):
    median_seconds: Seconds = Field(description="Median of resolved - detected over incidents "
                                    "detected in the window and resolved.")
    incidents: int = Field(description="Resolved incidents detected in the window (the median's).")
    open_incidents: int = Field(description="Incidents detected in the window and not resolved.")


class DeploymentReworkRate(_Model):
    rework_deployments: int
    deployments: int
    rate: float | None


class DoraReport(_Model):
    """``GET /api/v1/dora``."""

    window: WindowView
    deployment_frequency: DeploymentFrequency
    lead_time_for_changes: LeadTimeForChanges
    change_failure_rate: ChangeFailureRate
    failed_deployment_recovery_time: FailedDeploymentRecoveryTime
    time_to_restore: TimeToRestore
    deployment_rework_rate: DeploymentReworkRate
    level: Level | None = Field(description="The lowest of the four metric levels that have "
                                "data; null when none has.")


# ---- Series (GET /api/v1/metrics/{name}) -------------------------------------------------------

class _Point(_Model):
    """A point carries ``group`` and the group_by key (``service``, ``environment`` or
    ``team``, same value) only when the series is grouped."""

    time: Timestamp = Field(description="Start of the bucket (UTC).")
    group: str | None = Field(default=None, description="Only with group_by: the service, "
                              "environment or team of this point.")
    service: str | None = Field(default=None, description="Only with group_by=service.")
    environment: str | None = Field(default=None, description="Only with "
                                    "group_by=environment.")
    team: str | None = Field(default=None, description="Only with group_by=team (null: "
                             "services without a team).")


class DeploymentFrequencyPoint(_Point):
    value: int = Field(description="Deployments in the bucket.")
    deployment_days: int


class LeadTimePoint(_Point):
    value: Seconds = Field(description="Median lead time of the changes first deployed in the "
                           "bucket.")
    p90_seconds: Seconds
    changes: int


class ChangeFailureRatePoint(_Point):
    value: float | None = Field(description="Change failure rate of the bucket's deployments.")
    failed_deployments: int
    deployments: int


class RecoveryTimePoint(_Point):
    value: Seconds = Field(description="Median recovery time of the bucket's failed "
                           "deployments.")
    failed_deployments: int


class TimeToRestorePoint(_Point):
    value: Seconds = Field(description="Median time to restore of incidents detected in the "
                           "bucket.")
    incidents: int
    open_incidents: int


class ReworkRatePoint(_Point):
    value: float | None = Field(description="Rework rate of the bucket's deployments.")
    rework_deployments: int
    deployments: int


class DeploymentFrequencySeries(_Model):
    metric: Literal["deployment-frequency"]
    bucket: Bucket
    series: list[DeploymentFrequencyPoint]


class LeadTimeSeries(_Model):
    metric: Literal["lead-time"]
    bucket: Bucket
    series: list[LeadTimePoint]


class ChangeFailureRateSeries(_Model):
    metric: Literal["change-failure-rate"]
    bucket: Bucket
    series: list[ChangeFailureRatePoint]


class RecoveryTimeSeries(_Model):
    metric: Literal["failed-deployment-recovery-time"]
    bucket: Bucket
    series: list[RecoveryTimePoint]


class TimeToRestoreSeries(_Model):
    metric: Literal["time-to-restore"]
    bucket: Bucket
    series: list[TimeToRestorePoint]


class ReworkRateSeries(_Model):
    metric: Literal["rework-rate"]
    bucket: Bucket
    series: list[ReworkRatePoint]


Series = Annotated[
    DeploymentFrequencySeries | LeadTimeSeries | ChangeFailureRateSeries | RecoveryTimeSeries
    | TimeToRestoreSeries | ReworkRateSeries,
    Field(discriminator="metric"),
]
AnySeries = (DeploymentFrequencySeries | LeadTimeSeries | ChangeFailureRateSeries
             | RecoveryTimeSeries | TimeToRestoreSeries | ReworkRateSeries)
MetricName = Literal["deployment-frequency", "lead-time", "change-failure-rate",
                     "failed-deployment-recovery-time", "time-to-restore", "rework-rate"]


# ---- Drill-downs -------------------------------------------------------------------------------

class Page(_Model):
    total: int = Field(description="Items matching the filters, over every page.")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class DeploymentItem(_Model):
    id: int = Field(description="The deployment's CDEvent sequence number.")
    service: str
    environment: str
    time: Timestamp
    kind: str = Field(description="deployed, upgraded or rolledback.")
    artifact: str | None
    revision: str | None
    failed: bool
    failed_by: str | None = Field(description="What made it failed (e.g. rollback, incident).")
    recovered_at: Timestamp | None
    recovery_seconds: Seconds
    rework: bool
    changes: int = Field(description="Changes this deployment shipped.")


class DeploymentPage(Page):
    items: list[DeploymentItem]


class FirstDeploymentView(_Model):
    environment: str
    service: str
    deployment: int = Field(description="Id of the deployment (its CDEvent sequence number).")
    deployed_at: Timestamp
    lead_time_seconds: Seconds


class ChangeItem(_Model):
    key: str
    repository: str | None
    kind: str
    title: str | None
    change_time: Timestamp | None = Field(description="Earliest commit, else creation, else "
                                          "merge.")
    merged_at: Timestamp | None
    first_deployments: list[FirstDeploymentView] = Field(
        description="First deployment to each selected environment, inside the window.")


class ChangePage(Page):
    items: list[ChangeItem]


class IncidentItem(_Model):
    key: str
    service: str
    environment: str
    description: str | None
    detected_at: Timestamp
    resolved_at: Timestamp | None
    restore_seconds: Seconds
    deployment: int | None = Field(description="Id of the deployment the incident is "
                                   "attributed to, if any.")


class IncidentPage(Page):
    items: list[IncidentItem]


class DeployFrequencyRow(BaseModel):
    """One row of the original tutorial's ``/deploy-frequency/{bucket}``."""

    DeployName: str
    Deployments: int
    Time: Timestamp


def series_json(series: AnySeries) -> bytes:
    """A series as JSON: a point's group keys appear only when they were given."""
    return series.to_json(exclude_unset=True)

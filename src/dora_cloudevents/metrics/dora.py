"""The DORA summary (``GET /api/v1/dora``, ``dora-ce report``): every metric and its level.

Definitions: DESIGN.md §7. Each deployment counts once; its derived columns (``failed``,
``recovered_at``, ``rework``) are the projector's. The database counts deployments per UTC
day (frequency, change failure rate, rework rate; queries.py, from the per-day rollups over
every service) and picks the medians: lead times in lead_times.py, recovery and restore
times in queries.py. Percentiles: see stats.py; levels and the overall level: levels.py; the
frequency category: frequency.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from dora_cloudevents.metrics import lead_times, queries
from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.frequency import DaySlot, frequency_category, time_of_day_key
from dora_cloudevents.metrics.levels import (
    DEFAULT_TABLE,
    PerformanceTable,
    change_failure_rate_level,
    frequency_level,
    lead_time_level,
    overall_level,
    recovery_time_level,
)
from dora_cloudevents.metrics.models import (
    ChangeFailureRate,
    DeploymentFrequency,
    DeploymentReworkRate,
    DoraReport,
    FailedDeploymentRecoveryTime,
    LeadTimeForChanges,
    TimeToRestore,
    WindowView,
)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class DeploymentTotals:
    deployments: int
    failed: int
    rework: int


def totals(days: Sequence[queries.DeploymentDay]) -> DeploymentTotals:
    return DeploymentTotals(sum(day.deployments for day in days),
                            sum(day.failed for day in days), sum(day.rework for day in days))


def deployment_frequency(selection: Selection, days: Sequence[queries.DeploymentDay],
                         table: PerformanceTable = DEFAULT_TABLE) -> DeploymentFrequency:
    count = sum(day.deployments for day in days)
    category = frequency_category(
        (DaySlot(day.day, day.late, day.deployments) for day in days), selection.window)
    return DeploymentFrequency(
        deployments=count,
        deployment_days=len({day.day for day in days if day.deployments}),
        per_week=count * 7 / selection.window.days,
        category=category,  # type: ignore[arg-type]
        level=frequency_level(category, table),
    )


def lead_time(values: lead_times.LeadTimes,
              table: PerformanceTable = DEFAULT_TABLE) -> LeadTimeForChanges:
    return LeadTimeForChanges(median_seconds=values.median, p90_seconds=values.p90,
                              changes=values.count, level=lead_time_level(values.median, table))


def change_failure_rate(counts: DeploymentTotals,
                        table: PerformanceTable = DEFAULT_TABLE) -> ChangeFailureRate:
    return ChangeFailureRate(
        failed_deployments=counts.failed, deployments=counts.deployments,
        rate=rate(counts.failed, counts.deployments),
        level=change_failure_rate_level(counts.failed, counts.deployments, table),
    )


def recovery_time(recovered: queries.Durations,
                  table: PerformanceTable = DEFAULT_TABLE) -> FailedDeploymentRecoveryTime:
    """``failed_deployments`` counts the failed deployments the median is over (those that
    recovered); change_failure_rate.failed_deployments counts every failed one."""
    return FailedDeploymentRecoveryTime(median_seconds=recovered.median,
                                        failed_deployments=recovered.count,
                                        level=recovery_time_level(recovered.median, table))


def time_to_restore(restored: queries.Durations, still_open: int) -> TimeToRestore:
    """``incidents`` counts the resolved incidents the median is over; the open ones are
    counted apart in ``open_incidents`` (DESIGN.md §7)."""
    return TimeToRestore(median_seconds=restored.median, incidents=restored.count,
                         open_incidents=still_open)


def rework_rate(counts: DeploymentTotals) -> DeploymentReworkRate:
    return DeploymentReworkRate(rework_deployments=counts.rework, deployments=counts.deployments,
                                rate=rate(counts.rework, counts.deployments))


def dora_report(connection: Connection, selection: Selection,
                table: PerformanceTable = DEFAULT_TABLE) -> DoraReport:
    """Every DORA metric over ``selection``: the one function behind the API and the CLI."""
    days = queries.deployment_days(connection, selection,
                                   split_at=time_of_day_key(selection.window))
    counts = totals(days)
    frequency = deployment_frequency(selection, days, table)
    lead = lead_time(lead_times.lead_times(connection, selection), table)
    failure = change_failure_rate(counts, table)
    recovery = recovery_time(queries.recovery_durations(connection, selection), table)
    return DoraReport(
        window=WindowView.model_validate({"from": selection.window.start,
                                          "to": selection.window.end}),
        deployment_frequency=frequency,
        lead_time_for_changes=lead,
        change_failure_rate=failure,
        failed_deployment_recovery_time=recovery,
        time_to_restore=time_to_restore(*queries.restore_durations(connection, selection)),
        deployment_rework_rate=rework_rate(counts),
        level=overall_level([frequency.level, lead.level, failure.level, recovery.level]),
    )


def compute_dora(engine: Engine, selection: Selection,
                 table: PerformanceTable = DEFAULT_TABLE) -> DoraReport:
    """``dora_report`` in one read transaction (one snapshot on SQLite)."""
    with engine.connect() as connection:
        return dora_report(connection, selection, table)

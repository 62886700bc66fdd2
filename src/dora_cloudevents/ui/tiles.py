"""What the dashboard shows of a DoraReport: one tile per metric, values formatted for people."""

from __future__ import annotations

from dataclasses import dataclass, field

from dora_cloudevents.metrics.levels import DEFAULT_TABLE, LEVELS, PerformanceTable
from dora_cloudevents.metrics.models import DoraReport

NO_DATA = "—"


def duration(seconds: float | None) -> str:
    """``42 min``, ``5.5 h``, ``3.2 days``: the unit that keeps the number readable."""
    if seconds is None:
        return NO_DATA
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def percent(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate * 100:.1f} %"


def per_week(value: float) -> str:
    return f"{value:.1f}"


@dataclass(frozen=True)
class Tile:
    """One metric: its value as shown and as the API gives it, level, context and drill-down."""

    key: str
    title: str
    value: str
    raw: float | None
    unit: str
    level: str | None
    details: list[str] = field(default_factory=list)
    drill: str = "deployments"
    drill_query: str = ""
    drill_label: str = ""
    series: str = ""
    has_level: bool = True

    @property
    def level_text(self) -> str:
        if not self.has_level:
            return "no benchmark"
        return self.level or "no data"


def tiles(report: DoraReport) -> list[Tile]:
    frequency, lead = report.deployment_frequency, report.lead_time_for_changes
    failure, recovery = report.change_failure_rate, report.failed_deployment_recovery_time
    restore, rework = report.time_to_restore, report.deployment_rework_rate
    return [
        Tile("deployment_frequency", "Deployment frequency",
             per_week(frequency.per_week) if frequency.deployments else NO_DATA,
             frequency.per_week, "deployments / week", frequency.level,
             [f"{frequency.deployments} deployments on {frequency.deployment_days} days",
              f"category: {frequency.category}"],
             "deployments", "", "the deployments", "deployment-frequency"),
        Tile("lead_time_for_changes", "Change lead time", duration(lead.median_seconds),
             lead.median_seconds, "median, commit to production", lead.level,
             [f"p90 {duration(lead.p90_seconds)}", f"{lead.changes} changes deployed"],
             "changes", "", "the changes", "lead-time"),
        Tile("change_failure_rate", "Change failure rate", percent(failure.rate), failure.rate,
             "of deployments failed", failure.level,
             [f"{failure.failed_deployments} of {failure.deployments} deployments"],
             "deployments", "failed=true", "the failed deployments", "change-failure-rate"),
        Tile("failed_deployment_recovery_time", "Failed deployment recovery time",
             duration(recovery.median_seconds), recovery.median_seconds, "median",
             recovery.level,
             [f"{recovery.failed_deployments} failed deployments recovered",
              f"time to restore (incidents): {duration(restore.median_seconds)} over "
              f"{restore.incidents} resolved, {restore.open_incidents} open"],
             "incidents", "", "the incidents", "failed-deployment-recovery-time"),
        Tile("deployment_rework_rate", "Deployment rework rate", percent(rework.rate),
             rework.rate, "of deployments were rework", None,
             [f"{rework.rework_deployments} of {rework.deployments} deployments"],
             "deployments", "rework=true", "the rework deployments", "rework-rate",
             has_level=False),
    ]


@dataclass(frozen=True)
class BenchmarkRow:
    level: str
    frequency: str
    lead_time: str
    change_failure_rate: str
    recovery_time: str


def _limit(seconds: float) -> str:
    """A threshold in the unit people say it in: 1 hour, 1 day, 1 week, 30 days."""
    days = seconds / 86400
    if seconds < 86400:
        hours = seconds / 3600
        return f"{hours:g} hour" + ("s" if hours != 1 else "")
    if days % 7 == 0 and days < 28:
        weeks = days / 7
        return f"{weeks:g} week" + ("s" if weeks != 1 else "")
    return f"{days:g} day" + ("s" if days != 1 else "")


def benchmark_rows(table: PerformanceTable = DEFAULT_TABLE) -> list[BenchmarkRow]:
    """The table the levels are judged against, written out from the thresholds themselves."""
    rows = []
    lead = dict((level, limit) for limit, level in table.lead_time_below)
    recovery = dict((level, limit) for limit, level in table.recovery_time_below)
    failure = dict((level, limit) for limit, level in table.change_failure_rate_at_most)
    worst_lead = max(limit for limit, _ in table.lead_time_below)
    worst_recovery = max(limit for limit, _ in table.recovery_time_below)
    worst_failure = max(limit for limit, _ in table.change_failure_rate_at_most)
    for level in LEVELS:
        categories = [name for name, owner in table.frequency.items() if owner == level]
        rows.append(BenchmarkRow(
            level,
            ", ".join(categories) or NO_DATA,
            f"< {_limit(lead[level].total_seconds())}" if level in lead
            else f"≥ {_limit(worst_lead.total_seconds())}",
            f"≤ {float(failure[level]) * 100:g} %" if level in failure
            else f"> {float(worst_failure) * 100:g} %",
            f"< {_limit(recovery[level].total_seconds())}" if level in recovery
            else f"≥ {_limit(worst_recovery.total_seconds())}",
        ))
    return rows

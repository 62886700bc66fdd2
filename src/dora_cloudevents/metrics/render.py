"""``dora-ce report --format table``: a DoraReport as a rich table for people."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from dora_cloudevents.events import format_rfc3339
from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.models import DoraReport

LEVEL_STYLES = {"elite": "bold green", "high": "green", "medium": "yellow", "low": "red"}
NO_DATA = "no data"


def duration(seconds: float | None) -> str:
    """``5400`` -> ``1 h 30 min``; the two largest units, rounded down; None -> no data."""
    if seconds is None:
        return NO_DATA
    remaining = int(abs(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if remaining >= size or (unit == "s" and not parts):
            parts.append(f"{remaining // size} {unit}")
            remaining %= size
    sign = "-" if seconds < 0 else ""
    return sign + " ".join(parts[:2])


def percent(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate * 100:.1f} %"


def level(value: str | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text(value, style=LEVEL_STYLES.get(value, ""))


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe(selection: Selection) -> str:
    services = ", ".join(sorted(selection.services)) if selection.services is not None \
        else "all services"
    environments = ", ".join(sorted(selection.environments)) \
        if selection.environments is not None else "all environments"
    return f"{services}; {environments}"


def report_table(report: DoraReport, selection: Selection) -> Table:
    window = report.window
    table = Table(
        title=f"DORA metrics {format_rfc3339(window.from_)} to {format_rfc3339(window.to)}",
        caption=f"{describe(selection)}. Overall level: {report.level or '-'}",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("based on")
    table.add_column("level")
    frequency = report.deployment_frequency
    table.add_row("Deployment frequency",
                  f"{frequency.per_week:.2f} / week ({frequency.category})",
                  f"{_plural(frequency.deployments, 'deployment')} on "
                  f"{_plural(frequency.deployment_days, 'day')}", level(frequency.level))
    lead = report.lead_time_for_changes
    table.add_row("Lead time for changes (median)", duration(lead.median_seconds),
                  f"{_plural(lead.changes, 'change')}; p90 {duration(lead.p90_seconds)}",
                  level(lead.level))
    failure = report.change_failure_rate
    table.add_row("Change failure rate", percent(failure.rate),
                  f"{failure.failed_deployments} of "
                  f"{_plural(failure.deployments, 'deployment')} failed", level(failure.level))
    recovery = report.failed_deployment_recovery_time
    table.add_row("Failed deployment recovery time (median)", duration(recovery.median_seconds),
                  f"{_plural(recovery.failed_deployments, 'recovered failed deployment')}",
                  level(recovery.level))
    restore = report.time_to_restore
    table.add_row("Time to restore service (median)", duration(restore.median_seconds),
                  f"{_plural(restore.incidents, 'resolved incident')}, "
                  f"{restore.open_incidents} open", level(None))
    rework = report.deployment_rework_rate
    table.add_row("Deployment rework rate", percent(rework.rate),
                  f"{rework.rework_deployments} of "
                  f"{_plural(rework.deployments, 'deployment')}", level(None))
    return table

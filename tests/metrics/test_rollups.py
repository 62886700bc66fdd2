"""The per-day rollups equal the facts they summarise, and the metrics read through them
equal the metrics counted from the facts alone, for any window.

The history is tests/metrics/test_incremental.py's (three services, 40 days, many incidents
and rollbacks), projected in small batches with events held back and sent late, so the
rollups go through every kind of write: new deployments, re-linked failures and rework,
first deployments that move to an earlier deployment or get a new lead time.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, inspect, select

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics import lead_times, queries
from dora_cloudevents.metrics.buckets import Bucket
from dora_cloudevents.metrics.dora import dora_report
from dora_cloudevents.metrics.filters import Selection, resolve_selection
from dora_cloudevents.metrics.frequency import MONTH_DAYS, WEEK_DAYS, block_of, time_of_day_key
from dora_cloudevents.metrics.models import MetricName
from dora_cloudevents.metrics.projector import Projector, reset_projection
from dora_cloudevents.metrics.queries import GroupBy
from dora_cloudevents.metrics.rollups import rebuild
from dora_cloudevents.metrics.series import metric_series
from dora_cloudevents.metrics.stats import P90, median, percentile
from dora_cloudevents.store.migrate import current_revision, downgrade, upgrade
from dora_cloudevents.store.schema import (
    daily_deployments,
    daily_lead_times,
    deployments,
    first_deployments,
    incidents,
)
from tests.metrics.test_incremental import generated, store

START = datetime(2024, 1, 1, tzinfo=UTC)
WINDOWS = [
    ("2024-01-01T00:00:00Z", "2024-02-10T00:00:00Z"),  # midnight to midnight
    ("2024-01-03T07:30:00Z", "2024-02-05T13:45:10.500000Z"),  # partial days at both ends
    ("2023-12-30T18:00:00Z", "2024-01-29T00:00:00Z"),  # 'to' at midnight: every slot late
    ("2024-01-10T00:00:00Z", "2024-01-11T00:00:00Z"),  # one whole day
    ("2024-01-12T06:00:00Z", "2024-01-13T05:00:00Z"),  # no whole day
    ("2024-01-05T23:59:59.999999Z", "2024-01-27T00:00:00.000001Z"),
]
SERIES: list[tuple[MetricName, Bucket, GroupBy | None]] = [
    ("deployment-frequency", "week", None), ("deployment-frequency", "day", "environment"),
    ("change-failure-rate", "month", None), ("lead-time", "week", None),
    ("lead-time", "day", "environment"), ("lead-time", "month", "team"),
]
FILTERS: list[dict[str, str]] = [{}, {"environment": "staging"}, {"environment": "*"},
                                 {"environment": "production,staging"}]


@pytest.fixture
def projected(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    events = generated(monkeypatch)
    shuffle = random.Random(5)
    late = set(shuffle.sample(range(len(events)), len(events) // 10))
    store(engine, [event for index, event in enumerate(events) if index not in late])
    Projector(engine, Settings(), batch_size=40).project_all()
    rest = [events[index] for index in sorted(late)]
    shuffle.shuffle(rest)
    store(engine, rest)
    Projector(engine, Settings(), batch_size=17).project_all()
    return engine


def rollup_rows(connection: Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every deployment day that counts something, every lead-time rollup row (a row that
    counts nothing should not exist), every first deployment's lead bucket, and the stored
    recovery and restore times."""
    days = daily_deployments.c
    leads = daily_lead_times.c
    first = first_deployments.c
    return {
        "days": sorted(connection.execute(
            select(days.environment, days.day, days.deployments, days.failed, days.rework)
            .where((days.deployments != 0) | (days.failed != 0) | (days.rework != 0)))),
        "leads": sorted(connection.execute(
            select(leads.environment, leads.day, leads.lead_bucket, leads.changes))),
        "buckets": sorted(connection.execute(
            select(first.change_key, first.environment, first.lead_bucket))),
        "recoveries": sorted(connection.execute(
            select(deployments.c.cdevent_seq, deployments.c.recovery_seconds))),
        "restores": sorted(connection.execute(
            select(incidents.c.key, incidents.c.restore_seconds))),
    }


def test_the_projector_keeps_the_rollups_equal_to_the_facts(projected: Engine) -> None:
    with projected.connect() as connection:
        kept = rollup_rows(connection)
        rebuild(connection)
        recomputed = rollup_rows(connection)
        connection.rollback()
    assert sum(row[3] for row in recomputed["days"]) > 0  # some deployments failed
    assert sum(row[4] for row in recomputed["days"]) > 0  # some were rework
    assert len(recomputed["leads"]) > 100
    assert sum(seconds is not None for _, seconds in recomputed["recoveries"]) > 10
    assert sum(seconds is not None for _, seconds in recomputed["restores"]) > 10
    assert kept == recomputed


def test_migration_0008_fills_the_durations_of_an_existing_projection(
        projected: Engine) -> None:
    """Down to 0007 (no stored durations) and up again: the migration recomputes what the
    projector wrote, exactly."""
    with projected.connect() as connection:
        written = rollup_rows(connection)
    downgrade(projected, "0007")
    with projected.connect() as connection:
        assert current_revision(projected) == "0007"
        assert not {"recovery_seconds", "restore_seconds"} & {
            column["name"] for table in ("deployments", "incidents")
            for column in inspect(connection).get_columns(table)}
    upgrade(projected)
    with projected.connect() as connection:
        assert rollup_rows(connection) == written


def test_a_reset_projection_empties_the_rollups(projected: Engine) -> None:
    with projected.begin() as connection:
        reset_projection(connection)
        assert rollup_rows(connection) == {"days": [], "leads": [], "buckets": [],
                                           "recoveries": [], "restores": []}


def blocks(connection: Connection, selection: Selection) -> list[tuple[Any, ...]]:
    """The deployment counts per (day, 7-day block, 30-day block) the frequency category
    reads: the same whether a day comes split at 'to''s time of day or whole."""
    window = selection.window
    counts: Counter[tuple[Any, ...]] = Counter()
    for slot in queries.deployment_days(connection, selection,
                                        split_at=time_of_day_key(window)):
        key = (slot.day, block_of(slot.day, slot.late, window, WEEK_DAYS),
               block_of(slot.day, slot.late, window, MONTH_DAYS))
        for name in ("deployments", "failed", "rework"):
            counts[(*key, name)] += getattr(slot, name)
    return sorted((key, n) for key, n in counts.items() if n)


def answers(engine: Engine) -> list[str]:
    """Every summary and weekly series over WINDOWS x FILTERS, as JSON."""
    found = []
    with engine.connect() as connection:
        for start, end in WINDOWS:
            for filters in FILTERS:
                selection = resolve_selection(Settings(), start=start, end=end, **filters)
                found.append(dora_report(connection, selection).model_dump_json())
                found.append(repr(blocks(connection, selection)))
                for metric, bucket, group_by in SERIES:
                    found.append(metric_series(connection, Settings(), selection, metric,
                                               bucket, group_by).model_dump_json())
    return found


def test_metrics_through_the_rollups_equal_the_metrics_from_the_facts(
        projected: Engine, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        through_rollups = answers(projected)
    assert "disagrees" not in caplog.text  # no answer fell back to reading every value
    with monkeypatch.context() as patch:
        patch.setattr(queries, "whole_days", lambda connection, selection: None)
        from_facts = answers(projected)
    summaries = [json.loads(answer) for answer in from_facts if "lead_time_for_changes" in answer]
    assert max(summary["lead_time_for_changes"]["changes"] for summary in summaries) > 100
    assert max(summary["change_failure_rate"]["failed_deployments"] for summary in summaries) > 3
    for rolled, counted in zip(through_rollups, from_facts, strict=True):
        assert rolled == counted


def test_whole_days_are_the_midnights_inside_the_window(engine: Engine) -> None:
    with engine.connect() as connection:
        selection = resolve_selection(Settings(), start="2024-01-03T07:30:00Z",
                                      end="2024-02-05T13:45:00Z", environment="production")
        split = queries.whole_days(connection, selection)
        assert split is not None
        assert (split.first.isoformat(), split.end.isoformat()) == ("2024-01-04", "2024-02-05")
        assert [(edge.start, edge.end) for edge in split.edges] == [
            (selection.window.start, START + timedelta(days=3)),
            (START + timedelta(days=35), selection.window.end)]
        assert queries.whole_days(connection, resolve_selection(
            Settings(), start="2024-01-03T07:30:00Z", end="2024-01-04T07:00:00Z")) is None
        assert queries.whole_days(connection, resolve_selection(
            Settings(), start="2024-01-01", end="2024-02-01", service="svc-000")) is None


def test_lead_times_from_bucket_counts_equal_those_from_every_value(projected: Engine) -> None:
    """The bucket path (rollups or, for some services, per-bucket counts of the facts)
    picks the same median and p90 as sorting every value."""
    checked = 0
    with projected.connect() as connection:
        for start, end in WINDOWS:
            for filters in [*FILTERS, {"service": "svc-000"}, {"service": "svc-001,svc-002"},
                            {"service": "svc-002", "environment": "*"}]:
                selection = resolve_selection(Settings(), start=start, end=end, **filters)
                values = [row[3] for row in queries.lead_time_facts(connection, selection)]
                assert lead_times.lead_times(connection, selection) == lead_times.LeadTimes(
                    len(values), median(values), percentile(values, P90))
                checked += len(values) > 10
    assert checked > 20

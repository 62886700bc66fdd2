"""Incremental linking gives exactly what linking everything at once gives.

A generated delivery history (bench/history.py: pushes, squash and merge-commit pull
requests, batched deployments to two environments, rollbacks, incidents with and without
artifacts) is projected twice: on one database in a single batch (every partition linked
from its beginning), on the other in small batches, first most of the history in time order,
then the rest shuffled together with events held back from the first part, which land
before deployments already linked (late pushes, merges, incidents, deployments). Every
derived column of every entity table, and /api/v1/dora, must be the same.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from sqlalchemy import Engine, select

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import resolve_selection
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import cdevent_row, insert_groups
from dora_cloudevents.store.schema import (
    cdevents_raw,
    changes,
    deployment_changes,
    deployments,
    first_deployments,
    incidents,
)
from tests.metrics.test_scenarios import second_database

SERVICES = 3
DAYS = 40


def load_history() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "history.py"
    spec = importlib.util.spec_from_file_location("bench_history", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def generated(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """About 1,500 CDEvents in time order, with many incidents and rollbacks."""
    history = load_history()
    monkeypatch.setattr(history, "INCIDENTS", 300)
    monkeypatch.setattr(history, "ROLLBACK_SHARE", 0.15)
    specs = sorted((spec for index in range(SERVICES)
                    for spec in history.simulate_service(index, 7, DAYS * 86400).specs),
                   key=lambda spec: spec[:3])
    return [history.build(spec) for spec in specs]


def store(engine: Engine, events: list[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        insert_groups(connection, cdevents_raw, [[cdevent_row(e, "0.4.1", now) for e in events]])


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every entity row, deployments named by their CDEvent id (seqs differ by arrival)."""
    with engine.connect() as connection:
        ids = dict(connection.execute(select(cdevents_raw.c.seq, cdevents_raw.c.event_id)).all())

        def rows(table: Any, *exclude: str) -> list[tuple[Any, ...]]:
            columns = [c for c in table.c if c.name not in exclude]
            found = []
            for row in connection.execute(select(*columns)):
                found.append(tuple(ids.get(value, value) if column.name in (
                    "cdevent_seq", "deployment_seq") else value
                    for column, value in zip(columns, row, strict=True)))
            return sorted(found, key=repr)

        return {"deployments": rows(deployments), "incidents": rows(incidents),
                "changes": rows(changes), "deployment_changes": rows(deployment_changes),
                "first_deployments": rows(first_deployments)}


def reports(engine: Engine) -> list[str]:
    end = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=DAYS)
    found = []
    for filters in ({}, {"service": "svc-001"}, {"environment": "staging"}):
        selection = resolve_selection(Settings(), start="2024-01-01", end=end.isoformat(),
                                      **filters)
        found.append(compute_dora(engine, selection).model_dump_json())
    return found


def test_incremental_linking_equals_linking_everything_at_once(
        engine: Engine, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    events = generated(monkeypatch)
    shuffle = random.Random(11)
    cut = len(events) * 7 // 10
    held_back = set(shuffle.sample(range(cut), cut // 20))
    first = [event for index, event in enumerate(events[:cut]) if index not in held_back]
    rest = [*events[cut:], *(events[index] for index in sorted(held_back))]
    shuffle.shuffle(rest)
    assert any(event["context"]["type"].startswith("dev.cdevents.service.")
               for event in (events[index] for index in held_back))

    store(engine, first)
    Projector(engine, Settings(), batch_size=50).project_all()
    store(engine, rest)
    Projector(engine, Settings(), batch_size=23).project_all()
    with second_database(engine, request, tmp_path) as other:
        store(other, events)
        Projector(other, Settings(), batch_size=len(events)).project_all()
        expected, expected_reports = snapshot(other), reports(other)

    actual = snapshot(engine)
    assert sum(1 for row in expected["deployments"] if row[-4]) > 5  # failed ones exist
    assert len(expected["deployment_changes"]) > 300
    assert len(expected["incidents"]) > 20
    for table, rows in expected.items():
        assert actual[table] == rows, table
    assert reports(engine) == expected_reports

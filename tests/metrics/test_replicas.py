"""Several projectors at once (as replicas or CronJobs overlapping) give the result of one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from dora_cloudevents.config import Settings
from dora_cloudevents.events import CDEvent
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import resolve_selection
from dora_cloudevents.metrics.projector import Projector, reset_projection
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import cdevent_row, insert_groups
from dora_cloudevents.store.schema import cdevents_raw
from tests.metrics.scenario import deploy, incident, push, sha

START = datetime(2024, 3, 1, tzinfo=UTC)


def moment(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


def history() -> list[CDEvent]:
    """Five services, each with pushes, batched deployments, a rollback and incidents."""
    events: list[CDEvent] = []
    for number, service in enumerate(("shop", "cart", "search", "auth", "mail")):
        repo = f"acme/{service}"
        for step in range(12):
            at = number + step * 10
            commits = [(sha(f"{service}-{step}-{k}"), moment(at + k)) for k in range(3)]
            events.append(push(repo, commits))
            events.append(deploy(service, "production", commits[-1][0], moment(at + 4)))
            if step % 4 == 3:
                events.extend(incident(f"{service}-incident-{step}", service, "production",
                                       moment(at + 5), moment(at + 7)))
        events.append(deploy(service, "production", None, moment(number + 125),
                             kind="rolledback"))
    return events


def report(engine: Engine) -> str:
    selection = resolve_selection(Settings(), start="2024-03-01", end="2024-04-01")
    return compute_dora(engine, selection).model_dump_json()


def test_two_projectors_at_once_equal_one(engine: Engine) -> None:
    events = history()
    with write_transaction(engine) as connection:
        insert_groups(connection, cdevents_raw,
                      [[cdevent_row(e, "0.4.1", datetime.now(UTC)) for e in events]])
    projectors = [Projector(engine, Settings(), batch_size=7) for _ in range(2)]
    threads = [threading.Thread(target=projector.project_all) for projector in projectors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # Deadlock victims are retried by the next pass, as the serve loop does.
    Projector(engine, Settings()).project_all()
    with engine.connect() as connection:
        pending = connection.execute(select(func.count()).where(
            cdevents_raw.c.status != "projected")).scalar()
    assert pending == 0
    concurrent = report(engine)

    with write_transaction(engine) as connection:
        reset_projection(connection)
    Projector(engine, Settings()).project_all()
    assert report(engine) == concurrent

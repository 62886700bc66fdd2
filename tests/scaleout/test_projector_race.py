"""Two projector replicas projecting a deployment and the push it shipped at the same time
must link them, as one projector does. A deterministic interleaving of the race the
multi-process tests can hit: replica A projects the deployment and re-links its partition
while replica B, which cannot see A's uncommitted deployment yet, projects the push and
finds no deployment to re-link; both commit, and nobody links them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.store.db import make_engine, write_transaction
from dora_cloudevents.store.events import cdevent_row, insert_groups
from dora_cloudevents.store.migrate import upgrade
from dora_cloudevents.store.schema import cdevents_raw, deployment_changes
from tests.metrics.scenario import deploy, push, sha


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def store(engine: Engine) -> None:
    """The deployment first (lower seq), then the push of the commit it ships."""
    commit = sha("race-1")
    events = [deploy("shop", "production", commit, "2024-05-01T10:30:00", repo="acme/shop"),
              push("acme/shop", [(commit, "2024-05-01T10:00:00")])]
    with write_transaction(engine) as connection:
        insert_groups(connection, cdevents_raw,
                      [[cdevent_row(event, "0.4.1", datetime.now(UTC)) for event in events]])


def links(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(deployment_changes)).scalar_one()


def test_one_projector_links_the_deployment_to_its_push(postgres: Engine) -> None:
    store(postgres)
    Projector(postgres, Settings(), batch_size=1).project_all()
    assert links(postgres) == 1


def test_two_projectors_at_once_link_the_deployment_to_its_push(postgres: Engine) -> None:
    store(postgres)
    relinked, release = threading.Event(), threading.Event()
    replica_a = Projector(postgres, Settings(), batch_size=1)
    relink = replica_a._relink

    def relink_then_hold(connection: Any, touched: Any, counts: Any) -> None:
        relink(connection, touched, counts)
        relinked.set()
        release.wait(30)  # keep A's transaction open while B works

    replica_a._relink = relink_then_hold  # type: ignore[method-assign]
    a = threading.Thread(target=replica_a.project_batch)  # claims the deployment
    a.start()
    assert relinked.wait(30)
    # B waits for A's turn (the projectors' lock), then claims the push and re-links
    # seeing A's deployment.
    b = threading.Thread(target=Projector(postgres, Settings(), batch_size=1).project_batch)
    b.start()
    b.join(2)
    release.set()
    a.join(30)
    b.join(30)
    assert links(postgres) == 1

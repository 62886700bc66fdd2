"""Scale-out is correct: the distributed topology as separate processes on PostgreSQL (two
ingest servers, two routers, two projectors, one API) reaches exactly what one embedded
process reaches on the same events, even when a router and a projector are SIGKILLed in the
middle of a batch. "Exactly": every raw log's rows by status, every entity table's rows,
/api/v1/dora, the drill-down totals and /deploy-frequency/day are equal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from dora_cloudevents.store.db import make_engine
from tests.conftest import _postgres_database
from tests.scaleout.history import WINDOW, History, history, post_through, requests
from tests.scaleout.topology import (
    Stage,
    dora_ce,
    metrics_snapshot,
    start_all,
    stop_all,
    table_counts,
    wait_until_drained,
)

pytestmark = pytest.mark.slow
DRAIN_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    counts: dict[str, Any]
    metrics: dict[str, Any]


@pytest.fixture(scope="module")
def events() -> History:
    return history()


@pytest.fixture(scope="module")
def embedded(request: pytest.FixtureRequest, events: History,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """The reference: one `dora-ce serve` with every stage, on a fresh schema."""
    for url in _postgres_database(request):
        one = Stage("embedded", "ingest,router,projector,api", url,
                    tmp_path_factory.mktemp("embedded"), migrate=True)
        engine = make_engine(url)
        try:
            start_all([one])
            assert post_through([one.url], requests(events), 1) == events.size
            wait_until_drained(engine, events.size, DRAIN_TIMEOUT, [one])
            yield Outcome(table_counts(engine), metrics_snapshot(one.url, WINDOW))
        finally:
            one.stop()
            engine.dispose()


@dataclass
class Topology:
    ingest: list[Stage]
    routers: list[Stage]
    projectors: list[Stage]
    api: Stage

    @property
    def all(self) -> list[Stage]:
        return [*self.ingest, *self.routers, *self.projectors, self.api]


@pytest.fixture
def topology(postgres_url: str, logs: Path) -> Iterator[Topology]:
    """The stages, not started; the schema migrated once, as the chart's Job does."""
    migrated = dora_ce("db", "upgrade", "--db", postgres_url)
    assert migrated.returncode == 0, migrated.stderr

    def stages(component: str) -> list[Stage]:
        return [Stage(f"{component}-{n}", component, postgres_url, logs) for n in (1, 2)]

    made = Topology(stages("ingest"), stages("router"), stages("projector"),
                    Stage("api", "api", postgres_url, logs))
    yield made
    stop_all(made.all)


def outcome(engine: Engine, topology: Topology, events: History) -> Outcome:
    wait_until_drained(engine, events.size, DRAIN_TIMEOUT,
                       [stage for stage in topology.all if stage.alive()])
    return Outcome(table_counts(engine), metrics_snapshot(topology.api.url, WINDOW))


def assert_same(distributed: Outcome, embedded: Outcome, events: History) -> None:
    raw = distributed.counts["cloudevents_raw"]
    assert sum(raw.values()) == len(events.raw), "raw events lost or duplicated"
    assert "pending" not in raw and "failed" not in raw, raw
    cdevents = distributed.counts["cdevents_raw"]
    assert set(cdevents) == {"projected"}, cdevents
    assert distributed.counts == embedded.counts
    assert distributed.metrics["dora"]["deployment_frequency"]["deployments"] >= 1000
    assert len(distributed.metrics["deploy_frequency_day"]) > 100
    assert distributed.metrics == embedded.metrics


def test_two_of_every_stage_equal_one_process(topology: Topology, postgres_url: str,
                                              events: History, embedded: Outcome) -> None:
    start_all(topology.all)
    ingest_urls = [stage.url for stage in topology.ingest]
    assert post_through(ingest_urls, requests(events)) == events.size
    engine = make_engine(postgres_url)
    try:
        assert_same(outcome(engine, topology, events), embedded, events)
    finally:
        engine.dispose()


def in_transaction(engine: Engine, stage: Stage) -> bool:
    """The stage's process has a transaction open on the database right now."""
    with engine.connect() as connection:
        open_transactions = connection.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
            "AND xact_start IS NOT NULL AND state <> 'idle'"), {"name": stage.name})
        return bool(open_transactions.scalar_one())


def kill_mid_batch(engine: Engine, stage: Stage, timeout: float = 60) -> None:
    """SIGKILL ``stage`` at a moment its batch transaction is open."""
    deadline = time.monotonic() + timeout
    while not in_transaction(engine, stage):
        assert stage.alive(), stage.log()
        assert time.monotonic() < deadline, f"{stage.name} never started a batch"
    stage.kill()


def test_killed_router_and_projector_lose_nothing(topology: Topology, postgres_url: str,
                                                  events: History,
                                                  embedded: Outcome) -> None:
    # Everything is ingested first, so the workers start on a backlog of full batches.
    start_all([*topology.ingest, topology.api])
    assert post_through([s.url for s in topology.ingest], requests(events)) == events.size
    engine = make_engine(postgres_url)
    try:
        router, projector = topology.routers[0], topology.projectors[0]
        start_all([*topology.routers, *topology.projectors])
        kill_mid_batch(engine, router)
        kill_mid_batch(engine, projector)
        assert not router.alive() and not projector.alive()
        # The survivors take over the killed replicas' claims once PostgreSQL notices the
        # dropped connections and rolls their transactions back.
        assert_same(outcome(engine, topology, events), embedded, events)
    finally:
        engine.dispose()

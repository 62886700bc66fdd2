"""Migrations run once however many processes start at once: the PostgreSQL advisory lock
serialises them, and replicas started with ``--no-migrate`` wait for the schema."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.migrate import head_revision
from tests.scaleout.topology import Stage, dora_ce, stop_all

pytestmark = pytest.mark.slow


def wait_for_line(stage: Stage, line: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while line not in stage.log():
        assert stage.alive(), stage.log()
        assert time.monotonic() < deadline, f"{stage.name} never logged {line!r}: {stage.log()}"
        time.sleep(0.1)


def test_concurrent_upgrades_migrate_exactly_once(postgres_url: str, logs: Path) -> None:
    # Replicas that must not migrate start first: they wait, not serve an empty schema.
    replicas = [Stage(f"api-{n}", "api", postgres_url, logs).start() for n in range(2)]
    try:
        for replica in replicas:
            wait_for_line(replica, "waiting for migrations")
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: dora_ce("db", "upgrade", "--db", postgres_url),
                                    range(4)))
        for result in results:
            assert result.returncode == 0, result.stderr
            assert result.stdout.strip().endswith("up to date"), result.stdout
        applied = [r for r in results if "migrations applied" in r.stdout]
        assert len(applied) == 1, [r.stdout for r in results]

        engine = make_engine(postgres_url)
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert [row[0] for row in versions] == [head_revision()]
        engine.dispose()
        for replica in replicas:
            replica.wait_ready(timeout=60)
    finally:
        stop_all(replicas)


def test_upgrade_waits_for_a_database_that_is_not_up_yet() -> None:
    unreachable = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    result = dora_ce("db", "upgrade", "--db", unreachable, "--wait", "2")
    assert result.returncode == 1
    assert "cannot reach the database" in result.stderr

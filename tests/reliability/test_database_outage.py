"""The database unavailable under dora-ce serve: 503 + Retry-After, then recovery by itself,
no restart. PostgreSQL is really stopped and started, on a private cluster (pg_createcluster
on a free port, never the shared one); SQLite is locked by another process."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.reliability.figures import record
from tests.reliability.support import (
    STRUCTURED,
    Clients,
    Serve,
    assert_exactly_once,
    cloudevent,
    private_cluster,
    stored_counts,
)

SOURCE = "/reliability/outage"
OUTAGE_SECONDS = 2.0
RECOVERY_BOUND = 15.0  # seconds from PostgreSQL answering to the first 202


def wait_until(condition: object, timeout: float, what: str) -> float:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return time.monotonic()


@pytest.mark.slow
def test_ingest_answers_503_while_postgres_is_down_and_recovers_alone(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        with Serve(cluster.url, tmp_path / "serve.log") as server, \
                Clients(server.url, SOURCE, workers=2, batch=10, pause=0.01) as clients:
            outcomes = clients.outcomes
            clients.wait_for_acks(50)

            cluster.stop()
            stopped = time.monotonic()
            wait_until(lambda: any(s == 503 for at, s in outcomes.statuses if at > stopped),
                       20, "a 503 while the database is down")
            readiness = httpx.get(f"{server.url}/readyz", timeout=10)
            assert readiness.status_code == 503 and readiness.headers["retry-after"]
            time.sleep(OUTAGE_SECONDS)

            cluster.start()
            ready = wait_until(cluster.ready, 30, "PostgreSQL to accept connections again")
            first_ack = wait_until(lambda: any(s == 202 for at, s in outcomes.statuses
                                               if at > ready), RECOVERY_BOUND,
                                   "a 202 after PostgreSQL is back")
            clients.wait_for_acks(50)
            assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
            assert server.process is not None and server.process.poll() is None  # no restart
        stored = stored_counts(cluster.url, SOURCE)

    assert not outcomes.anomalies
    assert {s for _, s in outcomes.statuses} == {202, 503}  # nothing else, no 500
    for refusal in outcomes.refusals:
        assert refusal.headers["content-type"].startswith("application/problem+json")
        assert refusal.headers["retry-after"] == "5"
        assert "unavailable" in refusal.json()["detail"]
    assert_exactly_once(outcomes.acked, stored)
    record("database_outage.postgresql", {
        "outage_seconds": round(ready - stopped, 1),
        "recovery_seconds": round(first_ack - ready, 2),
        "answered_503": sum(1 for _, s in outcomes.statuses if s == 503),
        "acknowledged": len(outcomes.acked), "acknowledged_and_stored_once": sum(
            1 for i in outcomes.acked if stored.get(i) == 1)})


@pytest.mark.slow
def test_ingest_answers_503_while_another_process_locks_sqlite(tmp_path: Path) -> None:
    """Another writer (a `sqlite3` shell, a backup) holds the lock past the busy timeout."""
    database = tmp_path / "dora.db"
    with Serve(f"sqlite:///{database}", tmp_path / "serve.log") as server, httpx.Client(
            base_url=server.url, timeout=30) as http:
        locker = sqlite3.connect(database, isolation_level=None)
        try:
            locker.execute("BEGIN IMMEDIATE")
            asked = time.monotonic()
            locked = http.post("/events", content=orjson.dumps(cloudevent(SOURCE, "locked")),
                               headers=STRUCTURED)
            waited = time.monotonic() - asked
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        released = time.monotonic()
        after = http.post("/events", content=orjson.dumps(cloudevent(SOURCE, "after")),
                          headers=STRUCTURED)
        recovered = time.monotonic() - released
    assert locked.status_code == 503 and locked.headers["retry-after"] == "5"
    assert locked.headers["content-type"].startswith("application/problem+json")
    assert after.status_code == 202
    assert stored_counts(f"sqlite:///{database}", SOURCE) == {"after": 1}
    record("database_outage.sqlite_locked", {
        "answered_503_after_seconds": round(waited, 1),
        "recovery_seconds": round(recovered, 2)})

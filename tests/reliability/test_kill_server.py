"""SIGKILL of dora-ce serve during sustained ingest: every acknowledged event survives, once.

Four clients post without pause (single events and batches of 10, every event a new id)
while the server is killed with SIGKILL twice and restarted on the same database. Requests
in flight at the moment of the kill get no answer: they were not acknowledged, may or may
not be stored, and are sent again after the restart, as a client that retries would. Then
every acknowledged id must be stored, every retried one too, and none twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy.engine import make_url

from tests.reliability.figures import record
from tests.reliability.support import (
    BATCH,
    Clients,
    Serve,
    assert_exactly_once,
    cloudevent,
    stored_counts,
)

SOURCE = "/reliability/kill-9"
KILLS = 2


def retry(url: str, ids: list[str]) -> tuple[int, int]:
    """Send ``ids`` again in batches; (accepted, duplicates) as the server counts them."""
    accepted = duplicates = 0
    with httpx.Client(base_url=url, timeout=30) as http:
        for start in range(0, len(ids), 500):
            chunk = [cloudevent(SOURCE, i) for i in ids[start:start + 500]]
            response = http.post("/events", content=orjson.dumps(chunk), headers=BATCH)
            assert response.status_code == 202, response.text
            accepted += response.json()["accepted"]
            duplicates += response.json()["duplicates"]
    return accepted, duplicates


@pytest.mark.slow
def test_sigkill_during_sustained_ingest_loses_and_doubles_nothing(
        database_url: str, tmp_path: Path) -> None:
    started = time.monotonic()
    server = Serve(database_url, tmp_path / "serve.log").start()
    try:
        with Clients(server.url, SOURCE, workers=4, batch=10) as clients:
            for _ in range(KILLS):
                clients.wait_for_acks(300)
                server.kill()
                server.start()  # same port, same database
            clients.wait_for_acks(300)
        outcomes = clients.outcomes
        assert not outcomes.anomalies
        assert all(status == 202 for _, status in outcomes.statuses), {
            r.status_code: r.text for r in outcomes.refusals}
        in_flight = sorted(set(outcomes.unacked))
        stored_before_retry = stored_counts(database_url, SOURCE)
        survived_unacked = sum(1 for i in in_flight if i in stored_before_retry)
        accepted, duplicates = retry(server.url, in_flight)
    finally:
        server.stop()
    stored = stored_counts(database_url, SOURCE)
    assert_exactly_once(outcomes.acked, stored)
    assert accepted + duplicates == len(in_flight)
    assert duplicates == survived_unacked  # those were committed before the kill cut the reply
    assert set(stored) == set(outcomes.acked) | set(in_flight)
    backend = make_url(database_url).get_backend_name()
    record(f"kill9.{backend}", {
        "kills": KILLS, "acknowledged": len(outcomes.acked),
        "acknowledged_and_stored_once": sum(1 for i in outcomes.acked if stored.get(i) == 1),
        "in_flight_unanswered": len(in_flight),
        "in_flight_stored_anyway": survived_unacked, "stored_rows": sum(stored.values()),
        "seconds": round(time.monotonic() - started, 1)})

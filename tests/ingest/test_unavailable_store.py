"""An unreachable database: ingest answers 503 with Retry-After, readiness fails, nothing hangs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from dora_cloudevents.store.db import make_engine
from tests.conftest import LiveServer
from tests.ingest.test_cloudevents_endpoint import STRUCTURED, assert_problem, event


@pytest.fixture(params=["sqlite", "postgresql"])
def unreachable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'dora.db'}"
    return "postgresql+psycopg://postgres@127.0.0.1:1/test"


@pytest.fixture
def down_client(unreachable_url: str) -> Iterator[httpx.Client]:
    engine = make_engine(unreachable_url, pool_pre_ping=False)
    with LiveServer(create_app(Settings(), engine)) as live, httpx.Client(
        base_url=live.url, timeout=20
    ) as http:
        yield http
    engine.dispose()


def test_ingest_answers_503_with_retry_after(down_client: httpx.Client) -> None:
    response = down_client.post("/events", content=json.dumps(event()), headers=STRUCTURED)
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"] == "5"
    # Bad input is still judged on its own merits before storage is involved.
    assert_problem(down_client.post("/events", content=b"{", headers=STRUCTURED), 400)


def test_readiness_fails_while_liveness_holds(down_client: httpx.Client) -> None:
    assert down_client.get("/healthz").status_code == 200
    assert_problem(down_client.get("/readyz"), 503, "database")


def test_read_api_answers_503_too(down_client: httpx.Client) -> None:
    response = down_client.get("/api/v1/events")
    assert_problem(response, 503, "unavailable")
    assert response.headers["retry-after"] == "5"

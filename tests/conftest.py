"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL, over real HTTP."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.migrate import upgrade

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared"
FIXTURES = SHARED / "fixtures"
POSTGRES_URL = os.environ.get(
    "DORA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def shared_fixture(*parts: str) -> Path:
    """A file under ../shared/fixtures, or skip the test where the folder is not there."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available (the shared fixtures live beside the project)")
    return path


def _postgres_or_skip() -> Engine:
    admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI: {error}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is not reachable")
    return admin


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    admin = _postgres_or_skip()
    yield admin
    admin.dispose()


def _postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh schema per test, selected through search_path so the app sees an empty DB."""
    admin: Engine = request.getfixturevalue("postgres_admin")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database, once for each back-end."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'dora.db'}"
    else:
        yield from _postgres_database(request)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


class LiveServer:
    """A uvicorn server on a free loopback port, in a background thread."""

    def __init__(self, app: object) -> None:
        # proxy_headers=False, as `dora-ce serve` runs it: the app applies them itself.
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                access_log=False, lifespan="on", proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def server(engine: Engine, settings: Settings) -> Iterator[LiveServer]:
    """Ingest and read API only, so tests see raw events as stored (no router moving them)."""
    with LiveServer(create_app(settings, engine, {"ingest", "api"})) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        yield http

"""SQLite's WAL is checkpointed off the event loop and starts over while ingest goes on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dora_cloudevents.ingest.committer import GroupCommitter, WalCheckpointer
from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.events import cloudevent_row, count_by_status
from dora_cloudevents.store.migrate import upgrade
from dora_cloudevents.store.schema import cloudevents_raw

# A WAL frame: a 24-byte header and a page.
FRAME = 24 + 4096


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'dora.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def rows(n: int) -> list[dict[str, object]]:
    event = {"specversion": "1.0", "id": f"wal-{n}", "source": "/test/wal", "type": "t",
             "data": {"padding": "x" * 500, "n": n}}
    return [cloudevent_row(event, datetime.now(UTC))]


def wal_bytes(engine: Engine) -> int:
    return Path(f"{engine.url.database}-wal").stat().st_size


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return sum(count_by_status(connection, cloudevents_raw).values())


def test_the_wal_starts_over_while_requests_keep_coming(sqlite_engine: Engine) -> None:
    restart_pages = 64
    checkpointer = WalCheckpointer(sqlite_engine, interval=0.005, restart_pages=restart_pages)

    async def client(committer: GroupCommitter, first: int, requests: int) -> None:
        for n in range(first, first + requests):
            await committer.submit(cloudevents_raw, rows(n))

    async def ingest(clients: int, requests: int) -> None:
        # Requests always waiting: commits follow each other with no pause in which a
        # passive checkpoint could catch up with the writer by itself.
        committer = GroupCommitter(sqlite_engine, checkpointer=checkpointer)
        committer.start()
        try:
            await asyncio.gather(*(client(committer, k * requests, requests)
                                   for k in range(clients)))
        finally:
            await asyncio.wait_for(committer.stop(), timeout=30)

    requests = 6000
    asyncio.run(ingest(16, requests // 16))
    assert stored(sqlite_engine) == requests
    # Each stored row wrote at least one page to the WAL: without restarts it would hold
    # them all (6000 frames and more); it was reused from the start instead. (The bound
    # leaves room for passes slowed down by a busy machine: commits go on during a pass.)
    assert wal_bytes(sqlite_engine) < 2000 * FRAME


def test_commits_wait_while_the_checkpointer_holds_them(sqlite_engine: Engine) -> None:
    checkpointer = WalCheckpointer(sqlite_engine)

    async def scenario() -> tuple[bool, bool, int]:
        committer = GroupCommitter(sqlite_engine, checkpointer=checkpointer)
        committer.start()
        try:
            hold = checkpointer.held = asyncio.get_running_loop().create_future()
            request = asyncio.ensure_future(committer.submit(cloudevents_raw, rows(1)))
            await asyncio.sleep(0.05)
            waited = not request.done()
            committed_meanwhile = stored(sqlite_engine)
            checkpointer.held = None
            hold.set_result(None)
            outcome = await asyncio.wait_for(request, timeout=10)
            return waited, outcome.accepted == 1, committed_meanwhile
        finally:
            await asyncio.wait_for(committer.stop(), timeout=30)

    waited, accepted, committed_meanwhile = asyncio.run(scenario())
    assert waited and committed_meanwhile == 0
    assert accepted and stored(sqlite_engine) == 1


def test_stopping_while_commits_are_held_answers_nothing_wrongly(sqlite_engine: Engine) -> None:
    """A committer stopped during a hold ends promptly; the held request is not answered
    as stored, and nothing half-written is left."""
    checkpointer = WalCheckpointer(sqlite_engine)

    async def scenario() -> bool:
        committer = GroupCommitter(sqlite_engine, checkpointer=checkpointer)
        committer.start()
        checkpointer.held = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(committer.submit(cloudevents_raw, rows(1)))
        await asyncio.sleep(0.02)
        await asyncio.wait_for(committer.stop(), timeout=10)
        return request.done()

    assert asyncio.run(scenario()) is False
    assert stored(sqlite_engine) == 0

"""Group commit: concurrent requests share one transaction; each is answered after it commits."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine, Table, exc
from sqlalchemy.pool import PoolProxiedConnection

from dora_cloudevents.store.db import StorageUnavailable, is_unavailable
from dora_cloudevents.store.events import (
    EventRow,
    InsertOutcome,
    insert_groups_dbapi,
    sqlite_rows_per_statement,
)

log = logging.getLogger(__name__)

Pending = tuple[Table, list[EventRow], "asyncio.Future[InsertOutcome]"]

# Concurrent transactions on PostgreSQL (see the class docstring).
POSTGRESQL_WRITERS = 3
# The SQLite writer checkpoints in its own commit only past this many WAL pages (256 MiB):
# a backstop, should WalCheckpointer fail to keep the WAL short.
SQLITE_WRITER_AUTOCHECKPOINT = 65536
# Event-loop turns the SQLite writer yields before it takes a group: requests whose bytes
# already arrived get parsed and join this commit instead of waiting for the next one.
# Each turn costs a lone request a few microseconds; three measured +20 % single-event
# throughput under load, more turns no further gain (docs/benchmarks.md).
SQLITE_GATHER_TURNS = 3
# Seconds between the WalCheckpointer's passive checkpoints. A checkpoint copies each page
# changed since the last one once, however often it changed: the index pages that every
# insert touches are copied once per pass, not once per commit.
WAL_CHECKPOINT_INTERVAL = 0.25
# WAL pages past which the WalCheckpointer holds the commits for a last pass, so that the
# WAL starts over (32 MiB).
WAL_RESTART_PAGES = 8192


class GroupCommitter:
    """Writes what queued up while the previous transaction ran, in one transaction.

    Under load this turns N fsyncs into one; a lone request is written at once. A group
    that fails for a reason other than an unavailable database is retried request by
    request, so one bad request never takes its neighbours down with it.

    SQLite has one writer, on the event loop itself. PostgreSQL gets ``writers`` threads,
    each with its own connection: while one group waits for its commit (a WAL flush), the
    next is inserted. A group forms when a writer is free, so everything that arrived while
    all were busy shares the next transaction; a group repeating a key that a transaction in
    flight is writing waits for it, which keeps duplicate detection exact and rules out
    deadlocks between our own transactions.
    """

    def __init__(self, engine: Engine, max_group_rows: int = 20_000,
                 on_commit: Callable[[], None] | None = None,
                 writers: int | None = None,
                 checkpointer: WalCheckpointer | None = None) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error
        self._on_commit = on_commit
        self._max_group_rows = max_group_rows
        self._pending: list[Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._sqlite = self._dialect == "sqlite"
        if writers is None:
            writers = 1 if self._sqlite else POSTGRESQL_WRITERS
        if self._sqlite and writers != 1:
            raise ValueError("SQLite has one writer at a time")
        self._writers = writers
        self._free: list[int] = list(range(writers))
        self._freed: asyncio.Future[None] | None = None
        self._keys: dict[int, set[tuple[str, str]]] = {}  # of the groups being written
        self._connections: list[PoolProxiedConnection | None] = [None] * writers
        self._executor = ThreadPoolExecutor(max_workers=writers, thread_name_prefix="group-commit")
        self._task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        # SQLite commits take microseconds and involve no network: doing them on the event
        # loop avoids a thread hop and GIL hand-offs per group. (Measured again with the
        # single-statement commits below: a writer thread was still slower; see
        # docs/benchmarks.md.)
        self._inline = self._sqlite
        self._checkpointer = (checkpointer or WalCheckpointer(engine)) if self._sqlite else None

    def start(self) -> None:
        if self._task is None:
            _fewer_collections()
            # Kept: asyncio.get_running_loop() makes a getpid() system call on every call.
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
            self._loop = None
        await asyncio.gather(*self._in_flight, return_exceptions=True)
        for slot in range(self._writers):
            if self._inline:
                self._close_writer(slot)
            else:
                self._executor.submit(self._close_writer, slot).result()
        self._executor.shutdown(wait=True)
        if self._checkpointer is not None:
            await self._checkpointer.stop()

    def submit(self, table: Table, rows: list[EventRow]) -> asyncio.Future[InsertOutcome]:
        """Store ``rows`` all-or-nothing: the outcome, once they are committed.

        A future, not a coroutine: on the single-event path each coroutine frame a request
        passes through costs it twice, once to suspend and once to resume after the commit.
        """
        if self._loop is None:
            raise RuntimeError("GroupCommitter.start() was not called")
        future: asyncio.Future[InsertOutcome] = self._loop.create_future()
        self._pending.append((table, rows, future))
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set_result(None)
        return future

    async def _next_group(self, loop: asyncio.AbstractEventLoop) -> list[Pending]:
        while not self._pending:
            self._wakeup = loop.create_future()
            await self._wakeup
        if self._inline:
            # Let requests whose bytes already arrived reach submit() before committing:
            # one commit for many of them is the point of group commit.
            for _ in range(SQLITE_GATHER_TURNS):
                await asyncio.sleep(0)
            # Taken after a hold, the group includes what arrived during it; nothing awaits
            # between here and the commit, so no hold can begin in between.
            await self._checkpoint_done()
        pending, size, taken = self._pending, 0, 0
        while taken < len(pending) and (taken == 0 or size < self._max_group_rows):
            size += len(pending[taken][1])
            taken += 1
        group = pending[:taken]
        del pending[:taken]
        return [item for item in group if not item[2].done()]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # A group is formed only once a writer is free: what arrives meanwhile joins it.
            while not self._free:
                self._freed = loop.create_future()
                await self._freed
            live = await self._next_group(loop)
            if not live:
                continue
            if self._inline:
                self._settle(live, self._commit(live, 0))
                continue
            if self._writers > 1:
                # Concurrent transactions inserting the same keys wait for each other and,
                # in opposite orders, deadlock: a group repeating an event that is being
                # written waits until the writes in flight are done.
                keys = {(row["source"], row["event_id"]) for item in live for row in item[1]}
                while any(not keys.isdisjoint(other) for other in self._keys.values()):
                    self._freed = loop.create_future()
                    await self._freed
            else:
                keys = set()
            slot = self._free.pop()
            self._keys[slot] = keys
            task = loop.create_task(self._commit_on_thread(live, slot))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def _checkpoint_done(self) -> None:
        """Wait while the WalCheckpointer holds the commits back."""
        while self._checkpointer is not None and self._checkpointer.held is not None:
            # Shielded: cancelling this wait (at stop) must not cancel the checkpointer's hold.
            await asyncio.shield(self._checkpointer.held)

    async def _commit_on_thread(self, group: list[Pending], slot: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._executor, self._commit, group, slot)
            self._settle(group, results)
        finally:
            del self._keys[slot]
            self._free.append(slot)
            freed = self._freed
            if freed is not None:
                self._freed = None
                freed.set_result(None)

    def _settle(self, group: list[Pending], results: list[InsertOutcome | Exception]) -> None:
        for (_, _, future), result in zip(group, results, strict=True):
            if future.done():
                continue
            if isinstance(result, InsertOutcome):
                future.set_result(result)
            else:
                future.set_exception(result)
        if self._on_commit is not None:
            self._on_commit()

    def _commit(self, group: list[Pending], slot: int) -> list[InsertOutcome | Exception]:
        """Each request's outcome, or the error that kept it from being stored."""
        try:
            return list(self._write(group, slot))
        except Exception as error:
            if len(group) > 1 and not is_unavailable(error):
                return [result for item in group for result in self._commit([item], slot)]
            return [_storage_error(error)] * len(group)

    def _write(self, group: list[Pending], slot: int) -> list[InsertOutcome]:
        # The transaction runs on the DBAPI connection itself: SQLAlchemy's begin/commit
        # machinery (events, transaction objects) cost ~60 µs per group, as much as
        # inserting ten events into SQLite.
        try:
            connection = self._writer_connection(slot)
        except Exception as error:
            raise self._wrapped(error) from error
        driver: Any = connection.driver_connection
        tables = {item[0] for item in group}
        # On SQLite one INSERT statement outside BEGIN ... COMMIT is a transaction of its
        # own (all or nothing, committed when its last row is returned), and it needs no
        # statement journal: SQLite copies every page such a statement changes inside an
        # explicit transaction first. Measured: -30% per event on SQLite.
        explicit = not self._sqlite or len(tables) > 1
        if not explicit:
            rows = sum(len(item[1]) for item in group)
            explicit = rows > 0 and rows > sqlite_rows_per_statement(
                next(item[1][0] for item in group if item[1]))
        try:
            if self._sqlite and explicit:
                # Take SQLite's write lock up front (see store/db.py).
                driver.execute("BEGIN IMMEDIATE")
            if len(tables) == 1:
                outcomes = insert_groups_dbapi(driver, self._dialect, group[0][0],
                                               [item[1] for item in group])
            else:
                by_index: dict[int, InsertOutcome] = {}
                for table in tables:
                    indexes = [i for i, item in enumerate(group) if item[0] is table]
                    written = insert_groups_dbapi(driver, self._dialect, table,
                                                  [group[i][1] for i in indexes])
                    by_index.update(zip(indexes, written, strict=True))
                outcomes = [by_index[i] for i in range(len(group))]
            if not self._sqlite:
                driver.commit()
            elif explicit:
                driver.execute("COMMIT")
        except Exception as error:
            wrapped = self._wrapped(error)
            self._abandon(driver, slot, broken=is_unavailable(wrapped))
            raise wrapped from error
        if self._checkpointer is not None and self._loop is not None:
            self._checkpointer.committed(self._loop)
        return outcomes

    def _wrapped(self, error: Exception) -> Exception:
        """A DBAPI error as SQLAlchemy would raise it (OperationalError means unavailable)."""
        if isinstance(error, self._dbapi_error):
            return exc.DBAPIError.instance(None, None, error, self._dbapi_error)
        return error

    def _abandon(self, driver: Any, slot: int, broken: bool) -> None:
        """Roll back; if the connection may be broken (database restarted), start afresh."""
        if broken:
            self._close_writer(slot, invalidate=True)
            return
        try:
            if self._sqlite:
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
            else:
                driver.rollback()
        except Exception:
            self._close_writer(slot, invalidate=True)

    def _writer_connection(self, slot: int) -> PoolProxiedConnection:
        # One long-lived connection: checking one out of the pool per group cost more
        # than the insert of a typical group.
        connection = self._connections[slot]
        if connection is None:
            connection = self._engine.raw_connection()
            if self._checkpointer is not None:
                # Checkpoints run on the checkpointer's thread, not in our commits.
                connection.driver_connection.execute(  # type: ignore[union-attr]
                    f"PRAGMA wal_autocheckpoint={SQLITE_WRITER_AUTOCHECKPOINT}")
            self._connections[slot] = connection
        return connection

    def _close_writer(self, slot: int, invalidate: bool = False) -> None:
        connection, self._connections[slot] = self._connections[slot], None
        _discard(connection, invalidate)


class WalCheckpointer:
    """Copies SQLite's write-ahead log into the database on a thread, never on the loop.

    By default the connection whose commit takes the WAL past 1000 pages runs the
    checkpoint (page copies and two fsyncs) inside that commit: on the ingest path, the
    event loop, blocked for the fsyncs. Here the loop starts a PASSIVE checkpoint on a
    thread at most every ``interval`` seconds while commits happen; those never block the
    writer, but they cannot finish while commits keep coming, and SQLite starts the WAL over
    only after a checkpoint that did (a long WAL makes every page lookup slower). So once
    the WAL is longer than ``restart_pages``, the committer holds its next commit (``held``)
    while one more pass copies the few pages left: requests keep being read and parsed
    meanwhile and join the group that follows, and the next commit starts the WAL over.
    Durability is unchanged: a commit is in the WAL before it is acknowledged.
    """

    def __init__(self, engine: Engine, interval: float = WAL_CHECKPOINT_INTERVAL,
                 restart_pages: int = WAL_RESTART_PAGES) -> None:
        self._engine = engine
        self._interval = interval
        self._restart_pages = restart_pages
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wal-checkpoint")
        self._connection: PoolProxiedConnection | None = None  # the executor thread's
        self._task: asyncio.Task[None] | None = None
        self._next = 0.0  # loop time
        self.held: asyncio.Future[None] | None = None

    def committed(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the loop after each commit: start a pass if one is due."""
        if self._task is None and loop.time() >= self._next:
            self._task = loop.create_task(self._checkpoint(loop))

    async def stop(self) -> None:
        """Let a pass in progress finish, then close the connection and the thread."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    async def _checkpoint(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            wal_pages = await loop.run_in_executor(self._executor, self._pass)
            if wal_pages > self._restart_pages:
                # On the loop, so no inline commit is running: from here none starts.
                self.held = loop.create_future()
                await loop.run_in_executor(self._executor, self._pass)
        except Exception as error:  # retried after a later commit; ingest goes on
            log.warning("WAL checkpoint failed: %s", error)
        finally:
            held, self.held = self.held, None
            if held is not None and not held.done():
                held.set_result(None)
            self._next = loop.time() + self._interval
            self._task = None

    def _pass(self) -> int:
        """One PASSIVE checkpoint; the WAL's length in pages."""
        try:
            if self._connection is None:
                self._connection = self._engine.raw_connection()
            driver: Any = self._connection.driver_connection
            _busy, wal_pages, _copied = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except Exception:
            self._close(invalidate=True)
            raise
        return int(wal_pages)

    def _close(self, invalidate: bool = False) -> None:
        connection, self._connection = self._connection, None
        _discard(connection, invalidate)


def _discard(connection: PoolProxiedConnection | None, invalidate: bool) -> None:
    """Give a connection back to the pool, or, if it may be broken, drop it for good."""
    if connection is not None:
        with contextlib.suppress(Exception):
            if invalidate:
                connection.invalidate()
            else:
                connection.close()


# The cyclic garbage collector's youngest generation is collected every 700 allocations
# by default. A batch of 100 events parses into ~500 dicts and lists that all stay alive
# until their group commits, so the collector ran on almost every request and promoted
# them through every generation: 17% of the CPU time of batch ingest (measured in process).
GC_YOUNGEST_THRESHOLD = 10_000


def _fewer_collections() -> None:
    youngest, *older = gc.get_threshold()
    if youngest < GC_YOUNGEST_THRESHOLD:
        gc.set_threshold(GC_YOUNGEST_THRESHOLD, *older)


def _storage_error(error: Exception) -> Exception:
    if is_unavailable(error):
        log.warning("event store unavailable: %s", error.__class__.__name__)
        return StorageUnavailable(str(error))
    log.exception("storing events failed", exc_info=error)
    return error

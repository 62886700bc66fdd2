"""Engines for SQLite (embedded default) and PostgreSQL, and how to open write transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url


class StorageUnavailable(Exception):
    """The database cannot be reached (or is locked) right now; the caller should retry later."""


def _json_serializer(value: Any) -> str:
    return orjson.dumps(value).decode()


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling cannot do BEGIN IMMEDIATE; take it over,
    # as the SQLAlchemy documentation recommends, so writers lock up front instead of
    # failing half way with SQLITE_BUSY_SNAPSHOT when another process wrote first.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a crash of the process (the case that matters for
        # "acknowledged means stored"); FULL would also survive power loss at ~2x the fsyncs.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get("immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url`` (``sqlite:///file.db`` or ``postgresql+psycopg://...``)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options: dict[str, Any] = {
        "json_serializer": _json_serializer,
        "json_deserializer": orjson.loads,
    }
    if parsed.get_backend_name() == "postgresql":
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=10)
        # JIT compiles a query whose estimated cost is high, and the planner's estimates for
        # recursive CTEs and long IN lists are: measured, 250 ms of compiling for a 0.05 ms
        # query, on every projector batch. Our queries are short; the URL's own options stay.
        given = parsed.query.get("options")
        parsed = parsed.difference_update_query(["options"])
        options["connect_args"] = {"connect_timeout": 5, "options": " ".join(
            [*([given] if isinstance(given, str) else given or []), "-c jit=off"])}
    options.update(kwargs)
    engine = create_engine(parsed, **options)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that takes the write lock at once on SQLite (plain BEGIN on PostgreSQL)."""
    with engine.connect() as connection:
        connection = connection.execution_options(immediate=True)
        with connection.begin():
            yield connection


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` means the database is down, unreachable or locked, not bad data."""
    if isinstance(error, StorageUnavailable):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, exc.OperationalError | exc.InterfaceError | exc.TimeoutError)


def refused_value(error: BaseException) -> str | None:
    """What the database said when it refused a value as data (PostgreSQL: a NUL character
    in a text or JSON value, a number out of range), else None. Raw driver errors count too
    (the PostgreSQL ingest path inserts through the driver): PEP 249 names the class."""
    dbapi = error.orig if isinstance(error, exc.DBAPIError) and error.orig else error
    if not any(cls.__name__ == "DataError" for cls in type(dbapi).__mro__):
        return None
    lines = str(dbapi).splitlines() or ["invalid value"]
    details = [line.removeprefix("DETAIL:").strip() for line in lines[1:]
               if line.startswith("DETAIL:")]
    return "; ".join([lines[0], *details])[:300]


def backend_name(engine: Engine) -> str:
    return engine.dialect.name

"""Writing to and reading from the raw event logs (cloudevents_raw, cdevents_raw)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Row, Select, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql.base import PGDialect

from dora_cloudevents.events import CDEvent, CloudEvent, parse_rfc3339
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw, sqlite_timestamp

EventRow = dict[str, Any]
Key = tuple[str, str]


class InsertOutcome(NamedTuple):
    """How many of one request's events were new, and how many were already stored.
    (A named tuple: made once per request on the ingest path, at 40 % of the cost of a
    frozen dataclass.)"""

    accepted: int
    duplicates: int


def cloudevent_row(event: CloudEvent, received_at: datetime, text: str | None = None) -> EventRow:
    """The row of ``event``; ``text``, when given, is the event's JSON text to store as is."""
    return {
        "source": event["source"],
        "event_id": event["id"],
        "type": event["type"],
        "subject": event.get("subject"),
        "time": event.get("time"),
        "received_at": received_at,
        "event": event if text is None else text,
    }


def cdevent_row(
    event: CDEvent,
    spec_version: str,
    received_at: datetime,
    origin_seq: int | None = None,
    transformer: str | None = None,
) -> EventRow:
    context, subject = event["context"], event["subject"]
    return {
        "source": context["source"],
        "event_id": context["id"],
        "type": context["type"],
        "spec_version": spec_version,
        "subject_id": subject.get("id"),
        "timestamp": parse_rfc3339(context["timestamp"]),
        "received_at": received_at,
        "event": event,
        "origin_seq": origin_seq,
        "transformer": transformer,
    }


def _json_text(value: Any) -> str:
    """A JSON column's value as text (a string is JSON text already: see cloudevent_row)."""
    return value if value.__class__ is str else orjson.dumps(value).decode()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return sqlite_timestamp(value)
    if isinstance(value, dict | list):
        return _json_text(value)
    return value


_PLAIN = frozenset({str, int, float, type(None)})
# SQLite's limit on bound variables per statement (3.32+).
_SQLITE_MAX_VARIABLES = 32766


def sqlite_rows_per_statement(row: EventRow) -> int:
    """How many rows like ``row`` one SQLite INSERT takes (larger sets take several)."""
    return _SQLITE_MAX_VARIABLES // len(row)


def _insert_sqlite(driver: Any, table: Table, rows: list[EventRow]) -> set[Key] | None:
    # The raw DBAPI and one multi-row INSERT per chunk: SQLAlchemy's per-row parameter
    # processing cost five times the insert itself on this path. No RETURNING: the row
    # count says whether every row was new (the usual case), and only when some were not
    # are the new ones looked up. SQLite gives a rowid table's new rows max(rowid) + 1,
    # so the rows one statement inserted are the last `rowcount` rowids up to lastrowid.
    columns = list(rows[0])
    chunk = sqlite_rows_per_statement(rows[0])
    placeholders = "(" + ", ".join("?" * len(columns)) + ")"
    cursor = driver.cursor()
    written: list[tuple[list[EventRow], int, int]] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        statement = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
                     f"{', '.join([placeholders] * len(part))} "
                     "ON CONFLICT (source, event_id) DO NOTHING")
        cursor.execute(statement, [value if value.__class__ in _PLAIN else _sqlite_value(value)
                                   for row in part for value in row.values()])
        written.append((part, cursor.rowcount, cursor.lastrowid))
    if all(count == len(part) for part, count, _ in written):
        cursor.close()
        return None
    inserted: set[Key] = set()
    for part, count, last in written:
        if count == len(part):
            inserted.update((row["source"], row["event_id"]) for row in part)
        elif count > 0:
            cursor.execute(f"SELECT source, event_id FROM {table.name} "
                           "WHERE seq > ? AND seq <= ?", (last - count, last))
            inserted.update(cursor.fetchall())
    cursor.close()
    return inserted


@lru_cache(maxsize=16)
def _postgresql_insert(table: Table, columns: tuple[str, ...]) -> tuple[str, tuple[bool, ...]]:
    """The unnest INSERT for ``columns``, and which columns are JSONB (sent as JSON text)."""
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    sql_types = [table.c[column].type.compile(dialect=dialect) for column in columns]
    # %b: arrays travel in binary format. In text format psycopg quotes every element
    # with a regular expression (each '"' of the JSON text escaped): 8 ms per 100 events
    # on the client, against ~2 ms for the INSERT on the server.
    unnest = ", ".join(f"%b::{sql_type}[]" for sql_type in sql_types)
    statement = (f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM "
                 f"unnest({unnest}) ON CONFLICT (source, event_id) DO NOTHING "
                 "RETURNING source, event_id")
    return statement, tuple(sql_type == "JSONB" for sql_type in sql_types)


def _insert_postgresql(driver: Any, table: Table, rows: list[EventRow]) -> set[Key]:
    # One statement for the whole group: each column travels as an array and unnest()
    # turns them back into rows, so the server parses and plans once.
    columns = tuple(rows[0])
    statement, is_json = _postgresql_insert(table, columns)
    arrays: list[list[Any]] = []
    for column, json in zip(columns, is_json, strict=True):
        if json:
            arrays.append([_json_text(row[column]) for row in rows])
        else:
            arrays.append([row[column] for row in rows])
    cursor = driver.cursor()
    cursor.execute(statement, arrays)
    inserted = {(source, event_id) for source, event_id in cursor.fetchall()}
    cursor.close()
    return inserted


def insert_groups(
    connection: Connection, table: Table, groups: Sequence[list[EventRow]]
) -> list[InsertOutcome]:
    """Store several requests' events in one statement; count per request what was new.

    An event that appears twice (in the store already, or earlier in these groups)
    is a duplicate; its first appearance is the one accepted. Runs in the connection's
    current transaction.
    """
    driver = connection.connection.driver_connection
    return insert_groups_dbapi(driver, connection.dialect.name, table, groups)


def insert_groups_dbapi(
    driver: Any, dialect: str, table: Table, groups: Sequence[list[EventRow]]
) -> list[InsertOutcome]:
    """:func:`insert_groups` on a DBAPI connection (``dialect``: ``sqlite`` or ``postgresql``),
    for the group committer, which runs its transactions without SQLAlchemy's machinery."""
    rows = [row for group in groups for row in group]
    if not rows:
        return [InsertOutcome(0, 0) for _ in groups]
    # Both databases insert a statement's rows in order, so of two with one key the first
    # is stored and the second ignored: no need to look for repeats first (a set lookup per
    # row, for groups that almost never have any).
    inserted: set[Key] | None
    if dialect == "postgresql":
        inserted = _insert_postgresql(driver, table, rows)
    else:
        inserted = _insert_sqlite(driver, table, rows)
    if inserted is None:
        return [InsertOutcome(len(group), 0) for group in groups]
    outcomes = []
    for group in groups:
        accepted = 0
        for row in group:
            key = (row["source"], row["event_id"])
            if key in inserted:
                inserted.discard(key)  # any later appearance is a duplicate
                accepted += 1
        outcomes.append(InsertOutcome(accepted, len(group) - accepted))
    return outcomes


def _newest_first(query: Select[Any], table: Table, limit: int, before: int | None) -> Select[Any]:
    if before is not None:
        query = query.where(table.c.seq < before)
    return query.order_by(table.c.seq.desc()).limit(limit)


def latest_cloudevents(
    connection: Connection,
    *,
    type: str | None = None,
    source: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> Sequence[Row[Any]]:
    table = cloudevents_raw
    query = select(table)
    for column, value in (("type", type), ("source", source), ("status", status)):
        if value is not None:
            query = query.where(table.c[column] == value)
    return connection.execute(_newest_first(query, table, limit, before)).all()


def latest_cdevents(
    connection: Connection,
    *,
    type: str | None = None,
    origin_seq: int | None = None,
    limit: int = 50,
    before: int | None = None,
) -> Sequence[Row[Any]]:
    table = cdevents_raw
    query = select(table)
    if type is not None and type.startswith("dev.cdevents.") and type.count(".") == 3:
        # dev.cdevents.<subject>.<predicate> without its version: any version of it.
        query = query.where(table.c.type.startswith(type + ".", autoescape=True))
    elif type is not None:
        query = query.where(table.c.type == type)
    if origin_seq is not None:
        query = query.where(table.c.origin_seq == origin_seq)
    return connection.execute(_newest_first(query, table, limit, before)).all()


def claim_pending(connection: Connection, table: Table, limit: int) -> Sequence[Row[Any, Any]]:
    """The oldest pending rows; on PostgreSQL locked for this transaction, skipping rows
    other workers hold, so replicas share the queue without blocking or double-processing."""
    query = (select(table.c.seq, table.c.event).where(table.c.status == "pending")
             .order_by(table.c.seq).limit(limit))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return connection.execute(query).all()


def still_pending(connection: Connection, table: Table, seqs: Sequence[int]) -> set[int]:
    if not seqs:
        return set()
    query = select(table.c.seq).where(table.c.seq.in_(seqs), table.c.status == "pending")
    return set(connection.execute(query).scalars())


def set_statuses(connection: Connection, table: Table,
                 outcomes: Sequence[tuple[int, str, str | None]]) -> None:
    """Record (seq, status, error) for processed rows."""
    if not outcomes:
        return
    statement = (update(table).where(table.c.seq == bindparam("b_seq"))
                 .values(status=bindparam("b_status"), error=bindparam("b_error")))
    if "attempts" in table.c:
        statement = statement.values(attempts=table.c.attempts + 1)
    connection.execute(statement, [{"b_seq": seq, "b_status": status, "b_error": error}
                                   for seq, status, error in outcomes])


def count_by_status(connection: Connection, table: Table) -> dict[str, int]:
    query = select(table.c.status, func.count()).group_by(table.c.status)
    return {status: count for status, count in connection.execute(query).all()}


def reset_for_rerouting(connection: Connection, *, since: datetime | None = None,
                        failed_only: bool = False) -> int:
    """Send raw events back to the router, dropping the CDEvents they produced before.

    The derived CDEvents are deleted rather than kept: a changed mapping produces the
    same deterministic ids with new content, which must replace the old.
    """
    raw = cloudevents_raw
    chosen = select(raw.c.seq).where(raw.c.status != "pending")
    if since is not None:
        chosen = chosen.where(raw.c.received_at >= since)
    if failed_only:
        chosen = chosen.where(raw.c.status == "failed")
    connection.execute(delete(cdevents_raw).where(cdevents_raw.c.origin_seq.in_(chosen)))
    result = connection.execute(update(raw).where(raw.c.seq.in_(chosen))
                                .values(status="pending", error=None))
    return result.rowcount

"""Portable SQL for the UTC calendar of a timestamp column, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Date, String, case
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class utc_day(FunctionElement[str]):
    """The UTC date of a timestamp column as ``YYYY-MM-DD`` text."""

    type = String()
    inherit_cache = True


class utc_time_of_day(FunctionElement[str]):
    """The UTC time of day of a timestamp column as ``HH:MM:SS.ffffff`` text."""

    type = String()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text (schema.UTCDateTime).
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(timezone('UTC', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


@compiles(utc_time_of_day)
def _utc_time_sqlite(element: utc_time_of_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({compiler.process(element.clauses, **kw)}, 12, 15)"


@compiles(utc_time_of_day, "postgresql")
def _utc_time_postgresql(element: utc_time_of_day, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(timezone('UTC', {column}), 'HH24:MI:SS.US')"


def flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 where ``condition`` holds, else 0 (sums the same on both back-ends)."""
    return case((condition, 1), else_=0)


class utc_date(FunctionElement[Any]):
    """The UTC date of a timestamp column, as a DATE (to fill a Date column)."""

    type = Date()
    inherit_cache = True


@compiles(utc_date)
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy keeps a Date in SQLite as 'YYYY-MM-DD' text.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


class unindexed(FunctionElement[Any]):
    """A column that no index may serve on SQLite (unary ``+``, as SQLite's documentation
    advises): its planner has no statistics and prefers the longest index prefix even where
    another index is far more selective. PostgreSQL plans by statistics and sees the column."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(unindexed)
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(unindexed, "postgresql")
def _unindexed_postgresql(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)

"""Portable SQL for the UTC calendar of a timestamp column, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Date, Float, String, case
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


class seconds_between(FunctionElement[float]):
    """``later - earlier`` in seconds: exact to the microsecond on PostgreSQL, and on SQLite
    whole seconds exactly plus the difference of the two fractions."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    # strftime('%s') rounds fractional seconds, so whole seconds come from the text without
    # its fraction ('YYYY-MM-DD HH:MM:SS') and the fraction ('.ffffff') is added apart.
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return (f"((strftime('%s', substr({later}, 1, 19)) - strftime('%s', substr({earlier}, 1, 19)))"
            f" + (CAST(substr({later}, 20) AS REAL) - CAST(substr({earlier}, 20) AS REAL)))")


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    earlier, later = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION)"

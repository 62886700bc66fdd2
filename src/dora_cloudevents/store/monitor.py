"""Tailing the raw logs for the live event monitor: new rows by seq, cheaply, missing none.

A stream remembers the highest ``seq`` it has seen in each log and asks only for rows above
it (a primary-key range scan). On PostgreSQL transactions commit out of order, so a row with a
lower seq can appear after a higher one was seen: the seqs skipped over are kept as *holes*
and asked for again until they appear or a grace period passes (a rolled-back insert or an
``ON CONFLICT DO NOTHING`` duplicate leaves a hole that never fills). Any number of server
processes may write the logs; the database is the only thing streams look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Table, func, or_, select

from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw

SomeRow = Row[*tuple[Any, ...]]

HOLE_GRACE_SECONDS = 30.0
"""How long a skipped seq is looked for again: longer than any ingest transaction lasts."""
MAX_HOLES = 64
"""Ranges of skipped seqs kept per log (oldest are dropped first)."""


@dataclass
class _Hole:
    low: int
    high: int
    until: float


@dataclass
class LogTail:
    """The position of one stream in one log."""

    table: Table
    after: int
    holes: list[_Hole] = field(default_factory=list)

    def new_seqs(self, connection: Connection, limit: int) -> list[int]:
        """Seqs committed since the last call, oldest first (at most ``limit`` past ``after``)."""
        seq = self.table.c.seq
        now = time.monotonic()
        self.holes = [hole for hole in self.holes if hole.until > now]
        ahead = list(connection.execute(
            select(seq).where(seq > self.after).order_by(seq).limit(limit)).scalars())
        filled: list[int] = []
        if self.holes:
            filled = list(connection.execute(select(seq).where(or_(*(
                seq.between(hole.low, hole.high) for hole in self.holes)))).scalars())
            self._forget(filled)
        expected = self.after + 1
        for found in ahead:
            if found > expected:
                self.holes.append(_Hole(expected, found - 1, now + HOLE_GRACE_SECONDS))
            expected = found + 1
        self.holes = self.holes[-MAX_HOLES:]
        if ahead:
            self.after = ahead[-1]
        return sorted(filled) + ahead

    def _forget(self, seqs: Iterable[int]) -> None:
        for found in seqs:
            for hole in list(self.holes):
                if hole.low <= found <= hole.high:
                    self.holes.remove(hole)
                    if hole.low < found:
                        self.holes.append(_Hole(hole.low, found - 1, hole.until))
                    if found < hole.high:
                        self.holes.append(_Hole(found + 1, hole.high, hole.until))
                    break


def newest_seq(connection: Connection, table: Table) -> int:
    """The highest seq in ``table`` (0 when it is empty): where a new stream starts."""
    return int(connection.execute(select(func.coalesce(func.max(table.c.seq), 0))).scalar_one())


_RAW_SUMMARY = (cloudevents_raw.c.seq, cloudevents_raw.c.received_at, cloudevents_raw.c.status,
                cloudevents_raw.c.error, cloudevents_raw.c.event_id, cloudevents_raw.c.source,
                cloudevents_raw.c.type, cloudevents_raw.c.subject, cloudevents_raw.c.time)
_CD_SUMMARY = (cdevents_raw.c.seq, cdevents_raw.c.received_at, cdevents_raw.c.status,
               cdevents_raw.c.error, cdevents_raw.c.event_id, cdevents_raw.c.source,
               cdevents_raw.c.type, cdevents_raw.c.subject_id, cdevents_raw.c.timestamp,
               cdevents_raw.c.origin_seq, cdevents_raw.c.transformer)


def raw_summaries(connection: Connection, seqs: Sequence[int], *, type: str | None = None,
                  source: str | None = None) -> Sequence[SomeRow]:
    """The raw CloudEvents among ``seqs`` that match the filters, without their payloads."""
    if not seqs:
        return []
    table = cloudevents_raw
    query = select(*_RAW_SUMMARY).where(table.c.seq.in_(seqs))
    for column, value in (("type", type), ("source", source)):
        if value:
            query = query.where(table.c[column] == value)
    return connection.execute(query.order_by(table.c.seq)).all()


def cdevent_summaries(connection: Connection, seqs: Sequence[int]) -> Sequence[SomeRow]:
    """The CDEvents among ``seqs``, without their payloads."""
    if not seqs:
        return []
    query = select(*_CD_SUMMARY).where(cdevents_raw.c.seq.in_(seqs))
    return connection.execute(query.order_by(cdevents_raw.c.seq)).all()


def raw_statuses(connection: Connection, seqs: Iterable[int]) -> Sequence[SomeRow]:
    """``(seq, status, error)`` of the given raw CloudEvents."""
    chosen = list(seqs)
    if not chosen:
        return []
    table = cloudevents_raw
    query = select(table.c.seq, table.c.status, table.c.error).where(table.c.seq.in_(chosen))
    return connection.execute(query).all()


def produced_by(connection: Connection, origin_seqs: Sequence[int]) -> Sequence[SomeRow]:
    """Summaries of the CDEvents the given raw CloudEvents produced."""
    if not origin_seqs:
        return []
    query = select(*_CD_SUMMARY).where(cdevents_raw.c.origin_seq.in_(origin_seqs))
    return connection.execute(query.order_by(cdevents_raw.c.seq)).all()


def recent_types_and_sources(connection: Connection,
                             scan: int = 500) -> tuple[list[str], list[str]]:
    """Distinct types and sources of the newest ``scan`` raw events (the filter suggestions)."""
    table = cloudevents_raw
    newest = (select(table.c.type, table.c.source).order_by(table.c.seq.desc())
              .limit(scan).subquery())
    rows = connection.execute(select(newest.c.type, newest.c.source)).all()
    return sorted({row.type for row in rows}), sorted({row.source for row in rows})


def one_raw_event(connection: Connection, seq: int) -> SomeRow | None:
    return connection.execute(select(cloudevents_raw).where(cloudevents_raw.c.seq == seq)).first()


def one_cdevent(connection: Connection, seq: int) -> SomeRow | None:
    return connection.execute(select(cdevents_raw).where(cdevents_raw.c.seq == seq)).first()



def recent_raw(connection: Connection, upto: int, limit: int, *, type: str | None = None,
               source: str | None = None) -> Sequence[SomeRow]:
    """``(seq, status)`` of the newest raw events at or below ``upto`` matching the filters."""
    table = cloudevents_raw
    query = select(table.c.seq, table.c.status).where(table.c.seq <= upto)
    for column, value in (("type", type), ("source", source)):
        if value:
            query = query.where(table.c[column] == value)
    return connection.execute(query.order_by(table.c.seq.desc()).limit(limit)).all()


def native_cdevents(connection: Connection, limit: int, *, type: str | None = None,
                    source: str | None = None) -> Sequence[SomeRow]:
    """Summaries of the newest CDEvents posted as such (not made by the router)."""
    table = cdevents_raw
    query = select(*_CD_SUMMARY).where(table.c.origin_seq.is_(None))
    for column, value in (("type", type), ("source", source)):
        if value:
            query = query.where(table.c[column] == value)
    return connection.execute(query.order_by(table.c.seq.desc()).limit(limit)).all()


def trouble(connection: Connection, status: str, key: str,
            limit: int = 10) -> list[tuple[str, int, str | None]]:
    """``(source or type, count, latest error)`` of raw events with ``status``, worst first.

    Backs the monitor's "what needs attention" panel: which sources fail and why, which
    types no route matches.
    """
    table = cloudevents_raw
    column = table.c[key]
    counted = connection.execute(
        select(column, func.count(), func.max(table.c.seq)).where(table.c.status == status)
        .group_by(column).order_by(func.count().desc()).limit(limit)).all()
    latest = {seq: error for seq, error in connection.execute(
        select(table.c.seq, table.c.error).where(table.c.seq.in_([row[2] for row in counted])))}
    return [(row[0], row[1], latest.get(row[2])) for row in counted]

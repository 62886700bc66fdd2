"""Recovery and restore times, kept in seconds beside the timestamps they come from.

Linking writes ``deployments.recovery_seconds`` and ``incidents.restore_seconds`` whenever it
writes ``recovered_at`` and ``resolved_at`` (with ``duration_seconds``, as it computes lead
times), so their medians sort a plain, covered column; ``fill_durations`` recomputes them
for databases projected before they existed and for facts written by other means.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from dora_cloudevents.store.schema import deployments, incidents


def duration_seconds(start: datetime | None, end: datetime | None) -> float | None:
    """``end - start`` in seconds; None when either is unknown."""
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


# (table, key, start, end, the stored end - start)
DURATIONS = ((deployments, "cdevent_seq", "time", "recovered_at", "recovery_seconds"),
             (incidents, "key", "detected_at", "resolved_at", "restore_seconds"))


def fill_durations(connection: Connection) -> None:
    """Recompute ``deployments.recovery_seconds`` and ``incidents.restore_seconds`` (what
    linking keeps beside the timestamps) from those timestamps."""
    for table, key, start, end, seconds in DURATIONS:
        column = table.c
        connection.execute(update(table).where(column[end].is_(None),
                                               column[seconds].is_not(None))
                           .values({seconds: None}))
        rows = connection.execute(select(column[key], column[start], column[end])
                                  .where(column[end].is_not(None))).all()
        if rows:
            connection.execute(
                update(table).where(column[key] == bindparam("b_key"))
                .values({seconds: bindparam("b_seconds")}),
                [{"b_key": row[0], "b_seconds": duration_seconds(row[1], row[2])}
                 for row in rows])

"""GET /api/v1/events/stream: the event monitor's Server-Sent Events, polled from the database.

Why sse-starlette rather than a bare StreamingResponse: it answers keep-alive pings, notices
a client that went away, and ends open streams when uvicorn is asked to stop (a plain
streaming response keeps uvicorn's graceful shutdown waiting for ever).

Polling the database, not an in-process signal, because events may be ingested and routed by
other processes (the distributed mode); each poll is a primary-key range scan per log.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from sqlalchemy import Engine, Row
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from dora_cloudevents.events import format_rfc3339
from dora_cloudevents.store import monitor
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw

POLL_SECONDS = 1.0
BATCH = 200
"""Rows read per log and poll; a burst larger than this arrives over several polls."""
WATCHED = 500
"""Raw events a stream keeps watching for their routing outcome and CDEvents."""
PING_SECONDS = 15
MAX_SEQ = 2**63 - 1
"""The largest seq the databases' 64-bit integers hold; a position past it is not one."""
# What /openapi.json says of a 200: EventSourceResponse sets its media type per instance,
# so FastAPI, which reads it off the class, would document none.
STREAM_RESPONSE: dict[int | str, dict[str, Any]] = {200: {
    "description": "A stream that stays open: `cloudevent`, `status` and `cdevent` messages, "
                   "each JSON with the message's position as its id, and a ping every "
                   f"{PING_SECONDS} s.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}}


def raw_summary(row: Row[Any]) -> dict[str, Any]:
    """A raw CloudEvent as the monitor lists it (the whole event is one click away)."""
    return {"seq": row.seq, "received_at": format_rfc3339(row.received_at),
            "status": row.status, "error": row.error, "id": row.event_id,
            "source": row.source, "type": row.type, "subject": row.subject, "time": row.time}


def cdevent_summary(row: Row[Any]) -> dict[str, Any]:
    return {"seq": row.seq, "received_at": format_rfc3339(row.received_at),
            "status": row.status, "error": row.error, "id": row.event_id,
            "source": row.source, "type": row.type, "subject": row.subject_id,
            "time": format_rfc3339(row.timestamp), "origin_seq": row.origin_seq,
            "transformer": row.transformer}


def parse_position(text: str | None) -> tuple[int, int] | None:
    """``"<raw seq>.<cdevent seq>"``, the SSE id of a message (and the ``after`` parameter)."""
    if not text:
        return None
    raw, _, cd = text.strip().partition(".")
    if not (raw.isdigit() and cd.isdigit()):
        return None
    position = int(raw), int(cd)
    return position if max(position) <= MAX_SEQ else None


class MonitorCursor:
    """One stream's position in both logs, its filters, and the raw events it watches."""

    def __init__(self, position: tuple[int, int], type: str | None, source: str | None) -> None:
        self.raw = monitor.LogTail(cloudevents_raw, position[0])
        self.cd = monitor.LogTail(cdevents_raw, position[1])
        self.type, self.source = type or None, source or None
        # Raw events shown and still pending: their outcome is sent when the router records it.
        self.pending: dict[int, str] = {}
        self.shown: deque[int] = deque(maxlen=WATCHED)

    @classmethod
    def start(cls, engine: Engine, position: tuple[int, int] | None, type: str | None,
              source: str | None) -> MonitorCursor:
        """A cursor after ``position`` (default: the newest rows), watching the raw events
        shown before it (the page's list) for their outcome."""
        with engine.connect() as connection:
            position = position or (monitor.newest_seq(connection, cloudevents_raw),
                                    monitor.newest_seq(connection, cdevents_raw))
            cursor = cls(position, type, source)
            recent = monitor.recent_raw(connection, position[0], WATCHED, type=cursor.type,
                                        source=cursor.source)
        for row in reversed(recent):
            cursor.shown.append(row.seq)
            if row.status == "pending":
                cursor.pending[row.seq] = row.status
        return cursor

    @property
    def position(self) -> str:
        return f"{self.raw.after}.{self.cd.after}"

    def poll(self, engine: Engine) -> list[tuple[str, dict[str, Any]]]:
        """(event name, data) of everything new since the last poll, oldest first."""
        with engine.connect() as connection:
            raw_rows = monitor.raw_summaries(connection, self.raw.new_seqs(connection, BATCH),
                                             type=self.type, source=self.source)
            statuses = monitor.raw_statuses(connection, self.pending)
            cd_rows = monitor.cdevent_summaries(connection, self.cd.new_seqs(connection, BATCH))
        messages = [("cloudevent", self._show(row)) for row in raw_rows]
        messages += self._outcomes(statuses)
        messages += [("cdevent", cdevent_summary(row)) for row in cd_rows if self._wanted(row)]
        return messages

    def _show(self, row: Row[Any]) -> dict[str, Any]:
        self.shown.append(row.seq)
        if row.status == "pending":
            self.pending[row.seq] = row.status
            while len(self.pending) > WATCHED:
                del self.pending[next(iter(self.pending))]
        return raw_summary(row)

    def _outcomes(self, rows: Sequence[Row[Any]]) -> list[tuple[str, dict[str, Any]]]:
        changed = []
        for row in rows:
            if row.status != "pending":
                del self.pending[row.seq]
                changed.append(("status", {"seq": row.seq, "status": row.status,
                                           "error": row.error}))
        return changed

    def _wanted(self, row: Row[Any]) -> bool:
        """A CDEvent made from a raw event this stream showed, or a native one that matches."""
        if row.origin_seq is not None:
            return row.origin_seq in self.shown
        return (self.type in (None, row.type)) and (self.source in (None, row.source))


async def _messages(engine: Engine, cursor: MonitorCursor) -> AsyncIterator[ServerSentEvent]:
    while True:
        for name, data in await run_in_threadpool(cursor.poll, engine):
            yield ServerSentEvent(data=orjson.dumps(data).decode(), event=name,
                                  id=cursor.position)
        await asyncio.sleep(POLL_SECONDS)


def event_stream(engine: Engine, cursor: MonitorCursor) -> EventSourceResponse:
    # X-Accel-Buffering: proxies (nginx ingress) must pass each message on at once.
    return EventSourceResponse(_messages(engine, cursor), ping=PING_SECONDS,
                               headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

"""GET /api/v1/events and /api/v1/cdevents: the stored raw events, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from sqlalchemy import Engine, Row
from sse_starlette import EventSourceResponse

from dora_cloudevents.api.state import read_access, request_engine
from dora_cloudevents.api.stream import (
    MAX_SEQ,
    STREAM_RESPONSE,
    MonitorCursor,
    cdevent_summary,
    event_stream,
    parse_position,
)
from dora_cloudevents.events import format_rfc3339
from dora_cloudevents.problems import Problem
from dora_cloudevents.store import monitor
from dora_cloudevents.store.events import latest_cdevents, latest_cloudevents

Limit = Annotated[int, Query(ge=1, le=1000, description="How many events, newest first.")]
# le: a larger number overflows the databases' 64-bit integers (a 500 instead of a 400).
Before = Annotated[int | None, Query(ge=1, le=MAX_SEQ,
                                     description="Only events older than this seq.")]
STATUSES = ("pending", "routed", "unrouted", "failed")


def raw_event_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "received_at": format_rfc3339(row.received_at),
        "status": row.status,
        "error": row.error,
        "id": row.event_id,
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "time": row.time,
        "event": row.event,
    }


def _link_next(request: Request, response: Response, rows: Sequence[Row[Any]], limit: int
               ) -> None:
    """RFC 8288 ``Link: <...before=N>; rel="next"`` when a full page suggests more."""
    if len(rows) == limit:
        url = request.url.include_query_params(before=rows[-1].seq)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'


def raw_event_detail(engine: Engine, seq: int) -> dict[str, Any]:
    """One raw CloudEvent whole, with the CDEvents it produced (or why it produced none)."""
    with engine.connect() as connection:
        row = monitor.one_raw_event(connection, seq) if seq <= MAX_SEQ else None
        if row is None:
            raise Problem(404, f"no raw event with seq {seq}")
        produced = monitor.produced_by(connection, [seq])
    return {**raw_event_view(row), "cdevents": [cdevent_summary(item) for item in produced]}


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["events"], dependencies=[Depends(read_access)])

    @router.get("/events", summary="Raw CloudEvents as received, newest first")
    def list_events(
        request: Request,
        response: Response,
        type: str | None = None,
        source: str | None = None,
        status: Annotated[str | None, Query(pattern="^(pending|routed|unrouted|failed)$")] = None,
        limit: Limit = 50,
        before: Before = None,
    ) -> list[dict[str, Any]]:
        with request_engine(request).connect() as connection:
            rows = latest_cloudevents(connection, type=type, source=source, status=status,
                                      limit=limit, before=before)
        _link_next(request, response, rows, limit)
        return [raw_event_view(row) for row in rows]

    @router.get("/events/stream", summary="New raw CloudEvents and CDEvents as Server-Sent "
                "Events", response_class=EventSourceResponse, responses=STREAM_RESPONSE)
    def stream_events(
        request: Request,
        type: Annotated[str | None, Query(description="Only raw events of this type.")] = None,
        source: Annotated[str | None, Query(description="Only raw events from this "
                                            "source.")] = None,
        after: Annotated[str | None, Query(pattern=r"^\d+\.\d+$", description="Start after "
                                           "this position (an earlier message's id).")] = None,
        last_event_id: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> EventSourceResponse:
        position = parse_position(last_event_id) or parse_position(after)
        if after is not None and parse_position(after) is None:
            raise Problem(400, f"after={after!r} is past the largest position "
                          f"({MAX_SEQ}.{MAX_SEQ})")
        cursor = MonitorCursor.start(request_engine(request), position, type, source)
        return event_stream(request_engine(request), cursor)

    @router.get("/events/{seq}", summary="One raw CloudEvent whole, with the CDEvents it "
                "produced")
    def one_event(request: Request,
                  seq: Annotated[int, Path(ge=1, le=MAX_SEQ, description="The event's seq.")]
                  ) -> dict[str, Any]:
        return raw_event_detail(request_engine(request), seq)

    @router.get("/cdevents", summary="Stored CDEvents, newest first, each returned whole")
    def list_cdevents(
        request: Request,
        response: Response,
        type: str | None = None,
        origin_seq: Annotated[int | None, Query(ge=1, description="Only CDEvents produced "
                                                "from this raw event.")] = None,
        limit: Limit = 50,
        before: Before = None,
    ) -> list[dict[str, Any]]:
        with request_engine(request).connect() as connection:
            rows = latest_cdevents(connection, type=type, origin_seq=origin_seq, limit=limit,
                                   before=before)
        _link_next(request, response, rows, limit)
        return [row.event for row in rows]

    return router

"""GET /api/v1/events and /api/v1/cdevents: the stored raw events, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Engine, Row

from dora_cloudevents.auth import require_bearer
from dora_cloudevents.events import format_rfc3339
from dora_cloudevents.store.events import latest_cdevents, latest_cloudevents

Limit = Annotated[int, Query(ge=1, le=1000, description="How many events, newest first.")]
# le: a larger number overflows the databases' 64-bit integers (a 500 instead of a 400).
Before = Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                     description="Only events older than this seq.")]
STATUSES = ("pending", "routed", "unrouted", "failed")


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


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


def _read_access(request: Request) -> None:
    """Bearer token from DORA_READ_TOKENS, when any is configured."""
    require_bearer(request, request.app.state.settings.read_tokens, "read API")


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["events"], dependencies=[Depends(_read_access)])

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
        with _engine(request).connect() as connection:
            rows = latest_cloudevents(connection, type=type, source=source, status=status,
                                      limit=limit, before=before)
        _link_next(request, response, rows, limit)
        return [raw_event_view(row) for row in rows]

    @router.get("/cdevents", summary="Stored CDEvents, newest first, each returned whole")
    def list_cdevents(
        request: Request,
        response: Response,
        type: str | None = None,
        limit: Limit = 50,
        before: Before = None,
    ) -> list[dict[str, Any]]:
        with _engine(request).connect() as connection:
            rows = latest_cdevents(connection, type=type, limit=limit, before=before)
        _link_next(request, response, rows, limit)
        return [row.event for row in rows]

    return router

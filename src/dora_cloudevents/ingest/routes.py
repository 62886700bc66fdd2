"""The ingest endpoints: POST / and /events (CloudEvents), POST /cdevents (CDEvents only)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Table
from starlette.requests import Request
from starlette.responses import Response

from dora_cloudevents.auth import require_bearer
from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.cdevents.binding import binding_problem
from dora_cloudevents.config import Settings
from dora_cloudevents.events import CloudEvent
from dora_cloudevents.ingest.cloudevents import (
    Limits,
    check_attributes,
    load_json,
    media_type,
    parse_http,
)
from dora_cloudevents.ingest.committer import GroupCommitter
from dora_cloudevents.problems import Problem, storage_unavailable
from dora_cloudevents.store.db import is_unavailable
from dora_cloudevents.store.events import EventRow, InsertOutcome, cdevent_row, cloudevent_row
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw

Endpoint = Callable[[Request], Awaitable[Response]]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing with 413 as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > limit:
            raise Problem(413, f"the body is {declared} bytes; the limit is {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def store_rows(committer: GroupCommitter, table: Table, rows: list[EventRow]) -> Response:
    """Commit ``rows`` through the group committer: 202 with the counts, 503 if storage is down."""
    try:
        outcome: InsertOutcome = await committer.submit(table, rows)
    except Exception as error:
        if is_unavailable(error):
            raise storage_unavailable() from error
        raise
    body = {"accepted": outcome.accepted, "duplicates": outcome.duplicates}
    return Response(orjson.dumps(body), status_code=202, media_type="application/json")


def _cdevent_rows(events: list[CloudEvent], now: datetime) -> list[EventRow]:
    rows = []
    for index, event in enumerate(events):
        where = "the CloudEvent" if len(events) == 1 else f"event [{index}]"
        cdevent = event.get("data")
        try:
            info = validate_cdevent(cdevent)
        except CDEventError as error:
            raise Problem(400, f"{where} does not carry a valid CDEvent: {error}") from None
        mismatch = binding_problem(event, cdevent)  # type: ignore[arg-type]
        if mismatch:
            raise Problem(400, f"{where}: {mismatch}")
        rows.append(cdevent_row(cdevent, info.spec_version, now))  # type: ignore[arg-type]
    return rows


def _as_bare_cdevent(payload: Any) -> CloudEvent:
    """Wrap a CDEvent posted without a CloudEvent envelope, as the binding rules would."""
    context = payload.get("context") if isinstance(payload, dict) else None
    if not isinstance(context, dict):
        raise Problem(400, "the body is neither a CloudEvent nor a CDEvent (no 'context' object)")
    return {"specversion": "1.0", "id": context.get("id"), "source": context.get("source"),
            "type": context.get("type"), "data": payload}


class IngestEndpoints:
    def __init__(self, settings: Settings, committer: GroupCommitter) -> None:
        self.settings = settings
        self.committer = committer
        self.limits = Limits(max_batch_events=settings.max_batch_events)

    def handlers(self) -> dict[str, Endpoint]:
        """POST handlers by path."""
        return {"/": self.cloudevents, "/events": self.cloudevents, "/cdevents": self.cdevents}

    async def _events(self, request: Request) -> list[CloudEvent]:
        require_bearer(request, self.settings.ingest_tokens, "ingest")
        body = await read_body(request, self.settings.max_body_bytes)
        return parse_http(request.headers, body, self.limits)

    async def cloudevents(self, request: Request) -> Response:
        events = await self._events(request)
        now = datetime.now(UTC)
        rows = [cloudevent_row(event, now) for event in events]
        return await self._store(cloudevents_raw, rows)

    async def cdevents(self, request: Request) -> Response:
        headers = request.headers
        if media_type(headers.get("content-type")) == "application/json" and (
            "ce-specversion" not in headers
        ):
            require_bearer(request, self.settings.ingest_tokens, "ingest")
            body = await read_body(request, self.settings.max_body_bytes)
            payload = load_json(body, "the body")
            if isinstance(payload, dict) and "specversion" in payload:
                events = [check_attributes(payload, limits=self.limits)]
            else:
                events = [_as_bare_cdevent(payload)]
        else:
            events = await self._events(request)
        rows = _cdevent_rows(events, datetime.now(UTC))
        return await self._store(cdevents_raw, rows)

    async def _store(self, table: Table, rows: list[EventRow]) -> Response:
        return await store_rows(self.committer, table, rows)

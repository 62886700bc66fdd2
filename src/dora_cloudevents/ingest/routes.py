"""The ingest endpoints: POST / and /events (CloudEvents), POST /cdevents (CDEvents only).

They run on the raw ASGI interface: the front door (``IngestFirst`` in front.py) checks the
headers, calls an endpoint's ``admit``, reads the body (``receive_body``), has ``convert`` turn
it into rows, and answers 202 once the group committer has committed them. Endpoints are
plain functions, not coroutines: a request waiting for its commit is suspended and resumed
through every coroutine between uvicorn and the commit, so the front door's is the only one.
Starlette's Request, Headers and Response objects and the async generator behind
``request.stream()`` cost more per request than everything else the handler does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import SecretStr
from sqlalchemy import Table
from starlette.requests import Request
from starlette.types import Receive, Scope

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
from dora_cloudevents.ingest.guards import ReadDeadlines
from dora_cloudevents.problems import Problem
from dora_cloudevents.store.events import EventRow, InsertOutcome, cdevent_row, cloudevent_row
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw


class ClientDisconnected(Exception):
    """The client went away before its request body arrived; there is no one to answer."""


def check_declared_length(declared: str | None, limit: int) -> None:
    """400 for a malformed Content-Length, 413 for one over ``limit``, before any body is read."""
    if declared is not None:
        if not declared.isdigit():
            raise Problem(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > limit:
            raise Problem(413, f"the body is {declared} bytes; the limit is {limit} bytes")


class IngestRequest:
    """What an ingest endpoint needs of an HTTP request, read straight off the ASGI scope."""

    __slots__ = ("headers", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        # Names arrive lower-cased (the ASGI spec; Starlette relies on it too). Built from
        # the end, so the first of repeated headers wins, as with Starlette's Headers.get().
        raw = scope["headers"]
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(raw if isinstance(raw, list) else list(raw))
        }


async def receive_body(receive: Receive, request: IngestRequest, limit: int,
                       deadlines: ReadDeadlines) -> bytes:
    """The request body: 413 as soon as it is known to exceed ``limit``, 408 when it takes
    longer than the read deadline."""
    check_declared_length(request.headers.get("content-length"), limit)
    task = deadlines.begin()
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise ClientDisconnected()
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Problem(413, f"the body exceeds the limit of {limit} bytes")
            if not message.get("more_body", False):
                if not chunks:
                    return chunk
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
    except asyncio.CancelledError:
        if deadlines.timed_out(task):
            raise deadlines.problem() from None
        raise
    finally:
        deadlines.end(task)


class IterationClock:
    """The current UTC time, read once per event-loop iteration.

    Requests read in the same iteration share one ``datetime``: reading the clock and, on
    SQLite, formatting the stored timestamp once for all of them instead of once for each
    saved ~2 µs per single event (a thirtieth of its whole cost).
    """

    __slots__ = ("_now",)

    def __init__(self) -> None:
        self._now: datetime | None = None

    def now(self) -> datetime:
        now = self._now
        if now is None:
            now = self._now = datetime.now(UTC)
            asyncio.get_running_loop().call_soon(self._forget)
        return now

    def _forget(self) -> None:
        self._now = None


Rows = tuple[Table, list[EventRow]]
"""What a request stores: rows for one table, committed all or nothing."""


class IngestEndpoint(NamedTuple):
    """One ingest path: ``admit`` runs before the body is read (so a request without its
    credential costs no read), ``convert`` turns the body into rows or raises a Problem."""

    admit: Callable[[IngestRequest], None]
    convert: Callable[[IngestRequest, bytes], Rows]


def bearer_tokens(tokens: Sequence[SecretStr]) -> Callable[[IngestRequest], None]:
    """An ``admit`` that asks for one of ``tokens`` (401/403), or admits all when there are
    none."""

    def admit(request: IngestRequest) -> None:
        if tokens:
            require_bearer(Request(request.scope), tokens, "ingest")

    return admit


async def read_body(request: Request, limit: int) -> bytes:
    """The body of a Starlette request, refusing with 413 once it is known to exceed ``limit``."""
    check_declared_length(request.headers.get("content-length"), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def accepted(outcome: InsertOutcome) -> bytes:
    """The body of the 202 that answers a request whose events are committed. (A store that
    is down raises instead: IngestFirst answers 503 for it, as for any request.)"""
    # What orjson.dumps() makes of {"accepted": a, "duplicates": d}, without the dict.
    return b'{"accepted":%d,"duplicates":%d}' % outcome


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
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.limits = Limits.of(settings)
        self.clock = IterationClock()

    def endpoints(self) -> dict[str, IngestEndpoint]:
        """The endpoints by path."""
        admit = bearer_tokens(self.settings.ingest_tokens)
        cloudevents = IngestEndpoint(admit, self.cloudevents)
        return {"/": cloudevents, "/events": cloudevents,
                "/cdevents": IngestEndpoint(admit, self.cdevents)}

    def cloudevents(self, request: IngestRequest, body: bytes) -> Rows:
        events, text = parse_http(request.headers, body, self.limits)
        now = self.clock.now()
        return cloudevents_raw, [cloudevent_row(event, now, text) for event in events]

    def cdevents(self, request: IngestRequest, body: bytes) -> Rows:
        headers = request.headers
        if media_type(headers.get("content-type")) == "application/json" and (
            "ce-specversion" not in headers
        ):
            payload = load_json(body, "the body", self.limits.max_json_depth)
            if isinstance(payload, dict) and "specversion" in payload:
                events = [check_attributes(payload, limits=self.limits)]
            else:
                events = [_as_bare_cdevent(payload)]
        else:
            events = parse_http(headers, body, self.limits).events
        return cdevents_raw, _cdevent_rows(events, self.clock.now())

"""The ingest endpoints: POST / and /events (CloudEvents), POST /cdevents (CDEvents only).

They run on the raw ASGI interface (``IngestFirst`` in app.py dispatches to them): headers
straight from the scope, the body straight from ``receive``, the answer as two ASGI
messages. Starlette's Request, Headers and Response objects and the async generator behind
``request.stream()`` cost more per request than everything else the handler does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr
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
from dora_cloudevents.ingest.committer import GroupCommitter
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
    """What an ingest handler needs of an HTTP request, read straight off the ASGI scope."""

    __slots__ = ("deadlines", "headers", "receive", "scope")

    def __init__(self, scope: Scope, receive: Receive, deadlines: ReadDeadlines) -> None:
        self.scope = scope
        self.receive = receive
        self.deadlines = deadlines
        # Names arrive lower-cased (the ASGI spec; Starlette relies on it too). Built from
        # the end, so the first of repeated headers wins, as with Starlette's Headers.get().
        raw = scope["headers"]
        self.headers: dict[str, str] = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in reversed(raw if isinstance(raw, list) else list(raw))
        }

    @property
    def path(self) -> str:
        path: str = self.scope["path"]
        return path

    def require_token(self, tokens: Sequence[SecretStr], realm: str) -> None:
        """401/403 unless a configured bearer token is presented (no-op without tokens)."""
        if tokens:
            require_bearer(Request(self.scope), tokens, realm)

    async def body(self, limit: int) -> bytes:
        """The request body: 413 as soon as it is known to exceed ``limit``, 408 when it
        takes longer than the read deadline."""
        check_declared_length(self.headers.get("content-length"), limit)
        task = self.deadlines.begin()
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                message = await self.receive()
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
            if self.deadlines.timed_out(task):
                raise self.deadlines.problem() from None
            raise
        finally:
            self.deadlines.end(task)


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


Reply = tuple[int, bytes]
"""An answer: the status and its JSON body."""

Endpoint = Callable[[IngestRequest], Awaitable[Reply]]


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


def accepted(outcome: InsertOutcome) -> Reply:
    """The answer to a request whose events are committed: 202 with the counts. (A store
    that is down raises instead: IngestFirst answers 503 for it, as for any request.)"""
    # What orjson.dumps() makes of {"accepted": a, "duplicates": d}, without the dict.
    return 202, b'{"accepted":%d,"duplicates":%d}' % outcome


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
        self.limits = Limits.of(settings)
        self.clock = IterationClock()

    def handlers(self) -> dict[str, Endpoint]:
        """POST handlers by path."""
        return {"/": self.cloudevents, "/events": self.cloudevents, "/cdevents": self.cdevents}

    async def cloudevents(self, request: IngestRequest) -> Reply:
        # Flat on purpose: each coroutine a request passes through costs it twice, on the
        # way to its commit and back after it (docs/benchmarks.md, "Fewer levels").
        request.require_token(self.settings.ingest_tokens, "ingest")
        body = await request.body(self.settings.max_body_bytes)
        events, text = parse_http(request.headers, body, self.limits)
        now = self.clock.now()
        rows = [cloudevent_row(event, now, text) for event in events]
        return accepted(await self.committer.submit(cloudevents_raw, rows))

    async def cdevents(self, request: IngestRequest) -> Reply:
        request.require_token(self.settings.ingest_tokens, "ingest")
        body = await request.body(self.settings.max_body_bytes)
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
        rows = _cdevent_rows(events, self.clock.now())
        return accepted(await self.committer.submit(cdevents_raw, rows))

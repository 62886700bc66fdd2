"""Structured logs: text or JSON lines, each carrying the id of the request it belongs to."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import sys
from collections.abc import Iterable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FORMATS = ("text", "json")
REQUEST_ID_HEADER = b"x-request-id"
# What a proxy or client may hand us as its id: short, printable, no spaces or quotes (it
# goes into logs and a response header). Anything else is replaced by an id of our own.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}\Z")
_REDACTED = "[redacted]"

# Our ids: a random prefix per process and a counter, 16 hex digits; unique across replicas
# and restarts, and cheaper than drawing random bytes for every request.
_PROCESS_PREFIX = secrets.token_hex(4)
_sequence = itertools.count(1)

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
log = logging.getLogger("dora_cloudevents.requests")


def current_request_id() -> str | None:
    """The id of the request being served in this context, if any."""
    return _request_id.get()


def request_id_for(scope: Scope) -> str:
    """The id of an HTTP request: the caller's ``X-Request-ID`` when it is sane, else ours."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return request_id_from(value.decode("latin-1"))
    return request_id_from(None)


def request_id_from(incoming: str | None) -> str:
    """``incoming``, the value of the request's ``X-Request-ID``, when it is sane; else an id
    of ours."""
    if incoming is not None and _SANE_ID.match(incoming):
        return incoming
    return f"{_PROCESS_PREFIX}{next(_sequence) & 0xFFFFFFFF:08x}"


def request_id_header(request_id: str) -> tuple[bytes, bytes]:
    """The response header that returns ``request_id`` to the caller."""
    return REQUEST_ID_HEADER, request_id.encode("ascii")


def bind_request_id(request_id: str) -> Token[str | None]:
    """Make ``request_id`` visible to the log lines written in this context until
    ``unbind_request_id``."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)


def log_answer(scope: Scope, status: int) -> None:
    """Log refusals and failures (status >= 400): method, path and status, never headers
    or bodies."""
    if status >= 400:
        log.info("%s %r answered %d", scope["method"], scope["path"], status)


def with_request_id(send: Send, scope: Scope, request_id: str) -> Send:
    """``send`` that adds the ``X-Request-ID`` header to the response and logs its status."""
    header = request_id_header(request_id)

    async def send_with_id(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), header]
            log_answer(scope, message["status"])
        await send(message)

    return send_with_id


class RequestIds:
    """ASGI middleware: gives every HTTP request an id (``request_id_for``), returns it in
    ``X-Request-ID``, makes it visible to every log line written while the request is
    served, and logs refusals and failures (``log_answer``). The ingest front door
    (ingest.front.IngestFirst) does the same with these functions for the requests it answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(scope)
        token = bind_request_id(request_id)
        try:
            await self.app(scope, receive, with_request_id(send, scope, request_id))
        finally:
            unbind_request_id(token)


class _Context(logging.Filter):
    """Adds the current request id to every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True


class _Redacting(logging.Formatter):
    """A formatter that masks any configured secret that made its way into a line."""

    def __init__(self, secret_values: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.secret_values = sorted({s for s in secret_values if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secret_values:
            if secret in text:
                text = text.replace(secret, _REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.render(record))

    def render(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


class JsonFormatter(_Redacting):
    """One JSON object per line: time, level, logger, message, request_id, exception."""

    def render(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (click's test runner and
    pytest swap it), not to the stream that was there when logging was configured."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(log_format: str = "text", secret_values: Iterable[str] = ()) -> None:
    """Send every log line to standard error in ``log_format``, masking ``secret_values``.
    Replaces the handler an earlier call installed; leaves other handlers alone."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: choose one of {', '.join(FORMATS)}")
    handler = _StandardError()
    handler.addFilter(_Context())
    handler.setFormatter(JsonFormatter(secret_values) if log_format == "json" else _Redacting(
        secret_values, "%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for previous in [h for h in root.handlers if isinstance(h, _StandardError)]:
        root.removeHandler(previous)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step
    # One line per request otherwise (dora-ce send, demo, remote transformers).
    logging.getLogger("httpx").setLevel(logging.WARNING)

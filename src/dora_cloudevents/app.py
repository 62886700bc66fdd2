"""The application factory: wires the stages chosen with --components into one ASGI app."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dora_cloudevents import __version__
from dora_cloudevents.api import events as events_api
from dora_cloudevents.api import health, prometheus
from dora_cloudevents.api import metrics as metrics_api
from dora_cloudevents.api import transform as transform_api
from dora_cloudevents.background import run_continuously
from dora_cloudevents.config import Settings
from dora_cloudevents.ingest.committer import GroupCommitter
from dora_cloudevents.ingest.guards import ReadDeadlines, header_problem
from dora_cloudevents.ingest.openapi import document_problems
from dora_cloudevents.ingest.routes import (
    ClientDisconnected,
    IngestEndpoint,
    IngestEndpoints,
    IngestRequest,
    accepted,
    receive_body,
)
from dora_cloudevents.ingest.webhooks import WebhookEndpoints
from dora_cloudevents.logs import (
    RequestIds,
    bind_request_id,
    request_id_from,
    request_id_header,
    unbind_request_id,
    with_request_id,
)
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.problems import (
    Problem,
    handle_problem,
    problem_response,
    storage_unavailable,
)
from dora_cloudevents.routing.router import Router
from dora_cloudevents.routing.targets import routing_from_settings
from dora_cloudevents.store.db import is_unavailable, refused_value
from dora_cloudevents.ui import pages as ui_pages

log = logging.getLogger(__name__)

COMPONENTS = ("ingest", "router", "projector", "transform", "api", "ui")
# `transform` serves the transformers to other routers; one process needs no such hop.
ALL_COMPONENTS = frozenset({"ingest", "router", "projector", "api", "ui"})
# GETs the web UI answers on paths where POST is ingest.
UI_PAGES = frozenset({"/", "/events"})
# Proxies whose X-Forwarded-* headers are believed: uvicorn's variable and default.
FORWARDED_ALLOW_IPS = "FORWARDED_ALLOW_IPS"
LOOPBACK = "127.0.0.1,::1"


def _validation_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if part not in ("query", "path"))
        parts.append(f"{where}: {item['msg']}")
    return problem_response(Problem(400, "; ".join(parts)), request.url.path)


def _http_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    if error.status_code == 404:
        detail = f"no such resource: {request.method} {request.url.path}"
    elif error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    return problem_response(
        Problem(error.status_code, detail, headers=error.headers), request.url.path
    )


def _server_error(request: Request, error: Exception) -> Response:
    if is_unavailable(error):
        return problem_response(storage_unavailable(), request.url.path)
    reason = refused_value(error)
    if reason is not None:
        # The database refused a value the request carried (PostgreSQL: a NUL character in
        # a text or a filter): the client's to fix, so a 400 naming it rather than a 500.
        log.warning("%s %s: the database refused a value: %s", request.method,
                    request.url.path, reason)
        return problem_response(Problem(400, f"the database cannot take a value of this "
                                        f"request: {reason}"), request.url.path)
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(Problem(500, "internal error; see the server log"), request.url.path)


class IngestFirst:
    """ASGI front door: POSTs to the ingest paths skip the API framework's middleware stack.

    Ingest is the hot path; a plain handler answers several times the requests per second
    of the same handler behind FastAPI's middleware (see docs/benchmarks.md). For a POST to
    an ingest path this is the one coroutine between uvicorn and the commit: it admits the
    request (``IngestEndpoint.admit``), reads the body, has the endpoint convert it into
    rows, waits for the group committer, and answers 202 as two ASGI messages, request id
    header included; only errors go through a Starlette Response. Every request, ingest or
    not, passes the header limits here (431). Everything else goes to ``app``: the API,
    behind ``api_middleware()``.
    """

    def __init__(self, app: ASGIApp, endpoints: dict[str, IngestEndpoint], settings: Settings,
                 committer: GroupCommitter | None = None) -> None:
        self.app = app
        self.endpoints = endpoints
        self.committer = committer
        self.max_headers = settings.max_headers
        self.max_header_bytes = settings.max_header_bytes
        self.max_body_bytes = settings.max_body_bytes
        self.deadlines = ReadDeadlines(settings.body_read_timeout_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = header_problem(scope["headers"], self.max_headers, self.max_header_bytes)
        endpoint = self.endpoints.get(scope["path"])
        if too_large is None and (endpoint is None or not self._is_ingest(scope)):
            await self.app(scope, receive, send)
            return
        # Each coroutine level a request passes through costs it on the way to its commit
        # and again after it (docs/benchmarks.md, "Fewer levels"): endpoints are functions.
        request = IngestRequest(scope)
        request_id = request_id_from(request.headers.get("x-request-id"))
        try:
            if too_large is not None:
                raise too_large
            if scope["method"] != "POST":
                raise Problem(405, f"{scope['method']} is not allowed on {scope['path']}; "
                              "use POST", headers={"Allow": "POST"})
            assert endpoint is not None and self.committer is not None  # else: the app above
            endpoint.admit(request)
            body = await receive_body(receive, request, self.max_body_bytes, self.deadlines)
            outcome = await self.committer.submit(*endpoint.convert(request, body))
        except ClientDisconnected:
            return
        except Exception as error:
            await self._answer_error(error, scope, receive, send, request_id)
            return
        status, answer = accepted(outcome)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(answer)),
                                request_id_header(request_id)]})
        await send({"type": "http.response.body", "body": answer})

    @staticmethod
    def _is_ingest(scope: Scope) -> bool:
        """POSTs are ingest; GET / and GET /events are the UI's, other methods are refused."""
        if scope["method"] == "POST":
            return True
        path = scope["path"]
        return path != "/" and not (scope["method"] in ("GET", "HEAD") and path in UI_PAGES)

    @staticmethod
    async def _answer_error(error: Exception, scope: Scope, receive: Receive, send: Send,
                            request_id: str) -> None:
        """The problem answer to a refused or failed ingest request.

        Endpoints write no log lines, so the request id is bound to the context only here,
        where the refusal or failure is logged and the problem's body names the id.
        """
        token = bind_request_id(request_id)
        try:
            if isinstance(error, Problem):
                response = problem_response(error, scope["path"])
            else:
                response = _server_error(Request(scope, receive), error)
            await response(scope, receive, with_request_id(send, scope, request_id))
        finally:
            unbind_request_id(token)


def api_middleware(app: ASGIApp) -> ASGIApp:
    """``app`` (the API and the UI) behind request ids and uvicorn's proxy headers.

    uvicorn applies its ProxyHeadersMiddleware (X-Forwarded-For and -Proto from trusted
    proxies) to every request; `dora-ce serve` turns that off and applies it here, with
    uvicorn's setting (``FORWARDED_ALLOW_IPS``, default loopback), to the requests whose
    scheme matters: the UI marks its sign-in cookie Secure behind an HTTPS proxy. Ingest
    never looks at the client's address or scheme, and skipping the middleware there
    saves a coroutine level and ~2 µs per request (docs/benchmarks.md).
    """
    trusted = os.environ.get(FORWARDED_ALLOW_IPS, LOOPBACK)
    # uvicorn types its ASGI interface more narrowly than Starlette; the two are one protocol.
    middleware = ProxyHeadersMiddleware(RequestIds(app), trusted_hosts=trusted)  # type: ignore[arg-type]
    return middleware  # type: ignore[return-value]


Worker = Callable[[], Coroutine[Any, Any, None]]


def _workers(settings: Settings, engine: Engine, chosen: frozenset[str],
             woken: tuple[asyncio.Event, asyncio.Event]) -> list[Worker]:
    """The background stages: ingest commits wake both; routing work wakes the projector."""
    route_wake, project_wake = woken
    workers: list[Worker] = []
    if "router" in chosen:
        router = Router(engine, *routing_from_settings(settings))
        workers.append(lambda: run_continuously(
            "router", lambda: router.route_batch().events, route_wake, then=project_wake))
    if "projector" in chosen:
        projector = Projector(engine, settings)
        workers.append(lambda: run_continuously(
            "projector", projector.project_batch, project_wake))
    return workers


def _document(app: FastAPI, with_ingest: bool) -> None:
    """/openapi.json: also the ingest endpoints FastAPI never sees, and 400s, not 422s."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generate(), with_ingest)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings, engine: Engine, components: Iterable[str] = ALL_COMPONENTS
) -> ASGIApp:
    """An app serving ``components`` over ``engine`` (migrations are the caller's job)."""
    chosen = frozenset(components)
    woken = (asyncio.Event(), asyncio.Event())

    def committed() -> None:
        for event in woken:
            event.set()

    committer = GroupCommitter(engine, on_commit=committed) if "ingest" in chosen else None
    workers = _workers(settings, engine, chosen, woken)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if committer is not None:
            committer.start()
        tasks = [asyncio.create_task(worker()) for worker in workers]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if committer is not None:
                await committer.stop()

    app = FastAPI(
        title="dora-cloudevents",
        version=__version__,
        summary="CloudEvents in, CDEvents through, DORA metrics out.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.add_exception_handler(Problem, handle_problem)
    app.add_exception_handler(RequestValidationError, _validation_problem)
    app.add_exception_handler(HTTPException, _http_problem)
    app.add_exception_handler(Exception, _server_error)
    app.include_router(health.build_router())
    app.include_router(prometheus.build_router(engine, settings))
    if "api" in chosen:
        app.include_router(events_api.build_router())
        app.include_router(metrics_api.build_router())
    if "transform" in chosen:
        app.include_router(transform_api.build_router(*routing_from_settings(settings)))
    if "ui" in chosen:
        app.include_router(ui_pages.build_router())
    _document(app, with_ingest=committer is not None)
    if committer is None:
        # Even without ingest, the front door applies the header limits.
        return IngestFirst(api_middleware(app), {}, settings)
    endpoints = IngestEndpoints(settings).endpoints()
    endpoints.update(WebhookEndpoints(settings).endpoints())
    return IngestFirst(api_middleware(app), endpoints, settings, committer)

"""The application factory: wires the stages chosen with --components into one ASGI app."""

from __future__ import annotations

import asyncio
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
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dora_cloudevents import __version__
from dora_cloudevents.api import events as events_api
from dora_cloudevents.api import health, prometheus
from dora_cloudevents.api import metrics as metrics_api
from dora_cloudevents.api import transform as transform_api
from dora_cloudevents.background import run_continuously
from dora_cloudevents.config import Settings
from dora_cloudevents.ingest.committer import GroupCommitter
from dora_cloudevents.ingest.front import IngestFirst
from dora_cloudevents.ingest.openapi import document_problems
from dora_cloudevents.ingest.routes import IngestEndpoints
from dora_cloudevents.ingest.webhooks import WebhookEndpoints
from dora_cloudevents.logs import RequestIds
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.problems import Problem, handle_problem, problem_response, server_error
from dora_cloudevents.routing.router import Router
from dora_cloudevents.routing.targets import routing_from_settings
from dora_cloudevents.ui import pages as ui_pages

COMPONENTS = ("ingest", "router", "projector", "transform", "api", "ui")
# `transform` serves the transformers to other routers; one process needs no such hop.
ALL_COMPONENTS = frozenset({"ingest", "router", "projector", "api", "ui"})
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
    app.add_exception_handler(Exception, server_error)
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

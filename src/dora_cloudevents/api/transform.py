"""The transform component: built-in transformers served over HTTP as remote transformers."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from dora_cloudevents.cdevents.binding import as_cloudevent
from dora_cloudevents.events import CloudEvent
from dora_cloudevents.ingest.cloudevents import parse_http
from dora_cloudevents.ingest.routes import read_body
from dora_cloudevents.problems import Problem
from dora_cloudevents.routing.remote import BATCH
from dora_cloudevents.routing.router import transform_event
from dora_cloudevents.routing.table import RoutingTable
from dora_cloudevents.routing.targets import Target
from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError

MAX_BODY = 1024 * 1024


def _batch(cdevents: list[dict[str, object]]) -> Response:
    """The remote-transformer answer: a CloudEvents batch, one CloudEvent per CDEvent."""
    return Response(orjson.dumps([as_cloudevent(cdevent) for cdevent in cdevents]),
                    status_code=200, media_type=BATCH)


async def _one_event(request: Request) -> CloudEvent:
    events = parse_http(request.headers, await read_body(request, MAX_BODY)).events
    if len(events) != 1:
        raise Problem(400, f"send exactly one CloudEvent, not {len(events)}")
    return events[0]


def _run(event: CloudEvent, targets: list[tuple[str, Target]]) -> Response:
    try:
        produced = transform_event(event, targets)
    except TransformError as error:
        raise Problem(422, str(error)) from None
    return _batch([cdevent for _, cdevent, _ in produced])


def build_router(table: RoutingTable, targets: Mapping[str, Target]) -> APIRouter:
    router = APIRouter(prefix="/transform", tags=["transform"])

    @router.post("", summary="Transform one CloudEvent as the routing table says")
    async def by_route(request: Request) -> Response:
        event = await _one_event(request)
        return _run(event, [(name, targets[name]) for name in table.targets_for(event)])

    @router.post("/{name}", summary="Transform one CloudEvent with the named built-in transformer")
    async def by_name(name: str, request: Request) -> Response:
        transformer = builtin_transformers().get(name)
        if transformer is None:
            raise Problem(404, f"no built-in transformer named {name!r}; known: "
                          + ", ".join(sorted(builtin_transformers())))
        return _run(await _one_event(request), [(name, transformer)])

    return router

"""RFC 9457 problem details: the one error format every endpoint answers with."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

import orjson
from starlette.requests import Request
from starlette.responses import Response

from dora_cloudevents.logs import current_request_id
from dora_cloudevents.store.db import is_unavailable, refused_value

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An HTTP error to answer with; ``detail`` says precisely what is wrong."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = dict(headers or {})


def problem_response(problem: Problem, instance: str | None = None) -> Response:
    body = {"type": "about:blank", "title": problem.title, "status": problem.status,
            "detail": problem.detail}
    if instance:
        body["instance"] = instance
    request_id = current_request_id()
    if request_id:  # so a user can quote it and the operator find the request in the logs
        body["request_id"] = request_id
    return Response(orjson.dumps(body), status_code=problem.status, headers=problem.headers,
                    media_type=PROBLEM_JSON)


async def handle_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, Problem)
    return problem_response(error, request.url.path)


def storage_unavailable() -> Problem:
    return Problem(503, "the event store is unavailable right now; retry later",
                   headers={"Retry-After": "5"})


def server_error(request: Request, error: Exception) -> Response:
    """The answer to an error no handler expected: 503 for an unavailable database, 400
    for a value it refused, else 500 (logged with its traceback)."""
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

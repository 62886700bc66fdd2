"""The ASGI front door: serves POSTs to the ingest paths itself, everything else through the API."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from dora_cloudevents.config import Settings
from dora_cloudevents.ingest.committer import GroupCommitter
from dora_cloudevents.ingest.guards import ReadDeadlines, header_problem
from dora_cloudevents.ingest.routes import (
    ClientDisconnected,
    IngestEndpoint,
    IngestRequest,
    accepted,
    receive_body,
)
from dora_cloudevents.logs import (
    bind_request_id,
    request_id_from,
    request_id_header,
    unbind_request_id,
    with_request_id,
)
from dora_cloudevents.problems import Problem, problem_response, server_error

# GETs the web UI answers on paths where POST is ingest.
UI_PAGES = frozenset({"/", "/events"})


class IngestFirst:
    """ASGI front door: POSTs to the ingest paths skip the API framework's middleware stack.

    Ingest is the hot path; a plain handler answers several times the requests per second
    of the same handler behind FastAPI's middleware (see docs/benchmarks.md). For a POST to
    an ingest path this is the one coroutine between uvicorn and the commit: it admits the
    request (``IngestEndpoint.admit``), reads the body, has the endpoint convert it into
    rows, waits for the group committer, and answers 202 as two ASGI messages, request id
    header included; only errors go through a Starlette Response. Every request, ingest or
    not, passes the header limits here (431). Everything else goes to ``app``: the API,
    behind ``app.api_middleware()``.
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
        answer = accepted(outcome)
        await send({"type": "http.response.start", "status": 202,
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
                response = server_error(Request(scope, receive), error)
            await response(scope, receive, with_request_id(send, scope, request_id))
        finally:
            unbind_request_id(token)

"""The UI's pages: dashboard, drill-downs, event monitor, event detail, sign-in.

Pages are rendered on the server from the same functions the read API calls, so a tile shows
exactly what ``/api/v1/dora`` answers; the browser scripts only draw the charts (from the
series API) and keep the monitor live (from the stream). Jinja escapes everything it prints:
event data is untrusted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import wraps
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Request
from sqlalchemy import Engine
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount

from dora_cloudevents.api.events import raw_event_detail
from dora_cloudevents.api.state import request_engine, request_settings
from dora_cloudevents.api.stream import MAX_SEQ, cdevent_summary, raw_summary
from dora_cloudevents.auth import READ_COOKIE, read_session_value, token_matches
from dora_cloudevents.metrics import drilldown
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import FilterError, Selection, resolve_selection
from dora_cloudevents.problems import Problem
from dora_cloudevents.store import monitor
from dora_cloudevents.store.db import is_unavailable
from dora_cloudevents.store.events import count_by_status
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw
from dora_cloudevents.ui.choices import filter_choices
from dora_cloudevents.ui.security import (
    ProtectedStaticFiles,
    may_read,
    protect,
    safe_next,
    sign_in_redirect,
)
from dora_cloudevents.ui.tiles import benchmark_rows, duration, tiles

FILTERS = ("from", "to", "service", "team", "environment")
BUCKETS = ("day", "week", "month")
PAGE_SIZE = 50
MONITOR_ROWS = 50
STATIC = Path(str(files("dora_cloudevents.ui") / "static"))

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("dora_cloudevents.ui", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_templates.filters["duration"] = duration
_templates.filters["pretty"] = lambda value: orjson.dumps(
    value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def render(name: str, status: int = 200, **context: Any) -> Response:
    html = _templates.get_template(name).render(**context)
    return protect(HTMLResponse(html, status_code=status))


def _filters(request: Request) -> dict[str, str]:
    """The dashboard filters in the URL, as given (empty ones dropped)."""
    return {name: request.query_params[name].strip() for name in FILTERS
            if request.query_params.get(name, "").strip()}


def _query(values: Mapping[str, str | int | None], **extra: str | int | None) -> str:
    merged = {**values, **extra}
    return urlencode({key: value for key, value in merged.items() if value not in (None, "")})


def _selection(request: Request, filters: Mapping[str, str]) -> Selection:
    return resolve_selection(request_settings(request), start=filters.get("from"),
                             end=filters.get("to"), service=filters.get("service"),
                             team=filters.get("team"), environment=filters.get("environment"))


Page = Callable[..., Response]


def page(handler: Page) -> Page:
    """Sign-in gate and friendly error pages around a page handler."""

    @wraps(handler)
    def wrapper(request: Request, *args: Any, **kwargs: Any) -> Response:
        if not may_read(request):
            return sign_in_redirect(request)
        try:
            return handler(request, *args, **kwargs)
        except FilterError as error:
            return render("error.html", 400, title="These filters cannot be used",
                          message=str(error), hint="Change or clear the filters.",
                          back=request.url.path)
        except Problem as problem:
            return render("error.html", problem.status, title=problem.title,
                          message=problem.detail, hint="", back="/events")
        except Exception as error:
            if not is_unavailable(error):
                raise
            return render("error.html", 503, title="The database is unavailable",
                          message=str(error).splitlines()[0],
                          hint="Check that the database is running and reachable "
                               "(dora-ce serve --db URL), then reload this page.", back="/")
    return wrapper


def _raw_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return count_by_status(connection, cloudevents_raw)


def dashboard(request: Request) -> Response:
    filters = _filters(request)
    bucket = request.query_params.get("bucket", "week")
    bucket = bucket if bucket in BUCKETS else "week"
    engine = request_engine(request)
    with engine.connect() as connection:
        choices = filter_choices(connection, request_settings(request))
    try:
        selection = _selection(request, filters)
    except FilterError as error:
        return render("dashboard.html", 400, error=str(error), filters=filters, choices=choices,
                      tiles=[], report=None, benchmarks=benchmark_rows(), bucket=bucket,
                      query=_query(filters), counts={}, buckets=BUCKETS, overall=None,
                      presets=_presets(filters), base_url=str(request.base_url))
    report = compute_dora(engine, selection)
    common: dict[str, Any] = {"presets": _presets(filters), "base_url": str(request.base_url)}
    empty = (report.deployment_frequency.deployments == 0
             and report.time_to_restore.incidents + report.time_to_restore.open_incidents == 0)
    return render("dashboard.html", error=None, filters=filters, choices=choices,
                  tiles=tiles(report), report=report, benchmarks=benchmark_rows(),
                  bucket=bucket, query=_query(filters), buckets=BUCKETS,
                  counts=_raw_counts(engine) if empty else {}, overall=report.level,
                  **common)


def _presets(filters: Mapping[str, str]) -> list[tuple[int, str]]:
    """Quick ranges: the last N days up to now, other filters kept."""
    today = datetime.now(UTC).date()
    kept = {name: value for name, value in filters.items() if name not in ("from", "to")}
    return [(days, _query(kept, **{"from": (today - timedelta(days=days)).isoformat()}))
            for days in (30, 90, 180, 365)]


def _page_links(request: Request, next_offset: int | None, offset: int) -> dict[str, str | None]:
    params = dict(request.query_params)
    previous = None
    if offset > 0:
        previous = request.url.path + "?" + _query(params, offset=max(offset - PAGE_SIZE, 0))
    following = None
    if next_offset is not None:
        following = request.url.path + "?" + _query(params, offset=next_offset)
    return {"previous": previous, "next": following}


def _offset(request: Request) -> int:
    value = request.query_params.get("offset", "0")
    return int(value) if value.isdigit() else 0


def _flag(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    return {"true": True, "false": False}.get(value or "")


def deployments_page(request: Request) -> Response:
    filters, offset = _filters(request), _offset(request)
    failed, rework = _flag(request, "failed"), _flag(request, "rework")
    with request_engine(request).connect() as connection:
        result = drilldown.deployment_page(connection, _selection(request, filters),
                                           limit=PAGE_SIZE, offset=offset, failed=failed,
                                           rework=rework)
    title = ("Failed deployments" if failed else "Rework deployments" if rework
             else "Deployments")
    return render("deployments.html", title=title, page=result, filters=filters,
                  query=_query(filters), links=_page_links(request, result.next_offset, offset))


def changes_page(request: Request) -> Response:
    filters, offset = _filters(request), _offset(request)
    with request_engine(request).connect() as connection:
        result = drilldown.change_page(connection, _selection(request, filters),
                                       limit=PAGE_SIZE, offset=offset)
    return render("changes.html", title="Changes deployed", page=result, filters=filters,
                  query=_query(filters), links=_page_links(request, result.next_offset, offset))


def incidents_page(request: Request) -> Response:
    filters, offset = _filters(request), _offset(request)
    with request_engine(request).connect() as connection:
        result = drilldown.incident_page(connection, _selection(request, filters),
                                         limit=PAGE_SIZE, offset=offset, open_=_flag(
                                             request, "open"))
    return render("incidents.html", title="Incidents", page=result, filters=filters,
                  query=_query(filters), links=_page_links(request, result.next_offset, offset))


def monitor_page(request: Request) -> Response:
    type_ = request.query_params.get("type", "").strip() or None
    source = request.query_params.get("source", "").strip() or None
    with request_engine(request).connect() as connection:
        position = (monitor.newest_seq(connection, cloudevents_raw),
                    monitor.newest_seq(connection, cdevents_raw))
        raw = monitor.recent_raw(connection, position[0], MONITOR_ROWS, type=type_,
                                 source=source)
        rows = monitor.raw_summaries(connection, [row.seq for row in raw])
        produced = monitor.produced_by(connection, [row.seq for row in raw])
        native = monitor.native_cdevents(connection, MONITOR_ROWS, type=type_, source=source)
        types, sources = monitor.recent_types_and_sources(connection)
        failing = monitor.trouble(connection, "failed", "source")
        unrouted = monitor.trouble(connection, "unrouted", "type")
    by_origin: dict[int, list[dict[str, Any]]] = {}
    for item in produced:
        by_origin.setdefault(item.origin_seq, []).append(cdevent_summary(item))
    entries = [{"kind": "cloudevent", **raw_summary(row), "cdevents": by_origin.get(row.seq, [])}
               for row in rows]
    entries += [{"kind": "cdevent", **cdevent_summary(row)} for row in native]
    # Newest first; a batch shares one received_at, so the seq orders within it.
    entries.sort(key=lambda entry: (entry["received_at"], entry["seq"]), reverse=True)
    return render("events.html", entries=entries[:MONITOR_ROWS], type=type_ or "",
                  source=source or "", types=types, sources=sources, failing=failing,
                  unrouted=unrouted, position=f"{position[0]}.{position[1]}",
                  stream_query=_query({"type": type_, "source": source}),
                  base_url=str(request.base_url))


def raw_event_page(request: Request, seq: int) -> Response:
    detail = raw_event_detail(request_engine(request), seq)
    return render("event.html", kind="cloudevent", detail=detail, event=detail["event"])


def cdevent_page(request: Request, seq: int) -> Response:
    with request_engine(request).connect() as connection:
        row = monitor.one_cdevent(connection, seq) if seq <= MAX_SEQ else None
    if row is None:
        raise Problem(404, f"no CDEvent with seq {seq}")
    detail = {**cdevent_summary(row), "event": row.event}
    return render("event.html", kind="cdevent", detail=detail, event=row.event)


def sign_in_form(request: Request) -> Response:
    return render("signin.html", next=safe_next(request.query_params.get("next")), error=None,
                  needed=bool(request_settings(request).read_tokens))


async def sign_in(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    tokens = request_settings(request).read_tokens
    if not tokens:
        return protect(RedirectResponse(target, status_code=303))
    if not token_matches(token, tokens):
        return render("signin.html", 403, next=target, needed=True,
                      error="That token is not one of the read tokens (DORA_READ_TOKENS).")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(READ_COOKIE, read_session_value(token), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return protect(response)


def sign_out(_request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(READ_COOKIE, path="/", httponly=True, samesite="strict")
    return protect(response)


def plotly_js(_request: Request) -> Response:
    """plotly.js from the plotly wheel's package data: charts work offline, no CDN."""
    path = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
    return protect(FileResponse(path, media_type="text/javascript",
                                headers={"Cache-Control": "public, max-age=86400"}))


def build_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    for path, handler in (("/", dashboard), ("/deployments", deployments_page),
                          ("/changes", changes_page), ("/incidents", incidents_page),
                          ("/events", monitor_page), ("/events/{seq}", raw_event_page),
                          ("/cdevents/{seq}", cdevent_page)):
        router.add_api_route(path, page(handler), methods=["GET"], response_class=HTMLResponse)
    router.add_api_route("/signin", sign_in_form, methods=["GET"])
    router.add_api_route("/signin", sign_in, methods=["POST"])
    router.add_api_route("/signout", sign_out, methods=["GET"])
    router.add_api_route("/static/vendor/plotly.min.js", plotly_js, methods=["GET"])
    router.routes.append(Mount("/static", ProtectedStaticFiles(directory=STATIC), name="static"))
    return router

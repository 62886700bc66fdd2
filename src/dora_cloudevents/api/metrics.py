"""The metrics read API (DESIGN.md §8): the DORA summary, series, drill-downs, tutorial route.

Every route takes the same selection (``from``, ``to``, ``service``, ``team``,
``environment``; see metrics/filters.py) and answers 400 problem+json when it cannot be used.
Responses are serialised straight from their pydantic models (documented in /openapi.json).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import TypeAdapter
from starlette.responses import Response

from dora_cloudevents.api.state import read_access, request_engine, request_settings
from dora_cloudevents.metrics import drilldown
from dora_cloudevents.metrics.buckets import Bucket
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import FilterError, Selection, resolve_selection
from dora_cloudevents.metrics.models import (
    ChangePage,
    DeployFrequencyRow,
    DeploymentPage,
    DoraReport,
    IncidentPage,
    Page,
    Series,
    series_json,
)
from dora_cloudevents.metrics.queries import GroupBy
from dora_cloudevents.metrics.series import METRICS, metric_series
from dora_cloudevents.problems import Problem

JSON = "application/json"
_TUTORIAL_ROWS = TypeAdapter(list[DeployFrequencyRow])

From = Annotated[str | None, Query(
    alias="from", description="Start of the window, RFC 3339 (inclusive); default: to - 90 days.",
    examples=["2024-05-01T00:00:00Z"], json_schema_extra={"format": "date-time"})]
To = Annotated[str | None, Query(
    description="End of the window, RFC 3339 (exclusive); default: now.",
    examples=["2024-07-30T00:00:00Z"], json_schema_extra={"format": "date-time"})]
ServiceFilter = Annotated[str | None, Query(
    description="Canonical service name or an alias; several comma-separated.")]
TeamFilter = Annotated[str | None, Query(
    description="A team from the configuration's services: (selects its services).")]
EnvironmentFilter = Annotated[str | None, Query(
    description="Environment(s), comma-separated; default: the configured production "
    "environments (all when none are configured); * for all.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
# le: a larger offset overflows the databases' 64-bit integers (a 500 instead of a 400).
Offset = Annotated[int, Query(ge=0, le=2**63 - 1, description="Items to skip.")]


def selection(
    request: Request,
    start: From = None,
    to: To = None,
    service: ServiceFilter = None,
    team: TeamFilter = None,
    environment: EnvironmentFilter = None,
) -> Selection:
    try:
        return resolve_selection(request_settings(request), start=start, end=to, service=service,
                                 team=team, environment=environment)
    except FilterError as error:
        raise Problem(400, str(error)) from None


Selected = Annotated[Selection, Depends(selection)]


def _json(body: bytes) -> Response:
    return Response(body, media_type=JSON)


def _page(request: Request, page: Page) -> Response:
    """A drill-down page, with an RFC 8288 ``Link: <...offset=N>; rel="next"`` when there is
    another page (as the raw event lists do)."""
    response = _json(page.to_json())
    if page.next_offset is not None:
        url = request.url.include_query_params(offset=page.next_offset)
        response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    return response


def build_router() -> APIRouter:
    router = APIRouter(tags=["metrics"], dependencies=[Depends(read_access)])

    @router.get("/api/v1/dora", summary="All DORA metrics and performance levels",
                response_model=DoraReport)
    def dora(request: Request, chosen: Selected) -> Response:
        return _json(compute_dora(request_engine(request), chosen).to_json())

    @router.get("/api/v1/metrics/{name}", summary="One metric as a time series",
                response_model=Series)
    def series(
        request: Request,
        chosen: Selected,
        name: Annotated[str, Path(description="Which metric (404 for another name).",
                                  json_schema_extra={"enum": list(METRICS)})],
        bucket: Annotated[Bucket, Query(description="Bucket size: UTC day, ISO week "
                                        "(from Monday), calendar month or year.")] = "day",
        group_by: Annotated[GroupBy | None, Query(description="One series per service, "
                                                  "environment or team.")] = None,
    ) -> Response:
        if name not in METRICS:
            raise Problem(404, f"no such metric {name!r}; the metrics are "
                          + ", ".join(METRICS))
        with request_engine(request).connect() as connection:
            result = metric_series(connection, request_settings(request), chosen,
                                   name, bucket, group_by)
        return _json(series_json(result))

    @router.get("/api/v1/deployments", summary="Deployments behind the numbers, newest first",
                response_model=DeploymentPage)
    def list_deployments(
        request: Request,
        chosen: Selected,
        failed: Annotated[bool | None, Query(description="Only failed (true) or "
                                             "non-failed (false) deployments.")] = None,
        rework: Annotated[bool | None, Query(description="Only rework (true) or "
                                             "other (false) deployments.")] = None,
        kind: Annotated[str | None, Query(pattern="^(deployed|upgraded|rolledback)$",
                                          description="Only this kind.")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        with request_engine(request).connect() as connection:
            page = drilldown.deployment_page(connection, chosen, limit=limit, offset=offset,
                                             failed=failed, rework=rework, kind=kind)
        return _page(request, page)

    @router.get("/api/v1/changes", summary="Changes first deployed in the window, with their "
                "lead times, newest first", response_model=ChangePage)
    def list_changes(request: Request, chosen: Selected, limit: Limit = 100,
                     offset: Offset = 0) -> Response:
        with request_engine(request).connect() as connection:
            page = drilldown.change_page(connection, chosen, limit=limit, offset=offset)
        return _page(request, page)

    @router.get("/api/v1/incidents", summary="Incidents detected in the window, newest first",
                response_model=IncidentPage)
    def list_incidents(
        request: Request,
        chosen: Selected,
        open: Annotated[bool | None, Query(description="Only open (true) or resolved (false) "
                                           "incidents.")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        with request_engine(request).connect() as connection:
            page = drilldown.incident_page(connection, chosen, limit=limit, offset=offset,
                                           open_=open)
        return _page(request, page)

    @router.get("/deploy-frequency/{bucket}", tags=["tutorial"],
                summary="Deployments per service per bucket (the original tutorial's route)",
                response_model=list[DeployFrequencyRow])
    def deploy_frequency(
        request: Request,
        chosen: Selected,
        bucket: Annotated[Bucket, Path(description="day, week, month or year.")],
    ) -> Response:
        with request_engine(request).connect() as connection:
            rows = drilldown.deploy_frequency_rows(connection, chosen, bucket)
        return _json(_TUTORIAL_ROWS.dump_json(list(rows)))

    return router

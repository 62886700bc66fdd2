"""The lists behind the numbers: deployments, changes and incidents of a selection, paginated.

Same selection as the summary, so the items of a drill-down add up to its counts:
``/deployments`` lists the window's deployments (``failed``/``rework`` narrow it to the ones
behind the change failure and rework rates), ``/changes`` the changes whose first deployment
to a selected environment is in the window (the lead time's values), ``/incidents`` the
incidents detected in the window (``open`` narrows to unresolved ones). Newest first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, func, select

from dora_cloudevents.metrics import queries
from dora_cloudevents.metrics.buckets import Bucket, bucket_day, midnight
from dora_cloudevents.metrics.filters import Selection
from dora_cloudevents.metrics.models import (
    ChangeItem,
    ChangePage,
    DeployFrequencyRow,
    DeploymentItem,
    DeploymentPage,
    FirstDeploymentView,
    IncidentItem,
    IncidentPage,
)
from dora_cloudevents.store.schema import changes, deployment_changes, deployments, incidents


def _next(offset: int, limit: int, total: int) -> int | None:
    return offset + limit if offset + limit < total else None


def deployment_page(
    connection: Connection,
    selection: Selection,
    *,
    limit: int,
    offset: int = 0,
    failed: bool | None = None,
    rework: bool | None = None,
    kind: str | None = None,
) -> DeploymentPage:
    column = deployments.c
    where: list[ColumnElement[bool]] = queries.deployment_filters(selection)
    if failed is not None:
        where.append(column.failed.is_(failed))
    if rework is not None:
        where.append(column.rework.is_(rework))
    if kind is not None:
        where.append(column.kind == kind)
    total = connection.execute(select(func.count()).select_from(deployments)
                               .where(*where)).scalar_one()
    shipped = (select(func.count()).select_from(deployment_changes)
               .where(deployment_changes.c.deployment_seq == column.cdevent_seq)
               .scalar_subquery())
    query = (
        select(column.cdevent_seq, column.service, column.environment, column.time, column.kind,
               column.artifact_id, column.revision, column.failed, column.failed_by,
               column.recovered_at, column.recovery_seconds, column.rework, shipped)
        .where(*where)
        .order_by(column.time.desc(), column.cdevent_seq.desc())
        .limit(limit).offset(offset)
    )
    items = [
        DeploymentItem(
            id=row.cdevent_seq, service=row.service, environment=row.environment, time=row.time,
            kind=row.kind, artifact=row.artifact_id, revision=row.revision,
            failed=bool(row.failed), failed_by=row.failed_by, recovered_at=row.recovered_at,
            recovery_seconds=row.recovery_seconds if row.failed else None,
            rework=bool(row.rework), changes=int(row[12]),
        )
        for row in connection.execute(query)
    ]
    return DeploymentPage(total=total, limit=limit, offset=offset,
                          next_offset=_next(offset, limit, total), items=items)


def change_page(connection: Connection, selection: Selection, *, limit: int,
                offset: int = 0) -> ChangePage:
    """Changes with a first deployment to a selected environment in the window, latest first;
    each with those first deployments (a change without a known time has null lead times and
    does not count in the lead time's ``changes``)."""
    total, page_keys = queries.changes_first_deployed(connection, selection, limit=limit,
                                                      offset=offset)
    firsts: dict[str, list[queries.FirstDeployment]] = defaultdict(list)
    for pair in queries.first_deployments(connection, selection, page_keys):
        firsts[pair.change_key].append(pair)
    column = changes.c
    rows = {row.key: row for row in connection.execute(
        select(column.key, column.repository, column.kind, column.title, column.merged_at,
               queries.change_time().label("change_time"))
        .where(column.key.in_(page_keys))
    )} if page_keys else {}
    items = []
    for key in page_keys:
        row = rows.get(key)
        items.append(ChangeItem(
            key=key,
            repository=row.repository if row else None,
            kind=row.kind if row else "unknown",
            title=row.title if row else None,
            change_time=row.change_time if row else None,
            merged_at=row.merged_at if row else None,
            first_deployments=[
                FirstDeploymentView(environment=p.environment, service=p.service,
                                    deployment=p.deployment_seq, deployed_at=p.deployed_at,
                                    lead_time_seconds=p.lead_seconds)
                for p in sorted(firsts[key], key=lambda p: (p.deployed_at, p.environment))
            ],
        ))
    return ChangePage(total=total, limit=limit, offset=offset,
                      next_offset=_next(offset, limit, total), items=items)


def incident_page(connection: Connection, selection: Selection, *, limit: int, offset: int = 0,
                  open_: bool | None = None) -> IncidentPage:
    column = incidents.c
    where = queries.incident_filters(selection)
    if open_ is True:
        where.append(column.resolved_at.is_(None))
    elif open_ is False:
        where.append(column.resolved_at.is_not(None))
    total = connection.execute(select(func.count()).select_from(incidents)
                               .where(*where)).scalar_one()
    query = (
        select(column.key, column.service, column.environment, column.description,
               column.detected_at, column.resolved_at, column.restore_seconds,
               column.deployment_seq)
        .where(*where)
        .order_by(column.detected_at.desc(), column.key)
        .limit(limit).offset(offset)
    )
    items = [
        IncidentItem(key=row.key, service=row.service, environment=row.environment,
                     description=row.description, detected_at=row.detected_at,
                     resolved_at=row.resolved_at,
                     restore_seconds=row.restore_seconds,
                     deployment=row.deployment_seq)
        for row in connection.execute(query)
    ]
    return IncidentPage(total=total, limit=limit, offset=offset,
                        next_offset=_next(offset, limit, total), items=items)


def deploy_frequency_rows(connection: Connection, selection: Selection,
                          bucket: Bucket) -> Sequence[DeployFrequencyRow]:
    """The original tutorial's shape: deployments per service per bucket, by Time then name."""
    counts: dict[tuple[datetime, str], int] = defaultdict(int)
    for row in queries.deployment_days(connection, selection, group_by="service"):
        counts[(midnight(bucket_day(row.day, bucket)), row.group or "")] += row.deployments
    return [DeployFrequencyRow(DeployName=name, Deployments=count, Time=start)
            for (start, name), count in sorted(counts.items())]

"""Linking one partition (service, environment): shipped changes, failures, incidents, rework.

Everything here is recomputed from the partition's facts as they stand, so the result
does not depend on the order in which events arrived (DESIGN.md §6, docs/metrics.md).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, delete, func, select, update

from dora_cloudevents.store.schema import (
    artifact_changes,
    changes,
    commits,
    deployment_changes,
    deployments,
    first_deployments,
    incidents,
)

Partition = tuple[str, str]


@dataclass
class Deployment:
    seq: int
    kind: str
    time: datetime
    artifact_key: str | None
    revision_sha: str | None
    repository: str | None = None
    branch: str | None = None
    revision_time: datetime | None = None
    failed_by: set[str] = field(default_factory=set)
    recovered_at: datetime | None = None
    rework: bool = False
    shipped: set[str] = field(default_factory=set)


@dataclass
class Incident:
    key: str
    detected_at: datetime
    resolved_at: datetime | None
    artifact_key: str | None
    deployment: Deployment | None = None


def relink(connection: Connection, partition: Partition, window: timedelta) -> None:
    service, environment = partition
    chain = _deployments(connection, service, environment)
    _resolve_revisions(connection, chain)
    _ship_changes(connection, chain)
    known = _incidents(connection, service, environment)
    _mark_rollbacks(chain)
    _attribute(known, chain, window)
    _mark_rework(chain, known)
    _store(connection, partition, chain, known)


def _deployments(connection: Connection, service: str, environment: str) -> list[Deployment]:
    table = deployments
    query = (select(table.c.cdevent_seq, table.c.kind, table.c.time, table.c.artifact_key,
                    table.c.revision_sha)
             .where(table.c.service == service, table.c.environment == environment)
             .order_by(table.c.time, table.c.cdevent_seq))
    return [Deployment(row.cdevent_seq, row.kind, row.time, row.artifact_key, row.revision_sha)
            for row in connection.execute(query)]


def _sha_matches(column: Any, sha: str) -> Any:
    # A full SHA matches itself; an abbreviated one every SHA it prefixes. The range keeps
    # the index usable on both back-ends ("g" sorts after every hex digit).
    return (column == sha) if len(sha) == 40 else and_(column >= sha, column < sha + "g")


def _commit_rows(connection: Connection, sha: str) -> list[Row[Any, Any]]:
    query = select(commits.c.repository, commits.c.branch, commits.c.sha, commits.c.timestamp,
                   commits.c.on_default_branch).where(_sha_matches(commits.c.sha, sha))
    return list(connection.execute(query))


def _resolve_revisions(connection: Connection, chain: list[Deployment]) -> None:
    """Find each deployment's revision commit: its repository, branch and time."""
    for deployment in chain:
        if deployment.revision_sha is None:
            continue
        rows = _commit_rows(connection, deployment.revision_sha)
        if rows:
            # The main line wins over a feature branch the same commit was pushed to.
            best = max(rows, key=lambda row: (row.on_default_branch, row.timestamp))
            deployment.repository, deployment.branch = best.repository, best.branch
            deployment.revision_time = best.timestamp
            continue
        merged = connection.execute(select(changes.c.key, changes.c.repository).where(
            _sha_matches(changes.c.merge_commit_sha, deployment.revision_sha))).first()
        if merged is not None:
            deployment.repository = merged.repository
            deployment.shipped.add(merged.key)


def _ship_changes(connection: Connection, chain: list[Deployment]) -> None:
    """Each deployment ships the commits of its branch up to its revision that no earlier
    deployment of this partition shipped (batched deploys ship several changes)."""
    watermarks: dict[tuple[str, str], datetime] = {}
    for deployment in chain:
        if deployment.artifact_key:
            deployment.shipped.update(connection.execute(
                select(artifact_changes.c.change_key)
                .where(artifact_changes.c.artifact_key == deployment.artifact_key)).scalars())
        if deployment.revision_time is None or deployment.branch is None:
            continue
        line = (deployment.repository or "", deployment.branch)
        since = watermarks.get(line)
        if since is not None and since >= deployment.revision_time:
            continue  # a rollback or redeploy of something already shipped
        query = select(commits.c.sha, commits.c.change_key).where(
            commits.c.repository == line[0], commits.c.branch == line[1],
            commits.c.timestamp <= deployment.revision_time)
        if since is not None:
            query = query.where(commits.c.timestamp > since)
        shipped = list(connection.execute(query))
        deployment.shipped.update(_owners(connection, line[0], shipped))
        watermarks[line] = deployment.revision_time


def _owners(connection: Connection, repository: str, shipped: list[Row[Any, Any]]) -> set[str]:
    """The change each shipped commit belongs to: a PR/MR whose merge (or squash) commit it
    is, or whose head branch it was pushed to, else the push that brought it."""
    shas = [row.sha for row in shipped]
    if not shas:
        return set()
    owner = {row.sha: row.change_key for row in shipped}
    merges = connection.execute(select(changes.c.merge_commit_sha, changes.c.key).where(
        changes.c.repository == repository, changes.c.merge_commit_sha.in_(shas)))
    by_merge = {row.merge_commit_sha: row.key for row in merges}
    branch_commits = connection.execute(
        select(commits.c.sha, changes.c.key)
        .join(changes, and_(changes.c.repository == commits.c.repository,
                            changes.c.head_branch == commits.c.branch))
        .where(commits.c.repository == repository, commits.c.sha.in_(shas),
               changes.c.kind == "pull_request"))
    by_branch = {row.sha: row.key for row in branch_commits}
    return {by_merge.get(sha) or by_branch.get(sha) or owner[sha] for sha in shas}


def _incidents(connection: Connection, service: str, environment: str) -> list[Incident]:
    table = incidents
    query = (select(table.c.key, table.c.detected_at, table.c.last_detected_at,
                    table.c.last_resolved_at, table.c.artifact_key)
             .where(table.c.service == service, table.c.environment == environment,
                    table.c.detected_at.is_not(None))
             .order_by(table.c.detected_at))
    found = []
    for row in connection.execute(query):
        resolved = row.last_resolved_at
        if resolved is not None and resolved < row.last_detected_at:
            resolved = None  # detected again after its last resolution: open
        found.append(Incident(row.key, row.detected_at, resolved, row.artifact_key))
    return found


def _mark_rollbacks(chain: list[Deployment]) -> None:
    for deployment, following in pairwise(chain):
        if following.kind == "rolledback":
            deployment.failed_by.add("rollback")
            deployment.recovered_at = following.time


def _attribute(known: list[Incident], chain: list[Deployment], window: timedelta) -> None:
    times = [deployment.time for deployment in chain]
    for incident in known:
        incident.deployment = _explicit(incident, chain) or _latest_before(
            incident, chain, times, window)
        if incident.deployment is not None:
            incident.deployment.failed_by.add("incident")
    for deployment in chain:
        mine = [incident for incident in known if incident.deployment is deployment]
        if mine:
            # Recovered when the last of its incidents is resolved; open means not yet.
            resolutions = [incident.resolved_at for incident in mine]
            deployment.recovered_at = (None if None in resolutions
                                       else max(r for r in resolutions if r is not None))


def _explicit(incident: Incident, chain: list[Deployment]) -> Deployment | None:
    if incident.artifact_key is None:
        return None
    same = [d for d in chain if d.artifact_key == incident.artifact_key]
    before = [d for d in same if d.time <= incident.detected_at]
    return before[-1] if before else (same[0] if same else None)


def _latest_before(incident: Incident, chain: list[Deployment], times: list[datetime],
                   window: timedelta) -> Deployment | None:
    index = bisect_right(times, incident.detected_at) - 1
    if index < 0 or incident.detected_at - chain[index].time > window:
        return None
    return chain[index]


def _mark_rework(chain: list[Deployment], known: list[Incident]) -> None:
    for deployment in chain:
        deployment.rework = deployment.kind == "rolledback" or any(
            incident.detected_at <= deployment.time
            and (incident.resolved_at is None or deployment.time < incident.resolved_at)
            for incident in known)


def _failed_by(deployment: Deployment) -> str | None:
    if not deployment.failed_by:
        return None
    return "both" if len(deployment.failed_by) > 1 else next(iter(deployment.failed_by))


def _store(connection: Connection, partition: Partition, chain: list[Deployment],
           known: list[Incident]) -> None:
    if chain:
        connection.execute(
            update(deployments).where(deployments.c.cdevent_seq == bindparam("b_seq")).values(
                repository=bindparam("b_repository"), failed=bindparam("b_failed"),
                failed_by=bindparam("b_failed_by"), recovered_at=bindparam("b_recovered"),
                rework=bindparam("b_rework")),
            [{"b_seq": d.seq, "b_repository": d.repository, "b_failed": bool(d.failed_by),
              "b_failed_by": _failed_by(d), "b_recovered": d.recovered_at,
              "b_rework": d.rework} for d in chain])
    if known:
        connection.execute(
            update(incidents).where(incidents.c.key == bindparam("b_key")).values(
                resolved_at=bindparam("b_resolved"), deployment_seq=bindparam("b_deployment")),
            [{"b_key": i.key, "b_resolved": i.resolved_at,
              "b_deployment": i.deployment.seq if i.deployment else None} for i in known])
    _store_shipped(connection, partition, chain)


def _store_shipped(connection: Connection, partition: Partition, chain: list[Deployment]
                   ) -> None:
    """Rewrite the partition's shipped changes; refresh only what moved."""
    service, environment = partition
    table = deployment_changes
    mine = (table.c.service == service, table.c.environment == environment)
    before = {(row.change_key, row.deployment_seq) for row in connection.execute(
        select(table.c.change_key, table.c.deployment_seq).where(*mine))}
    after = {(key, d.seq) for d in chain for key in d.shipped}
    if before == after:
        return
    connection.execute(delete(table).where(*mine))
    times = {d.seq: d.time for d in chain}
    if after:
        connection.execute(table.insert(), [
            {"deployment_seq": seq, "change_key": key, "service": service,
             "environment": environment, "deployed_at": times[seq]}
            for key, seq in sorted(after)])
    moved = {key for key, _ in before ^ after}
    _update_change_times(connection, {key for key, _ in after - before})
    refresh_first_deployments(connection, moved, [environment])


def refresh_changes(connection: Connection, keys: set[str]) -> None:
    """After a change's own facts moved (new commits, merge): its time and lead times."""
    if keys:
        _update_change_times(connection, keys)
        refresh_first_deployments(connection, keys, None)


def refresh_first_deployments(connection: Connection, keys: set[str],
                              environments: list[str] | None) -> None:
    """Recompute first_deployments for ``keys`` (in ``environments``, or all of them)."""
    if not keys:
        return
    shipped = deployment_changes.c
    for chunk in _chunks(sorted(keys)):
        scope = [first_deployments.c.change_key.in_(chunk)]
        query = select(shipped.change_key, shipped.environment, shipped.service,
                       shipped.deployment_seq, shipped.deployed_at).where(
            shipped.change_key.in_(chunk))
        if environments is not None:
            scope.append(first_deployments.c.environment.in_(environments))
            query = query.where(shipped.environment.in_(environments))
        first: dict[tuple[str, str], Any] = {}
        for row in connection.execute(query):
            pair = (row.change_key, row.environment)
            if pair not in first or (row.deployed_at, row.deployment_seq) < (
                    first[pair].deployed_at, first[pair].deployment_seq):
                first[pair] = row
        change_times = dict(connection.execute(select(changes.c.key, func.coalesce(
            changes.c.earliest_commit_at, changes.c.created_at, changes.c.merged_at))
            .where(changes.c.key.in_(chunk))).all())
        connection.execute(delete(first_deployments).where(*scope))
        rows = []
        for (key, environment), row in sorted(first.items()):
            began = _aware(change_times.get(key))
            rows.append({"change_key": key, "environment": environment,
                         "service": row.service, "deployment_seq": row.deployment_seq,
                         "deployed_at": row.deployed_at, "change_time": began,
                         "lead_seconds": (row.deployed_at - began).total_seconds()
                         if began is not None else None})
        if rows:
            connection.execute(first_deployments.insert(), rows)


def _aware(moment: datetime | None) -> datetime | None:
    # COALESCE over timestamps loses the column type, so SQLite hands back naive UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _chunks(keys: list[str], size: int = 500) -> list[list[str]]:
    return [keys[start:start + size] for start in range(0, len(keys), size)]


def _update_change_times(connection: Connection, keys: set[str]) -> None:
    """A change's time is its earliest known commit: its own, or its PR branch's commits
    pushed before it merged (how squash-merged PRs keep their real lead time)."""
    found = connection.execute(select(changes.c.key, changes.c.repository, changes.c.kind,
                                      changes.c.head_branch, changes.c.merged_at)
                               .where(changes.c.key.in_(sorted(keys))))
    updates = []
    for change in found:
        candidates = [connection.execute(select(func.min(commits.c.timestamp)).where(
            commits.c.change_key == change.key)).scalar()]
        if change.kind == "pull_request" and change.head_branch:
            branch = select(func.min(commits.c.timestamp)).where(
                commits.c.repository == change.repository,
                commits.c.branch == change.head_branch)
            if change.merged_at is not None:
                branch = branch.where(commits.c.timestamp <= change.merged_at)
            candidates.append(connection.execute(branch).scalar())
        known = [moment for moment in candidates if moment is not None]
        updates.append({"b_key": change.key, "b_earliest": min(known) if known else None})
    if updates:
        connection.execute(update(changes).where(changes.c.key == bindparam("b_key")).values(
            earliest_commit_at=bindparam("b_earliest")), updates)

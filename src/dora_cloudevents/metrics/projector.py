"""The projector: applies each stored CDEvent once to the entity tables, then re-links.

Facts are merged so that their order does not matter (earliest detection, latest
resolution, first-seen service...), and every partition (service, environment) a batch
affected is re-linked from the earliest time the batch affected in it (metrics/affected.py)
from the facts as they now stand: events arriving late or out of order give the same result
as events arriving in time order, and the cost follows the new events, not the history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.affected import Touched, affected
from dora_cloudevents.metrics.catalog import ServiceCatalog
from dora_cloudevents.metrics.chunking import chunks, grouped
from dora_cloudevents.metrics.facts import (
    ChangeFact,
    IncidentFact,
    artifact_change,
    artifact_key,
    chain_node,
    change_fact,
    commit_sha,
    deployment_fact,
    event_kind,
    incident_fact,
    linked_event_ids,
)
from dora_cloudevents.metrics.linking import (
    refresh_first_deployments,
    relink,
    reship,
    update_change_times,
)
from dora_cloudevents.metrics.links import ARTIFACT, CHANGE
from dora_cloudevents.metrics.rollups import DailyCounts
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import claim_pending, set_statuses, still_pending
from dora_cloudevents.store.schema import (
    artifact_changes,
    cdevent_links,
    cdevent_refs,
    cdevents_raw,
    changes,
    commits,
    daily_deployments,
    daily_lead_times,
    deployment_changes,
    deployments,
    first_deployments,
    incidents,
)

log = logging.getLogger(__name__)

# Projectors (replicas, overlapping CronJobs) take turns on PostgreSQL: a batch's links
# depend on facts other batches are writing (a deployment and the push it ships), which an
# uncommitted concurrent batch would hide. SQLite's BEGIN IMMEDIATE already serialises.
PROJECTOR_LOCK = 0x646F7261_70726A  # "dora", "prj"


@dataclass
class Writes:
    """The rows a batch writes, per statement, in the order its CDEvents came: executed
    together (each upsert still merges row by row, so the order-free merge rules hold)."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {
        name: [] for name in ("deployments", "changes", "commits", "incidents", "artifacts",
                              "links", "refs")})


@lru_cache(maxsize=2)
def _statements(dialect_name: str) -> dict[str, Any]:
    """Each entity's insert-or-merge statement, built once (building them per event cost
    more than running them)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    change = dialect.insert(changes)
    merged = change.excluded
    incident = dialect.insert(incidents)
    commit = dialect.insert(commits)
    reported = commit.excluded
    report = incident.excluded
    return {
        "deployments": dialect.insert(deployments).on_conflict_do_nothing(),
        "changes": change.on_conflict_do_update(index_elements=["key"], set_={
            "repository": func.coalesce(changes.c.repository, merged.repository),
            "title": func.coalesce(changes.c.title, merged.title),
            "branch": func.coalesce(changes.c.branch, merged.branch),
            "head_branch": func.coalesce(changes.c.head_branch, merged.head_branch),
            "merge_commit_sha": func.coalesce(merged.merge_commit_sha,
                                              changes.c.merge_commit_sha),
            "kind": _stronger_kind(merged.kind, changes.c.kind),
            "created_at": _earliest(changes.c.created_at, merged.created_at),
            "merged_at": _earliest(changes.c.merged_at, merged.merged_at),
            "abandoned_at": _earliest(changes.c.abandoned_at, merged.abandoned_at),
        }),
        "commits": commit.on_conflict_do_update(
            index_elements=["repository", "branch", "sha"],
            set_={"change_key": reported.change_key, "reported_at": reported.reported_at},
            where=_reported_earlier(reported, commits.c)),
        "incidents": incident.on_conflict_do_update(index_elements=["key"], set_={
            # A report that names the service beats one that did not, whatever came first.
            "service": case((incidents.c.service == "unknown", report.service),
                            else_=incidents.c.service),
            "artifact_key": func.coalesce(incidents.c.artifact_key, report.artifact_key),
            "description": func.coalesce(incidents.c.description, report.description),
            "detected_at": _earliest(incidents.c.detected_at, report.detected_at),
            "last_detected_at": _latest(incidents.c.last_detected_at, report.last_detected_at),
            "last_resolved_at": _latest(incidents.c.last_resolved_at, report.last_resolved_at),
        }),
        "artifacts": dialect.insert(artifact_changes).on_conflict_do_nothing(),
        "links": dialect.insert(cdevent_links).on_conflict_do_nothing(),
        "refs": dialect.insert(cdevent_refs).on_conflict_do_nothing(),
    }


class Projector:
    """One batch at a time over pending CDEvents; safe to run as several replicas."""

    def __init__(self, engine: Engine, settings: Settings, batch_size: int = 500) -> None:
        self.engine = engine
        self.settings = settings
        self.catalog = ServiceCatalog.from_settings(settings)
        self.default_environment = (settings.production_environments or ["production"])[0]
        self.batch_size = batch_size

    def project_batch(self) -> int:
        """Project up to ``batch_size`` pending CDEvents; returns how many were claimed."""
        with write_transaction(self.engine) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": PROJECTOR_LOCK})
            claimed = claim_pending(connection, cdevents_raw, self.batch_size)
            if connection.dialect.name == "sqlite":
                pending = still_pending(connection, cdevents_raw, [row.seq for row in claimed])
                claimed = [row for row in claimed if row.seq in pending]
            touched, writes, counts = Touched(), Writes(), DailyCounts()
            outcomes = [self._apply(row.seq, row.event, touched, writes) for row in claimed]
            _write(connection, writes, touched, counts)
            set_statuses(connection, cdevents_raw, outcomes)
            self._relink(connection, touched, counts)
            counts.apply(connection)
            return len(claimed)

    def project_all(self, max_batches: int | None = None) -> int:
        total = batches = 0
        while max_batches is None or batches < max_batches:
            done = self.project_batch()
            total += done
            batches += 1
            if done == 0:
                break
        return total

    def _apply(self, seq: int, event: Any, touched: Touched, writes: Writes
               ) -> tuple[int, str, str | None]:
        subject, predicate = event_kind(event)
        try:
            deployment_seq, ref = None, None
            if subject == "service" and predicate in ("deployed", "upgraded", "rolledback"):
                self._deployment(seq, event, predicate, touched, writes)
                deployment_seq = seq
            elif subject == "change":
                change = change_fact(event, predicate)
                _change(change, touched, writes)
                ref = CHANGE + change.key
            elif subject == "incident" and predicate in ("detected", "reported", "resolved"):
                self._incident(incident_fact(event, predicate), writes)
            elif subject == "artifact" and predicate in ("packaged", "published"):
                ref = _artifact(event, touched, writes)
            _links(event, deployment_seq, ref, touched, writes)
        except (KeyError, TypeError, ValueError) as error:
            # Validated CDEvents cannot lack what the spec requires; this guards customData.
            log.warning("CDEvent %s could not be projected: %s", seq, error)
            return seq, "failed", f"{error.__class__.__name__}: {error}"
        return seq, "projected", None

    def _deployment(self, seq: int, event: Any, predicate: str, touched: Touched,
                    writes: Writes) -> None:
        fact = deployment_fact(event, predicate)
        service = self.catalog.canonical(fact.service)
        sha = commit_sha(fact.revision)
        writes.rows["deployments"].append({
            "cdevent_seq": seq, "service": service, "environment": fact.environment,
            "kind": fact.kind, "artifact_id": fact.artifact_id,
            "artifact_key": artifact_key(fact.artifact_id), "revision": fact.revision,
            "revision_sha": sha, "revision_prefix": sha and sha[:7], "time": fact.time})
        touched.partition_from((service, fact.environment), fact.time)

    def _incident(self, fact: IncidentFact, writes: Writes) -> None:
        detected = fact.time if fact.predicate != "resolved" else None
        writes.rows["incidents"].append({
            "key": fact.key, "service": self.catalog.canonical(fact.service or "unknown"),
            "environment": fact.environment or self.default_environment,
            "artifact_key": artifact_key(fact.artifact_id), "description": fact.description,
            "detected_at": detected, "last_detected_at": detected,
            "last_resolved_at": fact.time if fact.predicate == "resolved" else None})

    def _relink(self, connection: Connection, touched: Touched, counts: DailyCounts) -> None:
        moved = _moved_changes(connection, touched)
        update_change_times(connection, moved)  # before linking reads them for lead times
        found = affected(connection, touched)
        for partition, seqs in sorted(found.reship.items()):
            reship(connection, partition, seqs, counts)
        for partition, since in sorted(found.since.items()):
            relink(connection, partition, since, self.settings.attribution_window,
                   touched.incidents, counts)
        refresh_first_deployments(connection, moved, None, counts)


def _change(fact: ChangeFact, touched: Touched, writes: Writes) -> None:
    writes.rows["changes"].append({
        "key": fact.key, "repository": fact.repository, "kind": fact.kind, "title": fact.title,
        "branch": fact.branch, "head_branch": fact.head_branch,
        "merge_commit_sha": fact.merge_commit_sha,
        "created_at": fact.time if fact.predicate == "created" else None,
        "merged_at": fact.time if fact.predicate == "merged" else None,
        "abandoned_at": fact.time if fact.predicate == "abandoned" else None})
    branch = fact.branch if fact.kind == "push" else fact.head_branch
    if fact.commits and fact.repository and branch:
        writes.rows["commits"].extend(
            {"repository": fact.repository, "branch": branch, "sha": commit.sha,
             "timestamp": commit.timestamp, "change_key": fact.key,
             "on_default_branch": fact.on_default_branch, "reported_at": fact.time}
            for commit in fact.commits)
        touched.branches.add((fact.repository, branch))
    touched.changes.add(fact.key)
    touched.shas.update(commit.sha for commit in fact.commits)
    if fact.merge_commit_sha:
        touched.shas.add(fact.merge_commit_sha)


def _artifact(event: Any, touched: Touched, writes: Writes) -> str | None:
    """Records the change the artifact was built from; returns the artifact's ref."""
    link = artifact_change(event)
    if link is not None:
        writes.rows["artifacts"].append({"artifact_key": link[0], "change_key": link[1]})
        touched.artifacts.add(link[0])
    key = artifact_key(event["subject"]["id"])
    return None if key is None else ARTIFACT + key


def _links(event: Any, deployment_seq: int | None, ref: str | None, touched: Touched,
           writes: Writes) -> None:
    """The event's links (a deployment's also to its chain), and what a link to it, or to
    its chain, leads to (``ref``)."""
    own_id = event["context"]["id"]
    targets = linked_event_ids(event)
    if deployment_seq is None:
        # Only deployments start a walk: a chain matters to them, not to the others.
        targets = [target for target in targets if target != chain_node(event)]
    writes.rows["links"].extend({"event_id": own_id, "target_id": target,
                                 "deployment_seq": deployment_seq} for target in targets)
    if targets:
        touched.linked.add(own_id)
    if ref is not None:
        for node in (own_id, chain_node(event)):
            if node is not None:
                writes.rows["refs"].append({"event_id": node, "ref": ref})
                touched.linked.add(node)


def _write(connection: Connection, writes: Writes, touched: Touched, counts: DailyCounts
           ) -> None:
    """Write the batch's facts; note what they touched that only the stored rows tell."""
    merging = sorted({row["key"] for row in writes.rows["changes"] if row["merge_commit_sha"]})
    for chunk in chunks(merging):
        # A new merge commit replaces the old: what the old one shipped changes owner.
        touched.shas.update(connection.execute(select(changes.c.merge_commit_sha).where(
            changes.c.key.in_(chunk), changes.c.merge_commit_sha.is_not(None))).scalars())
    touched.changes.update(_current_owners(connection, writes.rows["commits"]))
    _count_new_deployments(connection, writes.rows["deployments"], counts)
    statements = _statements(connection.dialect.name)
    for name, rows in writes.rows.items():
        if rows:
            connection.execute(statements[name], rows)
    reported = sorted({row["key"] for row in writes.rows["incidents"]})
    touched.incidents.update(reported)
    for chunk in chunks(reported):
        for row in connection.execute(select(incidents.c.service, incidents.c.environment,
                                             incidents.c.detected_at)
                                      .where(incidents.c.key.in_(chunk))):
            if row.detected_at is not None:
                touched.partition_from((row.service, row.environment), row.detected_at)


def _count_new_deployments(connection: Connection, rows: list[dict[str, Any]],
                           counts: DailyCounts) -> None:
    """Count the deployments the batch adds (not those already stored: the insert skips
    them) into their days."""
    seqs = [row["cdevent_seq"] for row in rows]
    stored = {seq for chunk in chunks(seqs) for seq in connection.execute(
        select(deployments.c.cdevent_seq).where(deployments.c.cdevent_seq.in_(chunk))).scalars()}
    for row in rows:
        if row["cdevent_seq"] not in stored:
            counts.deployment(row["environment"], row["time"], count=1)


def _current_owners(connection: Connection, reports: list[dict[str, Any]]) -> set[str]:
    """The changes that own the reported commits now, if another change reports them: an
    earlier report takes a commit over, and the change losing it may lose its time."""
    reporters: dict[tuple[str, str, str], set[str]] = {}
    for report in reports:
        reporters.setdefault((report["repository"], report["branch"], report["sha"]),
                             set()).add(report["change_key"])
    owners: set[str] = set()
    # By SHA alone (its index), the repository and branch checked here.
    for chunk in chunks(sorted({sha for _, _, sha in reporters})):
        for row in connection.execute(select(commits.c.repository, commits.c.branch,
                                             commits.c.sha, commits.c.change_key)
                                      .where(commits.c.sha.in_(chunk))):
            others = reporters.get((row.repository, row.branch, row.sha))
            if others is not None and others != {row.change_key}:
                owners.add(row.change_key)
    return owners


def _moved_changes(connection: Connection, touched: Touched) -> set[str]:
    """Changes whose time may have moved: their own events, or commits pushed to their
    pull request's head branch."""
    keys = set(touched.changes)
    for repository, chunk in grouped(touched.branches):
        keys.update(connection.execute(select(changes.c.key).where(
            changes.c.repository == repository, changes.c.head_branch.in_(chunk))).scalars())
    return keys


def _reported_earlier(new: Any, current: Any) -> Any:
    """Whether a commit's new report takes it over: it came earlier, or at the same time
    from a change with a lower key (a deterministic owner whatever the arrival order)."""
    return or_(current.reported_at.is_(None), new.reported_at < current.reported_at,
               and_(new.reported_at == current.reported_at,
                    new.change_key < current.change_key))


def _earliest(current: Any, new: Any) -> Any:
    return func.coalesce(_pick(current, new, "<"), current, new)


def _latest(current: Any, new: Any) -> Any:
    return func.coalesce(_pick(current, new, ">"), current, new)


def _pick(current: Any, new: Any, operator: str) -> Any:
    chosen = current < new if operator == "<" else current > new
    return case((chosen, current), else_=new)


def _stronger_kind(new: Any, current: Any) -> Any:
    # "other" (a change seen only through events without branch details) yields to
    # whatever a richer event says it is.
    return case((current == "other", new), else_=current)


ENTITY_TABLES = (daily_lead_times, daily_deployments, first_deployments, deployment_changes,
                 incidents, artifact_changes, commits, changes, deployments, cdevent_links,
                 cdevent_refs)


def reset_projection(connection: Connection) -> None:
    """Empty the entity tables and send every CDEvent back to the projector."""
    for table in ENTITY_TABLES:
        connection.execute(table.delete())
    connection.execute(update(cdevents_raw).values(status="pending", error=None))

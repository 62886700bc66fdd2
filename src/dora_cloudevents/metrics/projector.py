"""The projector: applies each stored CDEvent once to the entity tables, then re-links.

Facts are merged so that their order does not matter (earliest detection, latest
resolution, first-seen service...), and every partition (service, environment) a batch
affected is re-linked from the earliest time the batch affected in it (metrics/affected.py)
from the facts as they now stand: events arriving late or out of order give the same result
as events arriving in time order, and the cost follows the new events, not the history.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, Engine, Table, case, func, select, text, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.affected import Touched, affected
from dora_cloudevents.metrics.catalog import ServiceCatalog
from dora_cloudevents.metrics.facts import (
    ChangeFact,
    IncidentFact,
    artifact_change,
    artifact_key,
    change_fact,
    commit_sha,
    deployment_fact,
    event_kind,
    incident_fact,
)
from dora_cloudevents.metrics.linking import (
    chunks,
    refresh_first_deployments,
    relink,
    update_change_times,
)
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import claim_pending, set_statuses, still_pending
from dora_cloudevents.store.schema import (
    artifact_changes,
    cdevents_raw,
    changes,
    commits,
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


def _insert(connection: Connection, table: Table) -> Any:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


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
            touched = Touched()
            outcomes = [self._apply(connection, row.seq, row.event, touched) for row in claimed]
            set_statuses(connection, cdevents_raw, outcomes)
            self._relink(connection, touched)
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

    def _apply(self, connection: Connection, seq: int, event: Any, touched: Touched
               ) -> tuple[int, str, str | None]:
        subject, predicate = event_kind(event)
        try:
            if subject == "service" and predicate in ("deployed", "upgraded", "rolledback"):
                self._deployment(connection, seq, event, predicate, touched)
            elif subject == "change":
                self._change(connection, change_fact(event, predicate), touched)
            elif subject == "incident" and predicate in ("detected", "reported", "resolved"):
                self._incident(connection, incident_fact(event, predicate), touched)
            elif subject == "artifact" and predicate in ("packaged", "published"):
                self._artifact(connection, event, touched)
        except (KeyError, TypeError, ValueError) as error:
            # Validated CDEvents cannot lack what the spec requires; this guards customData.
            log.warning("CDEvent %s could not be projected: %s", seq, error)
            return seq, "failed", f"{error.__class__.__name__}: {error}"
        return seq, "projected", None

    def _deployment(self, connection: Connection, seq: int, event: Any, predicate: str,
                    touched: Touched) -> None:
        fact = deployment_fact(event, predicate)
        service = self.catalog.canonical(fact.service)
        sha = commit_sha(fact.revision)
        connection.execute(_insert(connection, deployments).values(
            cdevent_seq=seq, service=service, environment=fact.environment, kind=fact.kind,
            artifact_id=fact.artifact_id, artifact_key=artifact_key(fact.artifact_id),
            revision=fact.revision, revision_sha=sha, revision_prefix=sha and sha[:7],
            time=fact.time,
        ).on_conflict_do_nothing())
        touched.partition_from((service, fact.environment), fact.time)

    def _change(self, connection: Connection, fact: ChangeFact, touched: Touched) -> None:
        if fact.merge_commit_sha:
            # A new merge commit replaces the old: what the old one shipped changes owner.
            touched.shas.update(connection.execute(select(changes.c.merge_commit_sha).where(
                changes.c.key == fact.key, changes.c.merge_commit_sha.is_not(None))).scalars())
        statement = _insert(connection, changes).values(
            key=fact.key, repository=fact.repository, kind=fact.kind, title=fact.title,
            branch=fact.branch, head_branch=fact.head_branch,
            merge_commit_sha=fact.merge_commit_sha,
            created_at=fact.time if fact.predicate == "created" else None,
            merged_at=fact.time if fact.predicate == "merged" else None,
            abandoned_at=fact.time if fact.predicate == "abandoned" else None,
        )
        merged = statement.excluded
        connection.execute(statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
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
            },
        ))
        branch = fact.branch if fact.kind == "push" else fact.head_branch
        if fact.commits and fact.repository and branch:
            connection.execute(_insert(connection, commits).on_conflict_do_nothing(), [
                {"repository": fact.repository, "branch": branch, "sha": commit.sha,
                 "timestamp": commit.timestamp, "change_key": fact.key,
                 "on_default_branch": fact.on_default_branch}
                for commit in fact.commits])
        if fact.repository and branch and fact.commits:
            touched.branches.add((fact.repository, branch))
        touched.changes.add(fact.key)
        touched.shas.update(commit.sha for commit in fact.commits)
        if fact.merge_commit_sha:
            touched.shas.add(fact.merge_commit_sha)

    def _incident(self, connection: Connection, fact: IncidentFact, touched: Touched) -> None:
        service = self.catalog.canonical(fact.service or "unknown")
        environment = fact.environment or self.default_environment
        detected = fact.time if fact.predicate != "resolved" else None
        resolved = fact.time if fact.predicate == "resolved" else None
        statement = _insert(connection, incidents).values(
            key=fact.key, service=service, environment=environment,
            artifact_key=artifact_key(fact.artifact_id), description=fact.description,
            detected_at=detected, last_detected_at=detected, last_resolved_at=resolved,
        )
        merged = statement.excluded
        connection.execute(statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                # A report that names the service beats one that did not, whatever came first.
                "service": case((incidents.c.service == "unknown", merged.service),
                                else_=incidents.c.service),
                "artifact_key": func.coalesce(incidents.c.artifact_key, merged.artifact_key),
                "description": func.coalesce(incidents.c.description, merged.description),
                "detected_at": _earliest(incidents.c.detected_at, merged.detected_at),
                "last_detected_at": _latest(incidents.c.last_detected_at,
                                            merged.last_detected_at),
                "last_resolved_at": _latest(incidents.c.last_resolved_at,
                                            merged.last_resolved_at),
            },
        ))
        stored = connection.execute(select(incidents.c.service, incidents.c.environment,
                                           incidents.c.detected_at)
                                    .where(incidents.c.key == fact.key)).one()
        touched.incidents.add(fact.key)
        if stored.detected_at is not None:
            touched.partition_from((stored.service, stored.environment), stored.detected_at)

    def _artifact(self, connection: Connection, event: Any, touched: Touched) -> None:
        link = artifact_change(event)
        if link is None:
            return
        connection.execute(_insert(connection, artifact_changes).values(
            artifact_key=link[0], change_key=link[1]).on_conflict_do_nothing())
        touched.artifacts.add(link[0])

    def _relink(self, connection: Connection, touched: Touched) -> None:
        moved = _moved_changes(connection, touched)
        update_change_times(connection, moved)  # before linking reads them for lead times
        for partition, since in sorted(affected(connection, touched).items()):
            relink(connection, partition, since, self.settings.attribution_window,
                   touched.incidents)
        refresh_first_deployments(connection, moved, None)


def _moved_changes(connection: Connection, touched: Touched) -> set[str]:
    """Changes whose time may have moved: their own events, or commits pushed to their
    pull request's head branch."""
    keys = set(touched.changes)
    for chunk in chunks(sorted(touched.branches)):
        keys.update(connection.execute(select(changes.c.key).where(
            tuple_(changes.c.repository, changes.c.head_branch).in_(chunk))).scalars())
    return keys


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


ENTITY_TABLES = (first_deployments, deployment_changes, incidents, artifact_changes, commits,
                 changes, deployments)


def reset_projection(connection: Connection) -> None:
    """Empty the entity tables and send every CDEvent back to the projector."""
    for table in ENTITY_TABLES:
        connection.execute(table.delete())
    connection.execute(update(cdevents_raw).values(status="pending", error=None))

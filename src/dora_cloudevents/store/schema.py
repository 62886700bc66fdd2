"""Table definitions; the Alembic migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both back-ends (SQLite keeps no zone, so add it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


@lru_cache(maxsize=256)  # the rows of one request share their received_at
def sqlite_timestamp(value: datetime) -> str:
    """How SQLAlchemy stores a DateTime in SQLite, for the raw-DBAPI hot path."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

# SQLite only auto-increments an INTEGER PRIMARY KEY, PostgreSQL wants 64 bits for a log.
Sequence = BigInteger().with_variant(Integer(), "sqlite")
Payload = JSON().with_variant(JSONB(), "postgresql")

# Raw CloudEvents as received, kept whole so history can be replayed.
# `status` is the router's claim marker: pending -> routed | unrouted | failed.
cloudevents_raw = Table(
    "cloudevents_raw",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("subject", Text),
    Column("time", Text),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("event", Payload, nullable=False),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    UniqueConstraint("source", "event_id", name="uq_cloudevents_raw_source_id"),
    Index("ix_cloudevents_raw_status_seq", "status", "seq"),
    Index("ix_cloudevents_raw_type_seq", "type", "seq"),
)

# CDEvents, native or produced by a transformer (then `origin_seq` names the raw event).
# `status` is the projector's claim marker: pending -> projected | failed.
cdevents_raw = Table(
    "cdevents_raw",
    metadata,
    Column("seq", Sequence, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("spec_version", String(16), nullable=False),
    Column("subject_id", Text),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("event", Payload, nullable=False),
    Column("origin_seq", Sequence),
    Column("transformer", Text),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("error", Text),
    UniqueConstraint("source", "event_id", name="uq_cdevents_raw_source_id"),
    Index("ix_cdevents_raw_status_seq", "status", "seq"),
    Index("ix_cdevents_raw_type_seq", "type", "seq"),
    Index("ix_cdevents_raw_origin_seq", "origin_seq"),
)

# ---- Entities derived from CDEvents by the projector (rebuildable; see metrics/). ----

# One row per deployment CDEvent (service.deployed / upgraded / rolledback). The columns
# after `time` (except `revision_sha` and `revision_prefix`) are derived by linking and
# rewritten whenever that part of the partition (service, environment) is re-linked:
# `branch` and `revision_time` locate the revision commit, `watermark` is how far its line
# (repository, branch) had shipped after this deployment, so linking can resume from it.
deployments = Table(
    "deployments",
    metadata,
    Column("cdevent_seq", Sequence, primary_key=True, autoincrement=False),
    Column("service", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("artifact_id", Text),
    Column("artifact_key", Text),
    Column("revision", Text),
    Column("time", UTCDateTime(), nullable=False),
    Column("repository", Text),
    Column("revision_sha", Text),
    Column("revision_prefix", String(7)),
    Column("branch", Text),
    Column("revision_time", UTCDateTime()),
    Column("watermark", UTCDateTime()),
    Column("failed", Boolean, nullable=False, server_default=false()),
    Column("failed_by", String(16)),
    Column("recovered_at", UTCDateTime()),
    # recovered_at - time, kept beside it: the median recovery time sorts a plain column.
    Column("recovery_seconds", Float),
    Column("rework", Boolean, nullable=False, server_default=false()),
    # The flags make the deployment counts per day index-only (metrics/queries.py).
    Index("ix_deployments_partition_time", "service", "environment", "time", "failed",
          "rework"),
    Index("ix_deployments_environment_time", "environment", "time", "failed", "rework"),
    Index("ix_deployments_revision", "revision"),
    Index("ix_deployments_repository", "repository"),
    Index("ix_deployments_line_watermark", "repository", "branch", "watermark"),
    Index("ix_deployments_partition_line", "service", "environment", "repository", "branch",
          "time"),
    Index("ix_deployments_revision_prefix", "revision_prefix"),
    Index("ix_deployments_artifact", "artifact_key"),
    # Covering the recovery times over every service: failed deployments only.
    Index("ix_deployments_recoveries", "failed", "environment", "time", "recovery_seconds",
          "service"),
)

# A unit of change: a pull/merge request, or a direct push to a branch.
changes = Table(
    "changes",
    metadata,
    Column("key", Text, primary_key=True),
    Column("repository", Text),
    Column("kind", String(16), nullable=False),
    Column("title", Text),
    Column("created_at", UTCDateTime()),
    Column("merged_at", UTCDateTime()),
    Column("abandoned_at", UTCDateTime()),
    Column("branch", Text),
    Column("head_branch", Text),
    Column("merge_commit_sha", Text),
    Column("earliest_commit_at", UTCDateTime()),
    Index("ix_changes_merge_commit", "merge_commit_sha"),
    Index("ix_changes_head_branch", "repository", "head_branch"),
)

# Every (repository, branch, commit) seen in change events, with the change that carried it.
commits = Table(
    "commits",
    metadata,
    Column("repository", Text, primary_key=True),
    Column("branch", Text, primary_key=True),
    Column("sha", Text, primary_key=True),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("change_key", Text, nullable=False),
    Column("on_default_branch", Boolean, nullable=False, server_default=false()),
    # When the owning change's event reported it: the earliest report owns the commit
    # (ties: the lowest change key), so the owner does not depend on arrival order.
    Column("reported_at", UTCDateTime()),
    Index("ix_commits_sha", "sha"),
    Index("ix_commits_branch_time", "repository", "branch", "timestamp"),
    Index("ix_commits_change_key", "change_key"),
)

# artifact.packaged / artifact.published naming the change they were built from.
artifact_changes = Table(
    "artifact_changes",
    metadata,
    Column("artifact_key", Text, primary_key=True),
    Column("change_key", Text, primary_key=True),
)

# CDEvents links (spec 0.4+): each edge goes from the event carrying the link to the
# event it names (PATH and END: `from`, RELATION: `target`), and from a deployment to its
# chain ("chain:" + `chainId`). `deployment_seq` marks a deployment's own edges.
cdevent_links = Table(
    "cdevent_links",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("target_id", Text, primary_key=True),
    Column("deployment_seq", Sequence),
    Index("ix_cdevent_links_target", "target_id"),
    Index("ix_cdevent_links_deployment", "deployment_seq"),
)

# What a link can lead to: a change event's change ("change:" + key), an artifact event's
# artifact ("artifact:" + key), under the event's id and under its chain's.
cdevent_refs = Table(
    "cdevent_refs",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("ref", Text, primary_key=True),
    Index("ix_cdevent_refs_ref", "ref"),
)

# Incidents, keyed by the CDEvent subject id. Detection is the earliest report, and the
# incident is resolved (`resolved_at`, derived) when its latest resolution is not older than
# its latest detection: re-detected after resolving, it is open again. Reports may arrive in
# any order, so a resolution can exist before any detection (detected_at NULL until then).
incidents = Table(
    "incidents",
    metadata,
    Column("key", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("artifact_key", Text),
    Column("description", Text),
    Column("detected_at", UTCDateTime()),
    Column("last_detected_at", UTCDateTime()),
    Column("last_resolved_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("restore_seconds", Float),  # resolved_at - detected_at, for the median's sort
    Column("deployment_seq", Sequence),
    Index("ix_incidents_partition_detected", "service", "environment", "detected_at"),
    Index("ix_incidents_detected", "detected_at"),
    Index("ix_incidents_deployment", "deployment_seq"),
    Index("ix_incidents_artifact", "artifact_key"),
    Index("ix_incidents_environment_detected", "environment", "detected_at",
          "restore_seconds", "service"),
)

# Which changes each deployment shipped (derived by linking, per partition).
deployment_changes = Table(
    "deployment_changes",
    metadata,
    Column("deployment_seq", Sequence, primary_key=True),
    Column("change_key", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("environment", Text, nullable=False),
    Column("deployed_at", UTCDateTime(), nullable=False),
    Index("ix_deployment_changes_change_env", "change_key", "environment"),
    Index("ix_deployment_changes_partition_time", "service", "environment", "deployed_at"),
)

# Each change's first deployment to each environment, with its lead time: kept current by
# the projector so the lead-time metric reads one indexed row per change instead of
# searching deployment_changes for earlier deployments on every query.
first_deployments = Table(
    "first_deployments",
    metadata,
    Column("change_key", Text, primary_key=True),
    Column("environment", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("deployment_seq", Sequence, nullable=False),
    Column("deployed_at", UTCDateTime(), nullable=False),
    Column("change_time", UTCDateTime()),
    Column("lead_seconds", Float),
    Column("lead_bucket", Integer),  # metrics/rollups.lead_bucket(lead_seconds)
    Index("ix_first_deployments_environment_time", "environment", "deployed_at"),
    Index("ix_first_deployments_partition_time", "service", "environment", "deployed_at",
          "lead_bucket", "lead_seconds"),
    # Covering: a bucket's values are read from the index alone (metrics/queries.py).
    Index("ix_first_deployments_lead_bucket", "environment", "lead_bucket", "deployed_at",
          "lead_seconds"),
)

# Per-day rollups of the two tables above, kept by the projector in the same transactions
# (metrics/rollups.py), so metrics over many services read days instead of every fact.
daily_deployments = Table(
    "daily_deployments",
    metadata,
    Column("environment", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("deployments", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    Column("rework", Integer, nullable=False),
)

daily_lead_times = Table(
    "daily_lead_times",
    metadata,
    Column("environment", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("lead_bucket", Integer, primary_key=True),
    Column("changes", Integer, nullable=False),
)

"""Entities the metrics stage derives: deployments, changes, commits, incidents, links."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("cdevent_seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("artifact_id", sa.Text),
        sa.Column("artifact_key", sa.Text),
        sa.Column("revision", sa.Text),
        sa.Column("time", TIME, nullable=False),
        sa.Column("repository", sa.Text),
        sa.Column("revision_sha", sa.Text),
        sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("failed_by", sa.String(16)),
        sa.Column("recovered_at", TIME),
        sa.Column("rework", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_deployments_partition_time", "deployments",
                    ["service", "environment", "time"])
    op.create_index("ix_deployments_environment_time", "deployments", ["environment", "time"])
    op.create_index("ix_deployments_revision", "deployments", ["revision"])
    op.create_index("ix_deployments_repository", "deployments", ["repository"])
    op.create_table(
        "changes",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("repository", sa.Text),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.Text),
        sa.Column("created_at", TIME),
        sa.Column("merged_at", TIME),
        sa.Column("abandoned_at", TIME),
        sa.Column("branch", sa.Text),
        sa.Column("head_branch", sa.Text),
        sa.Column("merge_commit_sha", sa.Text),
        sa.Column("earliest_commit_at", TIME),
    )
    op.create_index("ix_changes_merge_commit", "changes", ["merge_commit_sha"])
    op.create_index("ix_changes_head_branch", "changes", ["repository", "head_branch"])
    op.create_table(
        "commits",
        sa.Column("repository", sa.Text, primary_key=True),
        sa.Column("branch", sa.Text, primary_key=True),
        sa.Column("sha", sa.Text, primary_key=True),
        sa.Column("timestamp", TIME, nullable=False),
        sa.Column("change_key", sa.Text, nullable=False),
        sa.Column("on_default_branch", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_commits_sha", "commits", ["sha"])
    op.create_index("ix_commits_branch_time", "commits", ["repository", "branch", "timestamp"])
    op.create_table(
        "artifact_changes",
        sa.Column("artifact_key", sa.Text, primary_key=True),
        sa.Column("change_key", sa.Text, primary_key=True),
    )
    op.create_table(
        "incidents",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("artifact_key", sa.Text),
        sa.Column("description", sa.Text),
        sa.Column("detected_at", TIME),
        sa.Column("last_detected_at", TIME),
        sa.Column("last_resolved_at", TIME),
        sa.Column("resolved_at", TIME),
        sa.Column("deployment_seq", SEQ),
    )
    op.create_index("ix_incidents_partition_detected", "incidents",
                    ["service", "environment", "detected_at"])
    op.create_index("ix_incidents_detected", "incidents", ["detected_at"])
    op.create_table(
        "deployment_changes",
        sa.Column("deployment_seq", SEQ, primary_key=True),
        sa.Column("change_key", sa.Text, primary_key=True),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("environment", sa.Text, nullable=False),
        sa.Column("deployed_at", TIME, nullable=False),
    )
    op.create_index("ix_deployment_changes_change_env", "deployment_changes",
                    ["change_key", "environment"])
    op.create_index("ix_deployment_changes_partition", "deployment_changes",
                    ["service", "environment"])


def downgrade() -> None:
    for table in ("deployment_changes", "incidents", "artifact_changes", "commits", "changes",
                  "deployments"):
        op.drop_table(table)

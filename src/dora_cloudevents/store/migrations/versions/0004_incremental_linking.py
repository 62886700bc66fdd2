"""Incremental linking: where each deployment's revision line stood, and the indexes that
let the projector re-link only from the earliest affected time."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)
DEPLOYMENT_COLUMNS = (("revision_prefix", sa.String(7)), ("branch", sa.Text),
                      ("revision_time", TIME), ("watermark", TIME))
INDEXES = (
    ("ix_deployments_line_watermark", "deployments", ["repository", "branch", "watermark"]),
    ("ix_deployments_partition_line", "deployments",
     ["service", "environment", "repository", "branch", "time"]),
    ("ix_deployments_revision_prefix", "deployments", ["revision_prefix"]),
    ("ix_deployments_artifact", "deployments", ["artifact_key"]),
    ("ix_commits_change_key", "commits", ["change_key"]),
    ("ix_incidents_deployment", "incidents", ["deployment_seq"]),
    ("ix_incidents_artifact", "incidents", ["artifact_key"]),
    ("ix_deployment_changes_partition_time", "deployment_changes",
     ["service", "environment", "deployed_at"]),
)


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        for name, kind in DEPLOYMENT_COLUMNS:
            batch.add_column(sa.Column(name, kind))
    op.drop_index("ix_deployment_changes_partition", "deployment_changes")
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    # The new columns are derived: rebuild the projection so every deployment has them.
    for table in ("first_deployments", "deployment_changes", "incidents", "artifact_changes",
                  "commits", "changes", "deployments"):
        op.execute(f"DELETE FROM {table}")
    op.execute("UPDATE cdevents_raw SET status = 'pending', error = NULL")


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table)
    op.create_index("ix_deployment_changes_partition", "deployment_changes",
                    ["service", "environment"])
    with op.batch_alter_table("deployments") as batch:
        for name, _ in reversed(DEPLOYMENT_COLUMNS):
            batch.drop_column(name)

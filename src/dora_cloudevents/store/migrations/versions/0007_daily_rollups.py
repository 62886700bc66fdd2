"""Per-day rollups of deployments and lead times (metrics/rollups.py), filled from the
projection as it stands (no re-projection needed), and covering indexes for the metrics
over every service."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dora_cloudevents.metrics.rollups import rebuild_rollups

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Covering indexes for the metrics queries: a lead bucket's values, the recovery times of
# failed deployments, incidents by environment.
INDEXES = (
    ("ix_first_deployments_lead_bucket", "first_deployments",
     ["environment", "lead_bucket", "deployed_at", "lead_seconds"]),
    ("ix_deployments_recoveries", "deployments",
     ["failed", "environment", "time", "recovered_at", "service"]),
    ("ix_incidents_environment_detected", "incidents",
     ["environment", "detected_at", "resolved_at", "service"]),
)
# Existing indexes that now cover what the metrics read: (name, table, before, after).
WIDENED = (
    ("ix_deployments_partition_time", "deployments", ["service", "environment", "time"],
     ["service", "environment", "time", "failed", "rework"]),
    ("ix_deployments_environment_time", "deployments", ["environment", "time"],
     ["environment", "time", "failed", "rework"]),
    ("ix_first_deployments_partition_time", "first_deployments",
     ["service", "environment", "deployed_at"],
     ["service", "environment", "deployed_at", "lead_bucket", "lead_seconds"]),
)


def upgrade() -> None:
    with op.batch_alter_table("first_deployments") as batch:
        batch.add_column(sa.Column("lead_bucket", sa.Integer))
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)
    for name, table, _, columns in WIDENED:
        op.drop_index(name, table)
        op.create_index(name, table, columns)
    op.create_table(
        "daily_deployments",
        sa.Column("environment", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("deployments", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("rework", sa.Integer, nullable=False),
    )
    op.create_table(
        "daily_lead_times",
        sa.Column("environment", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("lead_bucket", sa.Integer, primary_key=True),
        sa.Column("changes", sa.Integer, nullable=False),
    )
    rebuild_rollups(op.get_bind())


def downgrade() -> None:
    op.drop_table("daily_lead_times")
    op.drop_table("daily_deployments")
    for name, table, columns, _ in WIDENED:
        op.drop_index(name, table)
        op.create_index(name, table, columns)
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table)
    with op.batch_alter_table("first_deployments") as batch:
        batch.drop_column("lead_bucket")

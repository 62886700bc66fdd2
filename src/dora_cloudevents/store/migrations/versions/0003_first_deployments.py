"""first_deployments: each change's first deployment per environment, with its lead time."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "first_deployments",
        sa.Column("change_key", sa.Text, primary_key=True),
        sa.Column("environment", sa.Text, primary_key=True),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("deployment_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("deployed_at", TIME, nullable=False),
        sa.Column("change_time", TIME),
        sa.Column("lead_seconds", sa.Float),
    )
    op.create_index("ix_first_deployments_environment_time", "first_deployments",
                    ["environment", "deployed_at"])
    op.create_index("ix_first_deployments_partition_time", "first_deployments",
                    ["service", "environment", "deployed_at"])
    # Existing projections are rebuilt so the new table is filled from history.
    op.execute("DELETE FROM deployment_changes")
    for table in ("incidents", "artifact_changes", "commits", "changes", "deployments"):
        op.execute(f"DELETE FROM {table}")
    op.execute("UPDATE cdevents_raw SET status = 'pending', error = NULL")


def downgrade() -> None:
    op.drop_table("first_deployments")

"""Commit owners by report time: the earliest report of a commit on a branch owns it, so
the owner no longer depends on the order in which the reports arrived."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROJECTION = ("first_deployments", "deployment_changes", "incidents", "artifact_changes",
              "commits", "changes", "deployments")


def upgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True)))
    # Owners were chosen by arrival order: rebuild the projection with the new rule.
    for table in PROJECTION:
        op.execute(f"DELETE FROM {table}")
    op.execute("UPDATE cdevents_raw SET status = 'pending', error = NULL")


def downgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("reported_at")

"""CDEvents links and chains: the edges between events and what they lead to, so a
deployment ships the changes it is linked to."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQUENCE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PROJECTION = ("first_deployments", "deployment_changes", "incidents", "artifact_changes",
              "commits", "changes", "deployments")


def upgrade() -> None:
    op.create_table(
        "cdevent_links",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("target_id", sa.Text, primary_key=True),
        sa.Column("deployment_seq", SEQUENCE),
    )
    op.create_index("ix_cdevent_links_target", "cdevent_links", ["target_id"])
    op.create_index("ix_cdevent_links_deployment", "cdevent_links", ["deployment_seq"])
    op.create_table(
        "cdevent_refs",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("ref", sa.Text, primary_key=True),
    )
    op.create_index("ix_cdevent_refs_ref", "cdevent_refs", ["ref"])
    # Links already stored were never read: project everything again.
    for table in PROJECTION:
        op.execute(f"DELETE FROM {table}")
    op.execute("UPDATE cdevents_raw SET status = 'pending', error = NULL")


def downgrade() -> None:
    op.drop_table("cdevent_refs")
    op.drop_table("cdevent_links")

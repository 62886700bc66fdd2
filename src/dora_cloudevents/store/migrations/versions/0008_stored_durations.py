"""Recovery and restore times stored beside their timestamps (``deployments.recovery_seconds``,
``incidents.restore_seconds``), filled from the projection as it stands: their medians sort
a covered column instead of computing every duration from two timestamps."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dora_cloudevents.metrics.durations import fill_durations

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, columns before, columns after): the covering indexes of 0007 now hold the
# stored durations in place of the end timestamps.
COVERING = (
    ("ix_deployments_recoveries", "deployments",
     ["failed", "environment", "time", "recovered_at", "service"],
     ["failed", "environment", "time", "recovery_seconds", "service"]),
    ("ix_incidents_environment_detected", "incidents",
     ["environment", "detected_at", "resolved_at", "service"],
     ["environment", "detected_at", "restore_seconds", "service"]),
)


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("recovery_seconds", sa.Float))
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("restore_seconds", sa.Float))
    fill_durations(op.get_bind())
    for name, table, _, columns in COVERING:
        op.drop_index(name, table)
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, columns, _ in COVERING:
        op.drop_index(name, table)
        op.create_index(name, table, columns)
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("restore_seconds")
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("recovery_seconds")

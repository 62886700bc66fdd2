"""Raw event logs: cloudevents_raw and cdevents_raw."""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PAYLOAD = sa.JSON().with_variant(JSONB(), "postgresql")


def _log_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "cloudevents_raw",
        *_log_columns(),
        sa.Column("subject", sa.Text),
        sa.Column("time", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", PAYLOAD, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("error", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("source", "event_id", name="uq_cloudevents_raw_source_id"),
    )
    op.create_index("ix_cloudevents_raw_status_seq", "cloudevents_raw", ["status", "seq"])
    op.create_index("ix_cloudevents_raw_type_seq", "cloudevents_raw", ["type", "seq"])
    op.create_table(
        "cdevents_raw",
        *_log_columns(),
        sa.Column("spec_version", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.Text),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", PAYLOAD, nullable=False),
        sa.Column("origin_seq", SEQ),
        sa.Column("transformer", sa.Text),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("source", "event_id", name="uq_cdevents_raw_source_id"),
    )
    op.create_index("ix_cdevents_raw_status_seq", "cdevents_raw", ["status", "seq"])
    op.create_index("ix_cdevents_raw_type_seq", "cdevents_raw", ["type", "seq"])
    op.create_index("ix_cdevents_raw_origin_seq", "cdevents_raw", ["origin_seq"])


def downgrade() -> None:
    op.drop_table("cdevents_raw")
    op.drop_table("cloudevents_raw")

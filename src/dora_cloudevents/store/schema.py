"""Table definitions; the Alembic migrations create exactly these."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
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

"""Bring a database to the newest schema with Alembic, once, even with many replicas starting."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from dora_cloudevents.store.db import write_transaction

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every replica.
_PG_MIGRATION_LOCK = 0x646F7261  # "dora"


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply pending migrations; replicas serialise on a lock and find nothing left to do."""
    if current_revision(engine) == head_revision():
        return
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _PG_MIGRATION_LOCK})
        command.upgrade(_alembic_config(connection), "head")

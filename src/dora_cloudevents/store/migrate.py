"""Bring a database to the newest schema with Alembic, once, even with many replicas starting."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from dora_cloudevents.store.db import is_unavailable, write_transaction

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same for every replica.
_PG_MIGRATION_LOCK = 0x646F7261  # "dora"


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config)


def head_revision() -> str | None:
    return _scripts().get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> bool:
    """Apply pending migrations; replicas serialise on a lock and find nothing left to do.

    True when this call applied them, False when the schema was already current."""
    head = head_revision()
    if current_revision(engine) == head:
        return False
    with write_transaction(engine) as connection:
        if connection.dialect.name == "postgresql":
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            connection.execute(lock, {"key": _PG_MIGRATION_LOCK})
        # Whoever held the lock before us may have migrated already.
        if MigrationContext.configure(connection).get_current_revision() == head:
            return False
        command.upgrade(_alembic_config(connection), "head")
    return True


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to ``revision`` (to roll a release back, and in tests)."""
    with write_transaction(engine) as connection:
        command.downgrade(_alembic_config(connection), revision)


class SchemaNotReady(Exception):
    """The database did not reach this release's schema in time (nobody migrated it)."""


def _is_current(revision: str | None) -> bool:
    """At our head, or at a revision this release does not know (a newer release migrated)."""
    if revision is None:
        return False
    if revision == head_revision():
        return True
    try:
        _scripts().get_revision(revision)
    except CommandError:
        return True  # not one of ours: the schema is ahead of this release
    return False


def wait_until_migrated(engine: Engine, timeout: float = 600.0, poll: float = 1.0) -> None:
    """Block until someone else (``dora-ce db upgrade`` as a Job) migrated the database.

    For replicas started with migrations turned off: they must not serve an old schema."""
    deadline = time.monotonic() + timeout
    said = 0.0
    while True:
        try:
            if _is_current(current_revision(engine)):
                return
            state = "the schema is not migrated yet"
        except Exception as error:
            if not is_unavailable(error):
                raise
            state = "the database is not reachable yet"
        now = time.monotonic()
        if now >= deadline:
            raise SchemaNotReady(f"{state} after {timeout:.0f} s; run `dora-ce db upgrade`")
        if now - said >= 10:
            log.info("waiting for migrations: %s (run `dora-ce db upgrade`)", state)
            said = now
        time.sleep(poll)

"""Each engine's connections get the session settings the code relies on."""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url


def test_connections_are_set_up_for_the_back_end(engine: Engine, database_url: str) -> None:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 10000
            return
        # No JIT (it compiled for 250 ms before 0.05 ms projector queries), and the URL's
        # own options (the tests' search_path) are kept beside it.
        assert connection.execute(text("SHOW jit")).scalar() == "off"
        schema = str(make_url(database_url).query["options"]).removeprefix("-csearch_path=")
        assert connection.execute(text("SHOW search_path")).scalar() == schema

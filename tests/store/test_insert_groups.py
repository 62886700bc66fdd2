"""Several requests' events in one statement: who counts what as new, and what is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, Text, cast, select

from dora_cloudevents.store.events import EventRow, InsertOutcome, cloudevent_row, insert_groups
from dora_cloudevents.store.schema import cloudevents_raw

NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def event(key: str) -> dict[str, Any]:
    return {"specversion": "1.0", "id": key, "source": "/s", "type": "t", "data": {"n": 1}}


def rows(*keys: str) -> list[EventRow]:
    return [cloudevent_row(event(key), NOW) for key in keys]


def store(engine: Engine, *groups: list[EventRow]) -> list[InsertOutcome]:
    with engine.begin() as connection:
        return insert_groups(connection, cloudevents_raw, list(groups))


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(cloudevents_raw.c.event_id)
                                       .order_by(cloudevents_raw.c.seq)))


def test_every_row_new(engine: Engine) -> None:
    assert store(engine, rows("a", "b"), rows("c"), []) == [(2, 0), (1, 0), (0, 0)]
    assert stored_ids(engine) == ["a", "b", "c"]


def test_the_first_appearance_is_accepted_the_rest_are_duplicates(engine: Engine) -> None:
    store(engine, rows("b"))
    outcomes = store(engine, rows("a", "b"), rows("a"), rows("c", "a", "c"), rows("c"))
    assert outcomes == [(1, 1), (0, 1), (1, 2), (0, 1)]
    assert stored_ids(engine) == ["b", "a", "c"]


@pytest.mark.parametrize("repeat", [1, 2])
def test_a_group_of_nothing_but_duplicates(engine: Engine, repeat: int) -> None:
    store(engine, rows("a", "b"))
    assert store(engine, *[rows("b", "a")] * repeat) == [(0, 2)] * repeat
    assert stored_ids(engine) == ["a", "b"]


def test_an_events_json_text_is_stored_as_sent(engine: Engine) -> None:
    # A structured body is the event: its text is stored, so a number keeps every digit
    # (parsed, 12345678901234567890123 is a float).
    text = ('{"specversion": "1.0", "id": "t", "source": "/s", "type": "t",\n'
            ' "data": {"n": 12345678901234567890123}}')
    parsed = orjson.loads(text)
    assert parsed["data"]["n"] != 12345678901234567890123
    with engine.begin() as connection:
        insert_groups(connection, cloudevents_raw,
                      [[cloudevent_row(parsed, NOW, text)], rows("u")])
    with engine.connect() as connection:
        raw = dict(connection.execute(
            select(cloudevents_raw.c.event_id, cast(cloudevents_raw.c.event, Text))).all())
        stored = dict(connection.execute(
            select(cloudevents_raw.c.event_id, cloudevents_raw.c.event)).all())
    assert "12345678901234567890123" in raw["t"]
    assert stored == {"t": parsed, "u": event("u")}


def test_of_two_rows_with_one_key_in_a_statement_the_first_is_stored(engine: Engine) -> None:
    first, second = event("a"), {**event("a"), "data": {"n": 2}}
    outcomes = store(engine, [cloudevent_row(first, NOW)], [cloudevent_row(second, NOW)])
    assert outcomes == [(1, 0), (0, 1)]
    with engine.connect() as connection:
        assert connection.scalars(select(cloudevents_raw.c.event)).all() == [first]

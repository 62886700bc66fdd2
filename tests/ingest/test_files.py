"""dora-ce send (event files to a live server) and dora-ce import (JSON Lines into the database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from pydantic import SecretStr
from sqlalchemy import Engine, select

from dora_cloudevents.app import create_app
from dora_cloudevents.cli import main
from dora_cloudevents.config import Settings
from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.schema import cloudevents_raw
from tests.conftest import LiveServer
from tests.ingest.test_cloudevents_endpoint import event


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value))
    return path


def write_lines(path: Path, events: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in events))
    return path


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        query = select(cloudevents_raw.c.event_id).order_by(cloudevents_raw.c.seq)
        return list(connection.execute(query).scalars())


def send(*args: str) -> Any:
    return CliRunner().invoke(main, ["send", *args])


def test_send_an_event_a_batch_and_json_lines(server: LiveServer, engine: Engine,
                                              tmp_path: Path) -> None:
    one = write_json(tmp_path / "one.json", event(1))
    batch = write_json(tmp_path / "batch.json", [event(2), event(3), event(1)])
    lines = write_lines(tmp_path / "more.jsonl", [event(n) for n in range(4, 9)])
    result = send(str(one), str(batch), str(lines), "--url", server.url, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{one}: accepted 1, duplicates 0",
        f"{batch}: accepted 2, duplicates 1",
        f"{lines}: accepted 5, duplicates 0",
    ]
    assert sorted(stored_ids(engine)) == sorted(f"id-{n}" for n in range(1, 9))
    again = send(str(one), "--url", server.url + "/events")
    assert again.exit_code == 0 and "accepted 0, duplicates 1" in again.output


def test_send_names_the_refused_line_and_exits_non_zero(server: LiveServer, engine: Engine,
                                                        tmp_path: Path) -> None:
    broken = event(3)
    del broken["type"]
    lines = write_lines(tmp_path / "events.jsonl", [event(1), event(2), broken, event(4)])
    good = write_json(tmp_path / "good.json", event(9))
    result = send(str(lines), str(good), "--url", server.url, "--batch-size", "2")
    assert result.exit_code == 1
    assert (f"{lines}: line 3 to line 4 refused with 400: line 3: required attribute 'type' "
            "is missing (accepted 2, duplicates 0 before it)") in result.output
    assert f"{good}: accepted 1, duplicates 0" in result.output  # the next file still goes
    assert sorted(stored_ids(engine)) == ["id-1", "id-2", "id-9"]


def test_send_with_a_token_and_without(engine: Engine, tmp_path: Path) -> None:
    settings = Settings(ingest_tokens=[SecretStr("s3cret")])
    one = write_json(tmp_path / "one.json", event(1))
    with LiveServer(create_app(settings, engine, {"ingest", "api"})) as live:
        refused = send(str(one), "--url", live.url)
        assert refused.exit_code == 1
        assert "the event refused with 401" in refused.output
        accepted = send(str(one), "--url", live.url, "--token", "s3cret")
        assert accepted.exit_code == 0, accepted.output
    assert stored_ids(engine) == ["id-1"]


def test_send_to_no_server_or_an_unreadable_file_fails_clearly(tmp_path: Path) -> None:
    one = write_json(tmp_path / "one.json", event(1))
    result = send(str(one), "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "cannot reach http://127.0.0.1:9/events" in result.output
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    result = send(str(junk), "--url", "http://127.0.0.1:9")
    assert result.exit_code == 1 and "not JSON or JSON Lines" in result.output
    for url in ("http://[x", "127.0.0.1:8080", "ftp://example.com"):
        result = send(str(one), "--url", url)
        assert result.exit_code == 2, result.output
        assert f"Invalid value for '--url': {url!r} is not an http(s) URL" in result.output


def test_import_json_lines_counts_duplicates(database_url: str, tmp_path: Path) -> None:
    events = [event(n) for n in range(1, 8)] + [event(2)]
    lines = write_lines(tmp_path / "history.jsonl", events)
    result = CliRunner().invoke(main, ["import", str(lines), "--db", database_url,
                                       "--batch-size", "3"])
    assert result.exit_code == 0, result.output
    assert f"{lines}: accepted 7, duplicates 1" in result.output
    again = CliRunner().invoke(main, ["import", str(lines), "--db", database_url])
    assert again.exit_code == 0 and "accepted 0, duplicates 8" in again.output
    engine = make_engine(database_url)
    try:
        assert sorted(stored_ids(engine)) == sorted(f"id-{n}" for n in range(1, 8))
        with engine.connect() as connection:
            first = connection.execute(select(cloudevents_raw.c.event)
                                       .where(cloudevents_raw.c.event_id == "id-1")).scalar_one()
        stored = first if isinstance(first, dict) else json.loads(first)
        assert stored == event(1)
    finally:
        engine.dispose()


def test_import_stops_at_a_bad_line_and_names_it(database_url: str, tmp_path: Path) -> None:
    lines = tmp_path / "history.jsonl"
    lines.write_text(json.dumps(event(1)) + "\n" + json.dumps(event(2)) + "\n\n"
                     + json.dumps(event(3, time="yesterday")) + "\n" + json.dumps(event(4)))
    result = CliRunner().invoke(main, ["import", str(lines), "--db", database_url,
                                       "--batch-size", "1"])
    assert result.exit_code == 1
    assert ("line 4: attribute 'time' must be an RFC 3339 timestamp, got 'yesterday' "
            "(accepted 2, duplicates 0 before it)") in result.output
    junk = tmp_path / "junk.jsonl"
    junk.write_text(json.dumps(event(5)) + "\n{oops\n")
    result = CliRunner().invoke(main, ["import", str(junk), "--db", database_url])
    assert result.exit_code == 1 and "line 2 is not valid JSON" in result.output
    engine = make_engine(database_url)
    try:
        # Batch size 1: the lines before the bad one are stored; the default batch holds
        # line 1 of junk.jsonl, stored before the bad line 2 stopped the import.
        assert sorted(stored_ids(engine)) == ["id-1", "id-2", "id-5"]
    finally:
        engine.dispose()

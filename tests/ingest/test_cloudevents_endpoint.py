"""POST / and /events: the three HTTP modes, duplicates, atomic batches and precise errors."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCloudEvent
from sqlalchemy import Engine, Text, cast, select

from dora_cloudevents.store.schema import cloudevents_raw
from tests.conftest import shared_fixture

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def event(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"id-{n}", "source": "/test", "type": "com.example.t",
            "time": "2024-05-01T10:00:00.123456789Z", "data": {"n": n}, **extra}


def seed(name: str) -> dict[str, Any]:
    """A whole CloudEvent captured in the original tutorial."""
    loaded: dict[str, Any] = json.loads(shared_fixture("seed-examples", name).read_text())
    return loaded


def stored(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/events", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    # Every answer carries its request id, and a problem quotes it.
    assert problem["request_id"] == response.headers["x-request-id"]
    for word in words:
        assert word in problem["detail"], problem["detail"]


def test_seed_api_server_source_event_is_stored_whole(client: httpx.Client) -> None:
    original = seed("cloudevent-api-server-source.json")
    response = client.post("/events", content=json.dumps(original), headers=STRUCTURED)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    [item] = stored(client)
    assert item["event"] == original  # whole, including nanosecond times and extensions
    assert (item["id"], item["source"], item["type"]) == (
        original["id"], original["source"], original["type"])
    assert item["status"] == "pending"


def test_a_structured_body_is_stored_as_sent(client: httpx.Client, engine: Engine) -> None:
    # The body is the event in JSON: its text is the stored event (a number keeps digits a
    # float would lose); events from a batch or binary mode are serialized once parsed.
    body = ('{"specversion": "1.0", "id": "big", "source": "/test", "type": "t",\n'
            '  "data": {"n": 12345678901234567890123}}')
    assert client.post("/events", content=body, headers=STRUCTURED).status_code == 202
    batch = json.dumps([event(1), event(2)])
    assert client.post("/events", content=batch, headers=BATCH).status_code == 202
    with engine.connect() as connection:
        raw = dict(connection.execute(select(cloudevents_raw.c.event_id,
                                             cast(cloudevents_raw.c.event, Text))).all())
    assert "12345678901234567890123" in raw["big"]
    if engine.dialect.name == "sqlite":  # PostgreSQL's jsonb keeps the value, not the text
        assert raw["big"] == body
    assert json.loads(raw["id-2"]) == event(2)
    assert [item["event"]["id"] for item in stored(client)] == ["id-2", "id-1", "big"]


def test_truncated_seed_capture_is_refused_precisely(client: httpx.Client) -> None:
    # The tutorial's GitHubSource capture was cut off at 2482 bytes: not JSON at all.
    body = shared_fixture("seed-examples", "cloudevent-github-pr-open.json").read_bytes()
    assert_problem(client.post("/events", content=body, headers=STRUCTURED), 400,
                   "not valid JSON", "line 44")
    assert stored(client) == []


def test_redelivered_event_is_a_duplicate(client: httpx.Client) -> None:
    body = json.dumps(event())
    assert client.post("/", content=body, headers=STRUCTURED).json() == {
        "accepted": 1, "duplicates": 0}
    assert client.post("/", content=body, headers=STRUCTURED).json() == {
        "accepted": 0, "duplicates": 1}
    assert len(stored(client)) == 1


def test_same_id_from_another_source_is_a_different_event(client: httpx.Client) -> None:
    client.post("/", content=json.dumps(event()), headers=STRUCTURED)
    other = event(source="/elsewhere")
    assert client.post("/", content=json.dumps(other), headers=STRUCTURED).json()["accepted"] == 1


def test_binary_mode_made_by_the_sdk(client: httpx.Client) -> None:
    sdk_event = SdkCloudEvent(
        {"id": "b-1", "source": "/a b/c", "type": "com.example.binary", "specversion": "1.0",
         "subject": "ü", "myext": "x"},
        {"hello": "world"},
    )
    message = to_binary(sdk_event, JSONFormat())
    response = client.post("/events", content=message.body, headers=dict(message.headers))
    assert response.status_code == 202, response.text
    [item] = stored(client)
    assert item["event"]["source"] == "/a b/c"  # percent-decoded header value
    assert item["event"]["subject"] == "ü"
    assert item["event"]["myext"] == "x"
    assert item["event"]["data"] == {"hello": "world"}


def test_binary_mode_non_json_data_is_kept_as_base64(client: httpx.Client) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "bin", "ce-source": "/s", "ce-type": "t",
               "content-type": "application/octet-stream"}
    assert client.post("/", content=b"\x00\xff", headers=headers).status_code == 202
    assert stored(client)[0]["event"]["data_base64"] == "AP8="


def test_binary_mode_text_data(client: httpx.Client) -> None:
    headers = {"ce-specversion": "0.3", "ce-id": "txt", "ce-source": "/s", "ce-type": "t",
               "content-type": "text/plain; charset=utf-8"}
    assert client.post("/", content="héllo".encode(), headers=headers).status_code == 202
    item = stored(client)[0]["event"]
    assert item["data"] == "héllo"
    assert item["specversion"] == "0.3"


def test_cloudevents_0_3_structured(client: httpx.Client) -> None:
    old = {"specversion": "0.3", "id": "o", "source": "/s", "type": "t",
           "datacontentencoding": "base64", "data": "aGk=", "schemaurl": "https://x/s"}
    assert client.post("/", content=json.dumps(old), headers=STRUCTURED).status_code == 202


def test_batch_counts_and_duplicates_inside_it(client: httpx.Client) -> None:
    batch = [event(1), event(2), event(1), event(3)]
    response = client.post("/events", content=json.dumps(batch), headers=BATCH)
    assert response.status_code == 202
    assert response.json() == {"accepted": 3, "duplicates": 1}
    assert [item["id"] for item in stored(client)] == ["id-3", "id-2", "id-1"]  # newest first


def test_batch_is_all_or_nothing(client: httpx.Client) -> None:
    batch = [event(1), event(2), {"specversion": "1.0", "id": "x", "source": "/s"}]
    assert_problem(client.post("/events", content=json.dumps(batch), headers=BATCH), 400,
                   "event [2]", "'type'")
    assert stored(client) == []


def test_empty_batch_is_accepted_as_nothing(client: httpx.Client) -> None:
    assert client.post("/", content="[]", headers=BATCH).json() == {
        "accepted": 0, "duplicates": 0}


def test_plain_json_structured_event_is_accepted(client: httpx.Client) -> None:
    response = client.post("/", json=event())
    assert response.status_code == 202


BROKEN: list[tuple[str, dict[str, str], bytes, int, tuple[str, ...]]] = [
    ("malformed json", STRUCTURED, b'{"specversion": "1.0",', 400, ("not valid JSON",)),
    ("missing id", STRUCTURED, json.dumps({**event(), "id": None}).encode(), 400, ("'id'",)),
    ("missing source", STRUCTURED,
     json.dumps({k: v for k, v in event().items() if k != "source"}).encode(), 400, ("'source'",)),
    ("empty type", STRUCTURED, json.dumps(event(type="")).encode(), 400, ("'type'",)),
    ("bad specversion", STRUCTURED, json.dumps(event(specversion="2.0")).encode(), 400,
     ("specversion", "'2.0'")),
    ("no specversion", STRUCTURED,
     json.dumps({k: v for k, v in event().items() if k != "specversion"}).encode(), 400,
     ("specversion",)),
    ("bad time", STRUCTURED, json.dumps(event(time="yesterday")).encode(), 400, ("'time'",)),
    ("impossible date", STRUCTURED, json.dumps(event(time="2024-02-30T00:00:00Z")).encode(), 400,
     ("'time'",)),
    ("numeric id", STRUCTURED, json.dumps(event(id=5)).encode(), 400, ("'id'",)),
    ("bad attribute name", STRUCTURED, json.dumps(event(**{"Bad-Name": "x"})).encode(), 400,
     ("'Bad-Name'",)),
    ("object extension", STRUCTURED, json.dumps(event(ext={"a": 1})).encode(), 400, ("'ext'",)),
    ("data and data_base64", STRUCTURED, json.dumps(event(data_base64="aGk=")).encode(), 400,
     ("data_base64",)),
    ("not an object", STRUCTURED, b"[1, 2]", 400, ("JSON object",)),
    ("batch not an array", BATCH, json.dumps(event()).encode(), 400, ("JSON array",)),
    ("batch of numbers", BATCH, b"[1]", 400, ("event [0]",)),
    ("binary without id", {"ce-specversion": "1.0", "ce-source": "/s", "ce-type": "t",
                           "content-type": "application/json"}, b"{}", 400, ("'id'",)),
    ("binary bad json data", {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s",
                              "ce-type": "t", "content-type": "application/json"}, b"{", 400,
     ("not valid JSON",)),
    ("plain json not an event", {"content-type": "application/json"}, b'{"a": 1}', 400,
     ("no CloudEvent",)),
    ("text/plain", {"content-type": "text/plain"}, b"hello", 415, ("text/plain",)),
    ("no content type", {}, b"hello", 415, ("content type",)),
]


@pytest.mark.parametrize(("headers", "body", "status", "words"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_input_gets_a_precise_problem(
    client: httpx.Client, headers: dict[str, str], body: bytes, status: int,
    words: tuple[str, ...],
) -> None:
    assert_problem(client.post("/events", content=body, headers=headers), status, *words)
    # ...and the server keeps serving, with nothing half-written.
    assert client.post("/events", content=json.dumps(event(99)), headers=STRUCTURED
                       ).status_code == 202
    assert [item["id"] for item in stored(client)] == ["id-99"]


def test_oversized_body_is_refused(client: httpx.Client) -> None:
    big = event(data={"blob": "x" * (1024 * 1024)})
    assert_problem(client.post("/events", content=json.dumps(big), headers=STRUCTURED), 413,
                   "limit")
    # Without a Content-Length (chunked upload) the limit holds as well.
    chunks = iter([json.dumps(big).encode()])
    assert_problem(client.post("/events", content=chunks, headers=STRUCTURED), 413, "limit")
    assert stored(client) == []


def test_unknown_route_and_method_are_problems(client: httpx.Client) -> None:
    assert_problem(client.get("/nope"), 404, "/nope")
    assert_problem(client.put("/events", content=b"{}"), 405, "PUT")


def test_concurrent_posts_are_each_stored_once(client: httpx.Client) -> None:
    def post(n: int) -> dict[str, int]:
        body = json.dumps(event(n))
        result: dict[str, int] = client.post("/", content=body, headers=STRUCTURED).json()
        return result

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(post, [n % 150 for n in range(300)]))
    assert sum(r["accepted"] for r in results) == 150
    assert sum(r["duplicates"] for r in results) == 150
    assert len(stored(client, limit=1000)) == 150


def test_events_filters(client: httpx.Client) -> None:
    batch = [event(1), event(2, type="com.example.other"), event(3, source="/other")]
    client.post("/", content=json.dumps(batch), headers=BATCH)
    assert [e["id"] for e in stored(client, type="com.example.other")] == ["id-2"]
    assert [e["id"] for e in stored(client, source="/other")] == ["id-3"]
    assert [e["id"] for e in stored(client, limit=1)] == ["id-3"]
    first = stored(client, limit=1)[0]["seq"]
    assert [e["id"] for e in stored(client, before=first)] == ["id-2", "id-1"]
    assert_problem(client.get("/api/v1/events", params={"limit": 0}), 400, "limit")
    assert_problem(client.get("/api/v1/events", params={"status": "bogus"}), 400, "status")


def test_read_tokens_guard_the_event_monitor(engine: Any) -> None:
    from pydantic import SecretStr

    from dora_cloudevents.app import create_app
    from dora_cloudevents.config import Settings
    from tests.conftest import LiveServer

    settings = Settings(read_tokens=[SecretStr("reader")])
    with LiveServer(create_app(settings, engine, {"api"})) as live:
        assert_problem(httpx.get(f"{live.url}/api/v1/events"), 401, "bearer token")
        assert_problem(httpx.get(f"{live.url}/api/v1/cdevents",
                                 headers={"authorization": "Bearer wrong"}), 403)
        assert httpx.get(f"{live.url}/api/v1/events",
                         headers={"authorization": "Bearer reader"}).status_code == 200
        assert httpx.get(f"{live.url}/healthz").status_code == 200

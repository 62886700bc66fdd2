"""Ingest limits: batch length, JSON depth, extension count, headers, body read time, U+0000."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from dora_cloudevents.config import Settings
from tests.conftest import LiveServer
from tests.ingest.test_cloudevents_endpoint import BATCH, STRUCTURED, assert_problem, event, stored

LIMITS = {"max_batch_events": 5, "max_json_depth": 8, "max_extension_attributes": 3,
          "max_headers": 30, "max_header_bytes": 4096, "body_read_timeout_seconds": 0.5}


@pytest.fixture
def settings() -> Settings:
    return Settings.model_validate(LIMITS)


def nested(levels: int) -> Any:
    """A JSON value of exactly ``levels`` levels of objects and arrays."""
    value: Any = 1
    for level in range(levels):
        value = {"x": value} if level % 2 else [value]
    return value


def test_batch_of_the_maximum_length_is_accepted_one_more_is_refused(
        client: httpx.Client) -> None:
    ok = [event(n) for n in range(5)]
    assert client.post("/events", content=json.dumps(ok), headers=BATCH).status_code == 202
    too_many = [event(n) for n in range(10, 16)]
    response = client.post("/events", content=json.dumps(too_many), headers=BATCH)
    assert_problem(response, 413, "6 events", "at most 5", "max_batch_events")
    assert len(stored(client)) == 5


def test_json_nested_to_the_limit_is_accepted_one_level_more_is_refused(
        client: httpx.Client) -> None:
    # The event object is the first level, so its data may take seven more.
    fits = event(1, data=nested(7))
    assert client.post("/events", content=json.dumps(fits), headers=STRUCTURED).status_code == 202
    [item] = stored(client)
    assert item["event"]["data"] == nested(7)
    deep = event(2, data=nested(8))
    response = client.post("/events", content=json.dumps(deep), headers=STRUCTURED)
    assert_problem(response, 400, "more than 8 levels", "max_json_depth")
    # In a batch the array is a level of its own.
    batch = [event(3, data=nested(7))]
    response = client.post("/events", content=json.dumps(batch), headers=BATCH)
    assert_problem(response, 400, "the batch", "max_json_depth")
    batch = [event(5, data=nested(6)), event(6, data=[{"a": "[" * 20}] * 20)]
    assert client.post("/events", content=json.dumps(batch), headers=BATCH).status_code == 202
    # Binary mode: the body is the data, the document itself.
    binary = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/t", "ce-type": "t",
              "content-type": "application/json"}
    assert client.post("/", content=json.dumps(nested(8)), headers=binary).status_code == 202
    response = client.post("/", content=json.dumps(nested(9)), headers={**binary, "ce-id": "c"})
    assert_problem(response, 400, "the body", "max_json_depth")
    # A string full of brackets is no nesting at all.
    brackets = event(4, data={"text": "[{" * 50})
    assert client.post("/", content=json.dumps(brackets), headers=STRUCTURED).status_code == 202
    assert len(stored(client)) == 5


def test_cdevents_endpoint_applies_the_depth_limit_too(client: httpx.Client) -> None:
    response = client.post("/cdevents", content=json.dumps({"context": nested(9)}),
                           headers={"content-type": "application/json"})
    assert_problem(response, 400, "max_json_depth")


def test_extension_attributes_up_to_the_limit(client: httpx.Client) -> None:
    three = event(1, ext1="a", ext2="b", ext3=3)
    assert client.post("/", content=json.dumps(three), headers=STRUCTURED).status_code == 202
    four = event(2, ext1="a", ext2="b", ext3=3, ext4=True)
    response = client.post("/", content=json.dumps(four), headers=STRUCTURED)
    assert_problem(response, 400, "4 extension attributes", "at most 3",
                   "max_extension_attributes")
    binary = {"ce-specversion": "1.0", "ce-id": "b", "ce-source": "/t", "ce-type": "t",
              **{f"ce-x{n}": "v" for n in range(4)}}
    assert_problem(client.post("/", content=b"", headers=binary), 400, "4 extension")


def test_too_many_or_too_large_headers_get_431_and_the_server_keeps_serving(
        client: httpx.Client) -> None:
    many = {f"x-h{n}": "v" for n in range(31)}
    response = client.post("/", content=json.dumps(event(1)), headers={**STRUCTURED, **many})
    assert_problem(response, 431, "header fields", "max_headers")
    large = {"x-large": "a" * 5000}
    response = client.post("/", content=json.dumps(event(2)), headers={**STRUCTURED, **large})
    assert_problem(response, 431, "bytes", "max_header_bytes")
    assert_problem(client.get("/api/v1/events", headers=large), 431, "max_header_bytes")
    assert client.post("/", content=json.dumps(event(3)), headers=STRUCTURED).status_code == 202
    assert [item["id"] for item in stored(client)] == ["id-3"]


def _raw_request(server: LiveServer, head: bytes, body: bytes) -> bytes:
    """Send ``head`` and the start of ``body``, then wait for the server to answer."""
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_that_arrives_too_slowly_gets_408(server: LiveServer,
                                                  client: httpx.Client) -> None:
    body = json.dumps(event(1)).encode()
    head = (b"POST /events HTTP/1.1\r\nHost: t\r\nContent-Type: application/cloudevents+json"
            b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    started = time.monotonic()
    answer = _raw_request(server, head, body[:10])  # the rest never comes
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"body_read_timeout_seconds" in answer
    assert 0.5 <= elapsed < 4
    # Headers and no body at all: the same.
    assert _raw_request(server, head, b"").startswith(b"HTTP/1.1 408 ")
    assert stored(client) == []
    assert client.post("/", content=body, headers=STRUCTURED).status_code == 202


def test_u0000_in_a_string_is_refused_on_every_back_end(client: httpx.Client) -> None:
    """PostgreSQL's JSONB cannot hold U+0000, so no back-end accepts it (docs/api.md)."""
    with_nul = json.dumps(event(1, data={"log": "a\u0000b"}))
    assert "\\u0000" in with_nul
    assert_problem(client.post("/", content=with_nul, headers=STRUCTURED), 400, "U+0000")
    key = json.dumps(event(2, data={"a\u0000": 1}))
    batch = f"[{json.dumps(event(3))}, {key}]"
    assert_problem(client.post("/", content=batch, headers=BATCH), 400, "U+0000")
    text = {"ce-specversion": "1.0", "ce-id": "t", "ce-source": "/t", "ce-type": "t",
            "content-type": "text/plain"}
    assert_problem(client.post("/", content=b"a\x00b", headers=text), 400, "U+0000")
    header = {**text, "ce-subject": "a%00b"}
    assert_problem(client.post("/", content=b"ok", headers=header), 400, "ce-subject", "U+0000")
    assert stored(client) == []
    # An escaped backslash before "u0000" is six ordinary characters: stored as sent.
    literal = event(4, data={"path": "C:\\u0000"})
    assert client.post("/", content=json.dumps(literal), headers=STRUCTURED).status_code == 202
    # Bytes with NUL are data, not text: stored as base64.
    binary = {**text, "content-type": "application/octet-stream", "ce-id": "bin"}
    assert client.post("/", content=b"a\x00b", headers=binary).status_code == 202
    events = {item["id"]: item["event"] for item in stored(client)}
    assert events["id-4"]["data"] == {"path": "C:\\u0000"}
    assert events["bin"]["data_base64"] == "YQBi"

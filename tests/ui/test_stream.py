"""GET /api/v1/events/stream: live raw events, their outcome and CDEvents, over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, insert

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from dora_cloudevents.store.monitor import LogTail
from dora_cloudevents.store.schema import cloudevents_raw
from tests.conftest import LiveServer
from tests.ui.support import Message, collect, ping, post, rollout, sse_messages


@pytest.fixture
def full(engine: Engine) -> Iterator[httpx.Client]:
    """Every component, the router and projector included, on a live server."""
    with LiveServer(create_app(Settings(), engine)) as live, httpx.Client(
            base_url=live.url, timeout=httpx.Timeout(10, read=8)) as client:
        yield client


def _outcome(seq: int) -> Callable[[list[Message]], bool]:
    """Done once the raw event ``seq`` is known routed and its CDEvent has arrived."""
    def done(seen: list[Message]) -> bool:
        routed = any(m.data.get("seq") == seq and m.data.get("status") == "routed"
                     and m.event in ("cloudevent", "status") for m in seen)
        made = any(m.event == "cdevent" and m.data["origin_seq"] == seq for m in seen)
        return routed and made
    return done


def test_a_posted_event_arrives_live_with_its_outcome_and_its_cdevent(full: httpx.Client
                                                                      ) -> None:
    event = rollout()
    with full.stream("GET", "/api/v1/events/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        messages = sse_messages(response)
        post(full, event)
        first = collect(messages, lambda seen: any(m.event == "cloudevent" for m in seen))
        raw = next(m for m in first if m.event == "cloudevent")
        assert raw.data["id"] == event["id"] and raw.data["type"] == event["type"]
        assert raw.data["source"] == event["source"]
        rest = collect(messages, _outcome(raw.data["seq"]), seen=first)
    cdevent = next(m for m in rest if m.event == "cdevent")
    assert cdevent.data["type"].startswith("dev.cdevents.service.deployed.")
    assert cdevent.data["transformer"] == "kubernetes-deployment"
    assert cdevent.id is not None and cdevent.id.count(".") == 1


def test_filters_and_the_unrouted_outcome(full: httpx.Client) -> None:
    with full.stream("GET", "/api/v1/events/stream",
                     params={"type": "com.example.wanted"}) as response:
        messages = sse_messages(response)
        post(full, ping("com.example.other"))
        post(full, ping("com.example.wanted"))
        seen = collect(messages, lambda seen: any(
            m.data.get("status") == "unrouted" for m in seen))
    raws = [m for m in seen if m.event == "cloudevent"]
    assert [m.data["type"] for m in raws] == ["com.example.wanted"]


def test_a_reconnecting_client_resumes_after_the_last_event_id(full: httpx.Client) -> None:
    with full.stream("GET", "/api/v1/events/stream") as response:
        messages = sse_messages(response)
        post(full, ping(source="/first"))
        first = collect(messages, lambda seen: any(m.event == "cloudevent" for m in seen))
    position = first[-1].id
    assert position is not None
    post(full, ping(source="/second"))  # while disconnected
    with full.stream("GET", "/api/v1/events/stream",
                     headers={"Last-Event-ID": position}) as response:
        again = collect(sse_messages(response),
                        lambda seen: any(m.event == "cloudevent" for m in seen))
    assert [m.data["source"] for m in again if m.event == "cloudevent"] == ["/second"]


def test_a_stream_sees_rows_committed_out_of_seq_order(engine: Engine) -> None:
    """PostgreSQL commits out of order: a lower seq may appear after a higher one."""
    def row(seq: int) -> dict[str, object]:
        return {"seq": seq, "source": "/t", "event_id": str(seq), "type": "t",
                "received_at": datetime.now(UTC), "event": {"id": str(seq)}}

    with engine.begin() as connection:
        connection.execute(insert(cloudevents_raw), [row(1), row(2), row(5)])
    tail = LogTail(cloudevents_raw, 0)
    with engine.connect() as connection:
        assert tail.new_seqs(connection, 100) == [1, 2, 5]
    with engine.begin() as connection:
        connection.execute(insert(cloudevents_raw), [row(4), row(6)])
    with engine.connect() as connection:
        assert tail.new_seqs(connection, 100) == [4, 6]
        assert tail.new_seqs(connection, 100) == []
    with engine.begin() as connection:
        connection.execute(insert(cloudevents_raw), [row(3)])
    with engine.connect() as connection:
        assert tail.new_seqs(connection, 100) == [3]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_the_server_stops_promptly_with_a_stream_open(tmp_path: Path, stop: int) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dora_cloudevents", "serve", "--db",
         f"sqlite:///{tmp_path / 'dora.db'}", "--port", str(port)],
        env={**os.environ, "DORA_CONFIG": ""}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        with httpx.Client(base_url=url, timeout=10) as client, client.stream(
                "GET", "/api/v1/events/stream") as response:
            assert response.status_code == 200
            messages = sse_messages(response)
            post(client, ping())
            collect(messages, lambda seen: any(m.event == "cloudevent" for m in seen))
            started = time.monotonic()
            process.send_signal(stop)
            # uvicorn re-raises the signal once it has shut down, so the status may carry it.
            assert process.wait(timeout=10) in (0, -stop, 128 + stop)
            assert time.monotonic() - started < 8
            # The stream ended with the server: reading on returns at once instead of hanging
            # (uvicorn may close the connection before the last chunk; the browser's
            # EventSource then reconnects, as it does after any drop).
            try:
                rest = [m.event for m in messages]
            except httpx.RemoteProtocolError:
                rest = []
            assert set(rest) <= {"status", "cdevent"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

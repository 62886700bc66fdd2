"""Poison events in a running dora-ce serve: each fails alone, the events behind it flow.

Three kinds of transformer failure, each placed before good events in one batch: a remote
transformer (a routing-table URL) that answers 500, a jq mapping that raises, and a built-in
transformer (GitHub) given a crafted payload. They end as ``failed`` with their error in
``GET /api/v1/events?status=failed``; once the remote function is fixed, ``dora-ce replay
--failed`` routes the one that can now succeed and leaves the others failed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from click.testing import CliRunner
from fastapi import FastAPI, Request
from starlette.responses import Response

from dora_cloudevents.cli import main
from tests.conftest import LiveServer
from tests.reliability.support import BATCH, Serve
from tests.test_cli_pipeline import BOOM, DEPLOYED

GOOD_PER_POISON = 10


class Function:
    """A remote transformer that answers 500 until it is fixed."""

    def __init__(self) -> None:
        self.broken = True
        self.app = FastAPI()
        self.app.post("/fn")(self.transform)

    async def transform(self, request: Request) -> Response:
        if self.broken:
            return Response("function crashed: KeyError 'service'", status_code=500)
        event = orjson.loads(await request.body())
        cdevent = {"context": {"version": "0.4.1", "id": f"fn-{event['id']}",
                               "source": "/fn", "type": "dev.cdevents.service.deployed.0.2.0",
                               "timestamp": "2024-05-01T10:00:00Z"},
                   "subject": {"id": "fn-service", "type": "service", "content": {
                       "environment": {"id": "production"},
                       "artifactId": "pkg:generic/fn@1"}}}
        return Response(orjson.dumps([cdevent]), media_type=BATCH["content-type"])


@pytest.fixture
def function() -> Iterator[tuple[Function, str]]:
    fn = Function()
    with LiveServer(fn.app) as live:
        yield fn, f"{live.url}/fn"


def config(path: Path, function_url: str) -> str:
    path.write_text(yaml.safe_dump({
        "routes": [{"match": {"type": "com.example.remote"}, "to": [function_url]},
                   {"match": {"type": "com.example.jq"}, "to": ["boom"]},
                   {"match": {"type": "dev.knative.source.github.*"}, "to": ["github"]},
                   {"match": {"type": "com.example.release"}, "to": ["release"]}],
        "mappings": {"boom": {"jq": BOOM}, "release": {"jq": DEPLOYED}},
        "remote_attempts": 2, "remote_timeout_seconds": 5,
    }))
    return str(path)


def event(event_id: str, event_type: str, data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": "/poison", "type": event_type,
            "time": "2024-05-01T10:00:00Z", "data": data}


POISON = {
    "p-remote": event("p-remote", "com.example.remote", {"service": "fn"}),
    "p-jq": event("p-jq", "com.example.jq", {}),
    # A push without its `after` commit: the GitHub transformer cannot make a change of it.
    "p-github": event("p-github", "dev.knative.source.github.push",
                      {"ref": "refs/heads/main", "commits": "not a list",
                       "repository": {"full_name": "acme/shop", "default_branch": "main"}}),
}
EXPECTED_ERRORS = {"p-remote": "answered 500", "p-jq": "jq failed: boom",
                   "p-github": "has no after"}


def batch() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for n, poison in enumerate(POISON.values()):
        events.append(poison)
        events += [event(f"good-{n}-{k}", "com.example.release", {"service": "shop", "n": k})
                   for k in range(GOOD_PER_POISON)]
    return events


def settled(http: httpx.Client, timeout: float = 30) -> dict[str, dict[str, Any]]:
    """The raw events by id, once none is pending."""
    deadline = time.monotonic() + timeout
    while True:
        events = {e["id"]: e for e in http.get("/api/v1/events", params={"limit": 100}).json()}
        if all(e["status"] != "pending" for e in events.values()):
            return events
        assert time.monotonic() < deadline, "the router did not get through the batch"
        time.sleep(0.1)


@pytest.mark.slow
def test_poison_events_fail_alone_and_replay_failed_retries_them(
        database_url: str, tmp_path: Path, function: tuple[Function, str]) -> None:
    fn, url = function
    config_file = config(tmp_path / "dora.yaml", url)
    with Serve(database_url, tmp_path / "serve.log", "--config", config_file) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.post("/events", content=orjson.dumps(batch()), headers=BATCH)
        assert response.status_code == 202, response.text
        events = settled(http)
        statuses = {i: e["status"] for i, e in events.items()}
        assert statuses == {**dict.fromkeys(POISON, "failed"), **{
            i: "routed" for i in statuses if i.startswith("good-")}}
        assert len(statuses) == len(POISON) * (GOOD_PER_POISON + 1)
        failed = {e["id"]: e["error"] for e in
                  http.get("/api/v1/events", params={"status": "failed"}).json()}
        assert set(failed) == set(POISON)
        for event_id, words in EXPECTED_ERRORS.items():
            assert words in failed[event_id], failed[event_id]
        assert len(http.get("/api/v1/cdevents", params={"limit": 100}).json()) == (
            len(POISON) * GOOD_PER_POISON)

    fn.broken = False
    result = CliRunner().invoke(main, ["replay", "--failed", "--db", database_url,
                                       "--config", config_file])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "3 raw event(s) sent back to the router"
    assert lines[1] == "routed 1, unrouted 0, failed 2; 1 CDEvents stored"

    with Serve(database_url, tmp_path / "serve.log", "--config", config_file) as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        still = {e["id"] for e in http.get("/api/v1/events", params={"status": "failed"}).json()}
        assert still == {"p-jq", "p-github"}
        cdevents = http.get("/api/v1/cdevents", params={"limit": 100}).json()
        assert "fn-p-remote" in {c["context"]["id"] for c in cdevents}

"""The router on both databases: routing, failures, replay, concurrency, remote transformers."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import Engine, select
from starlette.responses import Response

from dora_cloudevents.app import create_app
from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.config import Route, Settings
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.routing.remote import RemoteTransformer
from dora_cloudevents.routing.router import Router
from dora_cloudevents.routing.table import RoutingTable
from dora_cloudevents.routing.targets import Target, routing_from_settings
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import reset_for_rerouting
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw
from tests.conftest import LiveServer
from tests.ingest.test_cloudevents_endpoint import BATCH, STRUCTURED

RELEASE = "com.example.release"


def release(n: int, **extra: Any) -> CloudEvent:
    return {"specversion": "1.0", "id": f"r-{n}", "source": "/releases", "type": RELEASE,
            "time": "2024-05-01T10:00:00Z", "data": {"service": "shop", "n": n}, **extra}


def deployed(event: CloudEvent) -> list[CDEvent]:
    if event["data"].get("poison"):
        raise ValueError("poisoned payload")
    return [new_cdevent("service.deployed", key=(event["source"], event["id"]),
                        source=event["source"], timestamp=event["time"],
                        subject_id=event["data"]["service"],
                        content={"environment": {"id": "prod"},
                                 "artifactId": f"pkg:generic/shop@{event['data']['n']}"})]


class Counting:
    """A target that counts its calls, to prove each event is transformed once."""

    def __init__(self, target: Target = deployed) -> None:
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.target = target

    def __call__(self, event: CloudEvent) -> list[CDEvent]:
        with self.lock:
            self.calls[event["id"]] += 1
        return self.target(event)


def release_router(engine: Engine, target: Target = deployed, batch_size: int = 50) -> Router:
    table = RoutingTable([Route.model_validate({"match": {"type": RELEASE}, "to": ["release"]})])
    return Router(engine, table, {"release": target}, batch_size=batch_size)


def ingest(client: httpx.Client, events: list[CloudEvent]) -> None:
    response = client.post("/events", content=json.dumps(events), headers=BATCH)
    assert response.status_code == 202, response.text


def statuses(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(select(cloudevents_raw.c.event_id, cloudevents_raw.c.status))
        return dict(rows.all())


def cdevent_ids(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(select(cdevents_raw.c.event_id)).scalars())


@pytest.fixture
def ingest_only(engine: Engine) -> Iterator[httpx.Client]:
    with LiveServer(create_app(Settings(), engine, {"ingest", "api"})) as live, httpx.Client(
        base_url=live.url, timeout=10
    ) as http:
        yield http


def test_routes_unrouted_and_failed_are_recorded(engine: Engine, ingest_only: httpx.Client
                                                 ) -> None:
    ingest(ingest_only, [release(1), release(2, data={"poison": True, "service": "x"}),
                         {**release(3), "type": "com.example.unknown"}])
    stats = release_router(engine).route_all()
    assert (stats.routed, stats.unrouted, stats.failed, stats.cdevents) == (1, 1, 1, 1)
    assert statuses(engine) == {"r-1": "routed", "r-2": "failed", "r-3": "unrouted"}
    failed = ingest_only.get("/api/v1/events", params={"status": "failed"}).json()
    assert [e["id"] for e in failed] == ["r-2"]
    assert "ValueError: poisoned payload" in failed[0]["error"]
    [stored] = ingest_only.get("/api/v1/cdevents").json()
    assert stored["subject"]["id"] == "shop"
    with engine.connect() as connection:
        origin = connection.execute(select(cdevents_raw.c.origin_seq, cdevents_raw.c.transformer)
                                    ).one()
    assert origin.transformer == "release"


def test_poison_event_does_not_block_the_ones_behind_it(engine: Engine,
                                                       ingest_only: httpx.Client) -> None:
    events = [release(n) for n in range(30)]
    events[3] = release(3, data={"poison": True, "service": "x"})
    ingest(ingest_only, events)
    stats = release_router(engine, batch_size=7).route_all()
    assert (stats.routed, stats.failed) == (29, 1)


def test_replay_is_idempotent_and_retries_failures(engine: Engine, ingest_only: httpx.Client
                                                  ) -> None:
    ingest(ingest_only, [release(n) for n in range(10)]
           + [release(10, data={"poison": True, "service": "x"})])
    release_router(engine).route_all()
    before = cdevent_ids(engine)
    with write_transaction(engine) as connection:
        assert reset_for_rerouting(connection) == 11
    stats = release_router(engine).route_all()
    assert stats.routed == 10 and stats.failed == 1
    assert cdevent_ids(engine) == before  # same deterministic ids, no duplicates

    with write_transaction(engine) as connection:
        assert reset_for_rerouting(connection, failed_only=True) == 1
    healed = release_router(engine, target=lambda e: deployed({**e, "data": {
        "service": "x", "n": 10}})).route_all()
    assert (healed.routed, healed.failed, healed.cdevents) == (1, 0, 1)


def test_two_routers_at_once_process_each_event_once(engine: Engine,
                                                    ingest_only: httpx.Client) -> None:
    ingest(ingest_only, [release(n) for n in range(400)])
    counting = Counting()
    routers = [release_router(engine, counting, batch_size=20) for _ in range(2)]
    threads = [threading.Thread(target=router.route_all) for router in routers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(statuses(engine).values()) == {"routed"}
    assert len(cdevent_ids(engine)) == 400
    with engine.connect() as connection:
        attempts = connection.execute(select(cloudevents_raw.c.attempts)).scalars().all()
    assert set(attempts) == {1}  # each event's outcome was recorded exactly once
    if engine.dialect.name == "postgresql":
        # Row locks make the claim exclusive: no event was even transformed twice.
        assert set(counting.calls.values()) == {1}


def test_concurrent_ingest_while_routing_skips_nothing(engine: Engine,
                                                      ingest_only: httpx.Client) -> None:
    router = release_router(engine, batch_size=25)
    stop = threading.Event()

    def keep_routing() -> None:
        while not stop.is_set():
            router.route_batch()

    worker = threading.Thread(target=keep_routing)
    worker.start()
    try:
        def post(start: int) -> None:
            for n in range(start, start + 150, 5):
                ingest(ingest_only, [release(k) for k in range(n, n + 5)])

        posters = [threading.Thread(target=post, args=(start,)) for start in (0, 150, 300, 450)]
        for poster in posters:
            poster.start()
        for poster in posters:
            poster.join()
    finally:
        stop.set()
        worker.join(timeout=60)
    router.route_all()
    assert len(statuses(engine)) == 600
    assert set(statuses(engine).values()) == {"routed"}
    assert len(cdevent_ids(engine)) == 600


def test_serve_routes_within_a_second(engine: Engine) -> None:
    github_push = {
        "specversion": "1.0", "id": "delivery-1", "source": "https://github.com/acme/shop",
        "type": "dev.knative.source.github.push", "time": "2024-05-01T10:00:00Z",
        "data": {"ref": "refs/heads/main", "before": "a" * 40, "after": "b" * 40,
                 "repository": {"full_name": "acme/shop", "name": "shop",
                                "html_url": "https://github.com/acme/shop",
                                "default_branch": "main"},
                 "head_commit": {"id": "b" * 40, "timestamp": "2024-05-01T09:59:00Z"},
                 "commits": [{"id": "b" * 40, "timestamp": "2024-05-01T09:59:00Z",
                              "message": "fix"}]},
    }
    with LiveServer(create_app(Settings(), engine)) as live, httpx.Client(
        base_url=live.url, timeout=10
    ) as http:
        assert http.post("/", content=json.dumps(github_push), headers=STRUCTURED
                         ).status_code == 202
        started = time.monotonic()
        while not http.get("/api/v1/cdevents").json():
            assert time.monotonic() - started < 3, "the router did not pick the event up"
            time.sleep(0.05)
        [cdevent] = http.get("/api/v1/cdevents").json()
    assert cdevent["context"]["type"].startswith("dev.cdevents.change.merged.")
    assert statuses(engine) == {"delivery-1": "routed"}


@pytest.fixture
def slow_and_fast_functions() -> Iterator[str]:
    """A remote-transformer host: /slow never answers in time, /ok answers, /bad refuses."""
    app = FastAPI()

    @app.post("/slow")
    async def slow() -> Response:
        import asyncio

        await asyncio.sleep(2)
        return Response("[]", media_type="application/cloudevents-batch+json")

    @app.post("/ok")
    async def ok(request: Request) -> Response:
        event = json.loads(await request.body())
        cdevents = deployed(event)
        return Response(json.dumps([{"specversion": "1.0", "id": c["context"]["id"],
                                     "source": c["context"]["source"],
                                     "type": c["context"]["type"], "data": c}
                                    for c in cdevents]),
                        media_type="application/cloudevents-batch+json")

    @app.post("/bad")
    async def bad() -> Response:
        return Response("nope", status_code=400)

    with LiveServer(app) as live:
        yield live.url


def test_remote_transformers(engine: Engine, ingest_only: httpx.Client,
                             slow_and_fast_functions: str) -> None:
    base = slow_and_fast_functions
    ingest(ingest_only, [release(1), release(2), release(3)])
    targets = {
        "1": RemoteTransformer(f"{base}/ok"),
        "2": RemoteTransformer(f"{base}/slow", timeout=0.2, attempts=2, backoff=0.05),
        "3": RemoteTransformer(f"{base}/bad", attempts=3, backoff=0.05),
    }
    router = release_router(engine, target=lambda e: targets[e["id"][2:]](e))
    stats = router.route_all()
    assert (stats.routed, stats.failed, stats.cdevents) == (1, 2, 1)
    failed = {e["id"]: e["error"] for e in
              ingest_only.get("/api/v1/events", params={"status": "failed"}).json()}
    assert "timed out (after 2 attempts)" in failed["r-2"]
    assert "answered 400" in failed["r-3"]


def test_builtin_transformers_served_over_http_as_remote_targets(engine: Engine) -> None:
    settings = Settings()
    with LiveServer(create_app(settings, engine, {"transform"})) as functions:
        remote = RemoteTransformer(f"{functions.url}/transform/alertmanager")
        event = {"specversion": "1.0", "id": "n-1", "source": "http://am",
                 "type": "io.prometheus.alertmanager.notification",
                 "data": {"version": "4", "status": "firing", "receiver": "dora",
                          "externalURL": "http://am", "groupKey": "g", "groupLabels": {},
                          "commonLabels": {}, "commonAnnotations": {}, "truncatedAlerts": 0,
                          "alerts": [{"status": "firing", "fingerprint": "f1",
                                      "labels": {"alertname": "Down", "service": "shop"},
                                      "annotations": {}, "generatorURL": "http://p/g",
                                      "startsAt": "2024-05-01T10:00:00Z",
                                      "endsAt": "0001-01-01T00:00:00Z"}]}}
        [incident] = remote(event)
        assert incident["context"]["type"].startswith("dev.cdevents.incident.detected.")
        _, targets = routing_from_settings(settings)
        assert remote(event) == targets["alertmanager"](event)
        unknown = httpx.post(f"{functions.url}/transform/nope", json=event)
        assert unknown.status_code == 404


def test_jq_mapping_end_to_end(engine: Engine, ingest_only: httpx.Client) -> None:
    settings = Settings.model_validate({
        "routes": [{"match": {"type": RELEASE}, "to": ["release-mapping"]}],
        "mappings": {"release-mapping": {"jq": """
            {context: {type: "dev.cdevents.service.deployed.0.2.0"},
             subject: {id: .data.service, type: "service",
                       content: {environment: {id: "production"},
                                 artifactId: "pkg:generic/\\(.data.service)@\\(.data.n)"}}}
        """}},
    })
    table, targets = routing_from_settings(settings)
    ingest(ingest_only, [release(1), release(2)])
    stats = Router(engine, table, targets).route_all()
    assert (stats.routed, stats.cdevents) == (2, 2)
    stored = ingest_only.get("/api/v1/cdevents").json()
    assert {c["subject"]["content"]["artifactId"] for c in stored} == {
        "pkg:generic/shop@1", "pkg:generic/shop@2"}
    assert all(c["context"]["source"] == "/releases" for c in stored)

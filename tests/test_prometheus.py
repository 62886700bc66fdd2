"""GET /metrics: pipeline health and per-service DORA gauges in Prometheus text format."""

from __future__ import annotations

import json

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import Engine

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from tests.conftest import LiveServer
from tests.ingest.test_cloudevents_endpoint import BATCH
from tests.metrics.scenario import cloudevent, deploy, push


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_report_queues_and_dora_values(engine: Engine) -> None:
    with LiveServer(create_app(Settings(), engine, {"ingest", "api"})) as live:
        events = [{"specversion": "1.0", "id": "u", "source": "/x", "type": "com.example.none"}]
        httpx.post(f"{live.url}/events", content=json.dumps(events), headers=BATCH)
        scraped = httpx.get(f"{live.url}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    values = samples(scraped.text)
    assert values[("dora_events", (("status", "pending"), ("table", "cloudevents_raw")))] == 1
    assert values[("dora_queue_lag_events", (("stage", "router"),))] == 1
    assert values[("dora_queue_lag_seconds", (("stage", "router"),))] >= 0


def test_dora_gauges_per_service_and_environment(engine: Engine) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC).replace(microsecond=0)
    sha = "ab" * 20
    moment = lambda hours: (now - timedelta(hours=hours)).isoformat()  # noqa: E731
    history = [push("acme/shop", [(sha, moment(3))]),
               deploy("shop", "production", sha, moment(1))]
    with LiveServer(create_app(Settings(), engine)) as live:
        httpx.post(f"{live.url}/cdevents", content=json.dumps([cloudevent(e) for e in history]),
                   headers=BATCH)
        import time

        # Scrape once the projection is done: the DORA gauges are cached for a minute.
        deadline = time.monotonic() + 15
        window = {"environment": "production"}
        while httpx.get(f"{live.url}/api/v1/dora", params=window).json()[
                "deployment_frequency"]["deployments"] == 0:
            assert time.monotonic() < deadline, "the deployment was not projected"
            time.sleep(0.2)
        values = samples(httpx.get(f"{live.url}/metrics").text)
        key = ("dora_deployments", (("environment", "production"), ("service", "shop")))
    assert values[key] == 1
    lead = values[("dora_lead_time_median_seconds",
                   (("environment", "production"), ("service", "shop")))]
    assert lead == 2 * 3600
    # No incidents: no restore-time sample at all rather than a made-up zero.
    assert not any(name == "dora_time_to_restore_median_seconds" for name, _ in values)


def test_metrics_token_is_enforced_when_configured(engine: Engine) -> None:
    settings = Settings(metrics_token=SecretStr("scrape-me"))
    with LiveServer(create_app(settings, engine, {"api"})) as live:
        assert httpx.get(f"{live.url}/metrics").status_code == 401
        assert httpx.get(f"{live.url}/metrics",
                         headers={"authorization": "Bearer scrape-me"}).status_code == 200

"""The metrics API and ``dora-ce report`` over entity rows inserted straight into the tables,
on SQLite and PostgreSQL (the projector is not involved: these rows are what it would write).

The history, in MARCH = [2024-03-01, 2024-04-01), production unless said otherwise:

  seq service env        kind       time          shipped  derived
  7   shop    production deployed   Feb 20 10:00  c0       (before the window)
  6   shop    staging    deployed   Mar 3 10:00   c1
  1   shop    production deployed   Mar 4 10:00   c1, c2
  2   shop    production upgraded   Mar 5 10:00            failed (incident), recovered 12:00
  3   shop    production deployed   Mar 5 11:00            rework (inc-1 open)
  4   cart    production deployed   Mar 12 09:00  c3, c4   failed (rollback), recovered 09:30
  5   cart    production rolledback Mar 12 09:30           rework
  8   cart    production deployed   Mar 20 09:00  c2       (c2 reached production on Mar 4)

Change times: c1 earliest commit Mar 3 06:00, c2 created Mar 3 10:00, c3 merged Mar 11 09:00
only, c4 no time at all. Incidents: inc-1 shop production Mar 5 10:30-12:00 (deployment 2),
inc-2 shop production Mar 25 open, inc-3 shop staging Mar 3 11:00-11:10, inc-4 cart production
Feb 25 (before the window).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert

from dora_cloudevents.app import create_app
from dora_cloudevents.cli import main
from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.linking import refresh_first_deployments
from dora_cloudevents.metrics.rollups import DailyCounts, rebuild
from dora_cloudevents.store.schema import changes, deployment_changes, deployments, incidents
from tests.conftest import LiveServer

MARCH = {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
SERVICES = {"shop": {"aliases": ["shop-deploy"], "team": "payments"},
            "cart": {"team": "checkout"}}
CONFIG = Settings.model_validate({"services": SERVICES,
                                  "production_environments": ["production"]})
HOUR = 3600


def t(text: str) -> datetime:
    return datetime.fromisoformat(f"2024-{text}").replace(tzinfo=UTC)


def deployment(seq: int, service: str, environment: str, kind: str, time: str,
               **derived: Any) -> dict[str, Any]:
    row = {"cdevent_seq": seq, "service": service, "environment": environment, "kind": kind,
           "time": t(time), "artifact_id": f"pkg:generic/{service}@{seq}",
           "revision": None, "failed": False, "failed_by": None, "recovered_at": None,
           "rework": False}
    row.update(derived)
    return row


DEPLOYMENTS = [
    deployment(7, "shop", "production", "deployed", "02-20T10:00"),
    deployment(6, "shop", "staging", "deployed", "03-03T10:00"),
    deployment(1, "shop", "production", "deployed", "03-04T10:00"),
    deployment(2, "shop", "production", "upgraded", "03-05T10:00", failed=True,
               failed_by="incident", recovered_at=t("03-05T12:00")),
    deployment(3, "shop", "production", "deployed", "03-05T11:00", rework=True),
    deployment(4, "cart", "production", "deployed", "03-12T09:00", failed=True,
               failed_by="rollback", recovered_at=t("03-12T09:30")),
    deployment(5, "cart", "production", "rolledback", "03-12T09:30", rework=True),
    deployment(8, "cart", "production", "deployed", "03-20T09:00"),
]
CHANGES: list[dict[str, Any]] = [
    {"key": "c0", "kind": "push", "created_at": t("02-19T10:00")},
    {"key": "c1", "kind": "push", "repository": "acme/shop", "title": "fix the cart",
     "earliest_commit_at": t("03-03T06:00"), "merged_at": t("03-04T07:00")},
    {"key": "c2", "kind": "pull_request", "created_at": t("03-03T10:00")},
    {"key": "c3", "kind": "pull_request", "merged_at": t("03-11T09:00")},
    {"key": "c4", "kind": "push"},
]
SHIPPED = [(7, "c0"), (6, "c1"), (1, "c1"), (1, "c2"), (4, "c3"), (4, "c4"), (8, "c2")]


def incident(key: str, service: str, environment: str, detected: str, resolved: str | None,
             deployment_seq: int | None = None) -> dict[str, Any]:
    return {"key": key, "service": service, "environment": environment,
            "description": f"incident {key}", "detected_at": t(detected),
            "last_detected_at": t(detected), "resolved_at": t(resolved) if resolved else None,
            "deployment_seq": deployment_seq}


INCIDENTS = [
    incident("inc-1", "shop", "production", "03-05T10:30", "03-05T12:00", 2),
    incident("inc-2", "shop", "production", "03-25T08:00", None),
    incident("inc-3", "shop", "staging", "03-03T11:00", "03-03T11:10", 6),
    incident("inc-4", "cart", "production", "02-25T08:00", "02-25T09:00"),
]


@pytest.fixture
def history(engine: Engine) -> Engine:
    by_seq = {row["cdevent_seq"]: row for row in DEPLOYMENTS}
    with engine.begin() as connection:
        connection.execute(insert(deployments), DEPLOYMENTS)
        connection.execute(insert(changes), [
            {"repository": None, "title": None, "created_at": None, "merged_at": None,
             "earliest_commit_at": None, **row} for row in CHANGES])
        connection.execute(insert(deployment_changes), [
            {"deployment_seq": seq, "change_key": key, "service": by_seq[seq]["service"],
             "environment": by_seq[seq]["environment"], "deployed_at": by_seq[seq]["time"]}
            for seq, key in SHIPPED])
        # What the projector derives from deployment_changes after linking.
        refresh_first_deployments(connection, {key for _, key in SHIPPED}, None, DailyCounts())
        connection.execute(insert(incidents), INCIDENTS)
        rebuild(connection)  # the rollups of the facts written here
    return engine


@pytest.fixture
def http(history: Engine) -> Iterator[httpx.Client]:
    with LiveServer(create_app(CONFIG, history, {"api"})) as live, \
            httpx.Client(base_url=live.url, timeout=10) as client:
        yield client


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    response = http.get(path, params={**MARCH, **params})
    assert response.status_code == 200, response.text
    return response.json()


PRODUCTION: dict[str, Any] = {
    "window": {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"},
    # seqs 1, 2, 3, 4, 5, 8 on Mar 4, 5, 12, 20; per week 6 x 7 / 31; days per 7-day block
    # [Mar 4, 11) 2, [11, 18) 1, [18, 25) 1, [25, Apr 1) 0 -> median 1, 3 of 4 weeks: weekly
    "deployment_frequency": {"deployments": 6, "deployment_days": 4, "per_week": 6 * 7 / 31,
                             "category": "weekly", "level": "high"},
    # c1 Mar 4 10:00 - Mar 3 06:00 = 28 h, c2 first in production on Mar 4 10:00 - Mar 3
    # 10:00 = 24 h (not again with seq 8), c3 Mar 12 09:00 - Mar 11 09:00 = 24 h, c4 has no
    # time: [24, 24, 28] h -> median 24 h, p90 rank ceil(2.7) = 3 -> 28 h
    "lead_time_for_changes": {"median_seconds": 24 * HOUR, "p90_seconds": 28 * HOUR,
                              "changes": 3, "level": "high"},
    "change_failure_rate": {"failed_deployments": 2, "deployments": 6, "rate": 2 / 6,
                            "level": "low"},
    # 2 h and 30 min -> median 75 min
    "failed_deployment_recovery_time": {"median_seconds": 4500.0, "failed_deployments": 2,
                                        "level": "high"},
    "time_to_restore": {"median_seconds": 5400.0, "incidents": 1, "open_incidents": 1},
    "deployment_rework_rate": {"rework_deployments": 2, "deployments": 6, "rate": 2 / 6},
    "level": "low",
}


def test_dora_summary(http: httpx.Client) -> None:
    assert get(http, "/api/v1/dora") == PRODUCTION
    assert get(http, "/api/v1/dora", environment="production") == PRODUCTION


def test_dora_filters(http: httpx.Client) -> None:
    cart = get(http, "/api/v1/dora", team="checkout")
    assert cart == get(http, "/api/v1/dora", service="cart")
    assert cart["deployment_frequency"]["deployments"] == 3
    # c2 reached production first with shop: cart's lead time has c3 only
    assert cart["lead_time_for_changes"] == {"median_seconds": 86400.0,
                                             "p90_seconds": 86400.0, "changes": 1,
                                             "level": "high"}
    shop = get(http, "/api/v1/dora", service="SHOP-DEPLOY")  # an alias, any case
    assert shop["lead_time_for_changes"]["changes"] == 2
    assert shop["time_to_restore"] == {"median_seconds": 5400.0, "incidents": 1,
                                       "open_incidents": 1}
    staging = get(http, "/api/v1/dora", environment="staging")
    assert staging["lead_time_for_changes"]["median_seconds"] == 4 * HOUR  # c1 on Mar 3
    assert staging["time_to_restore"]["median_seconds"] == 600
    everywhere = get(http, "/api/v1/dora", environment="*")
    assert everywhere["deployment_frequency"]["deployments"] == 7
    assert everywhere["lead_time_for_changes"]["changes"] == 4  # c1 in staging and production
    nothing = get(http, "/api/v1/dora", **{"from": "2023-01-01T00:00:00Z",
                                          "to": "2023-02-01T00:00:00Z"})
    assert nothing["deployment_frequency"] == {"deployments": 0, "deployment_days": 0,
                                               "per_week": 0.0, "category": "none",
                                               "level": None}
    assert nothing["change_failure_rate"]["rate"] is None
    assert nothing["level"] is None


def test_series(http: httpx.Client) -> None:
    weekly = get(http, "/api/v1/metrics/deployment-frequency", bucket="week")
    assert weekly["metric"] == "deployment-frequency"
    assert [(p["time"], p["value"], p["deployment_days"]) for p in weekly["series"]] == [
        ("2024-02-26T00:00:00Z", 0, 0), ("2024-03-04T00:00:00Z", 3, 2),
        ("2024-03-11T00:00:00Z", 2, 1), ("2024-03-18T00:00:00Z", 1, 1),
        ("2024-03-25T00:00:00Z", 0, 0)]
    assert all("group" not in point for point in weekly["series"])
    by_team = get(http, "/api/v1/metrics/deployment-frequency", bucket="month",
                  group_by="team")
    assert [(p["time"], p["group"], p["team"], p["value"]) for p in by_team["series"]] == [
        ("2024-03-01T00:00:00Z", "checkout", "checkout", 3),
        ("2024-03-01T00:00:00Z", "payments", "payments", 3)]
    lead = get(http, "/api/v1/metrics/lead-time", bucket="day")
    assert [(p["time"], p["value"], p["changes"]) for p in lead["series"] if p["changes"]] == [
        ("2024-03-04T00:00:00Z", (28 + 24) / 2 * HOUR, 2), ("2024-03-12T00:00:00Z", 86400, 1)]
    failure = get(http, "/api/v1/metrics/change-failure-rate", bucket="month",
                  group_by="service")
    assert [(p["service"], p["value"], p["failed_deployments"], p["deployments"])
            for p in failure["series"]] == [("cart", 1 / 3, 1, 3), ("shop", 1 / 3, 1, 3)]
    recovery = get(http, "/api/v1/metrics/failed-deployment-recovery-time", bucket="year")
    assert recovery["series"] == [{"time": "2024-01-01T00:00:00Z", "value": 4500.0,
                                   "failed_deployments": 2}]
    restore = get(http, "/api/v1/metrics/time-to-restore", bucket="month",
                  group_by="environment", environment="*")
    assert [(p["environment"], p["value"], p["incidents"], p["open_incidents"])
            for p in restore["series"]] == [("production", 5400.0, 1, 1),
                                            ("staging", 600.0, 1, 0)]
    rework = get(http, "/api/v1/metrics/rework-rate", bucket="month")
    assert rework["series"][0]["value"] == 2 / 6


def test_drill_downs(http: httpx.Client) -> None:
    failed = get(http, "/api/v1/deployments", failed="true")
    assert [item["id"] for item in failed["items"]] == [4, 2]
    assert failed["items"][0] == {
        "id": 4, "service": "cart", "environment": "production", "time": "2024-03-12T09:00:00Z",
        "kind": "deployed", "artifact": "pkg:generic/cart@4", "revision": None, "failed": True,
        "failed_by": "rollback", "recovered_at": "2024-03-12T09:30:00Z",
        "recovery_seconds": 1800.0, "rework": False, "changes": 2}
    response = http.get("/api/v1/deployments", params={**MARCH, "limit": 4})
    page = response.json()
    assert (page["total"], page["limit"], page["offset"], page["next_offset"]) == (6, 4, 0, 4)
    assert [item["id"] for item in page["items"]] == [8, 5, 4, 3]
    assert 'rel="next"' in response.headers["link"] and "offset=4" in response.headers["link"]
    rest = get(http, "/api/v1/deployments", limit=4, offset=4)
    assert [item["id"] for item in rest["items"]] == [2, 1]
    assert rest["next_offset"] is None

    listed = get(http, "/api/v1/changes")
    assert [item["key"] for item in listed["items"]] == ["c3", "c4", "c1", "c2"]
    c1 = listed["items"][2]
    assert c1["change_time"] == "2024-03-03T06:00:00Z"
    assert c1["first_deployments"] == [{"environment": "production", "service": "shop",
                                        "deployment": 1, "deployed_at": "2024-03-04T10:00:00Z",
                                        "lead_time_seconds": 28 * HOUR}]
    assert listed["items"][1]["first_deployments"][0]["lead_time_seconds"] is None  # c4

    open_incidents = get(http, "/api/v1/incidents", open="true")
    assert [item["key"] for item in open_incidents["items"]] == ["inc-2"]
    every = get(http, "/api/v1/incidents", environment="*")
    assert [(i["key"], i["restore_seconds"], i["deployment"]) for i in every["items"]] == [
        ("inc-2", None, None), ("inc-1", 5400.0, 2), ("inc-3", 600.0, 6)]


def test_tutorial_route(http: httpx.Client) -> None:
    assert get(http, "/deploy-frequency/day") == [
        {"DeployName": "shop", "Deployments": 1, "Time": "2024-03-04T00:00:00Z"},
        {"DeployName": "shop", "Deployments": 2, "Time": "2024-03-05T00:00:00Z"},
        {"DeployName": "cart", "Deployments": 2, "Time": "2024-03-12T00:00:00Z"},
        {"DeployName": "cart", "Deployments": 1, "Time": "2024-03-20T00:00:00Z"}]
    assert get(http, "/deploy-frequency/month") == [
        {"DeployName": "cart", "Deployments": 3, "Time": "2024-03-01T00:00:00Z"},
        {"DeployName": "shop", "Deployments": 3, "Time": "2024-03-01T00:00:00Z"}]


@pytest.mark.parametrize(("path", "params", "status", "word"), [
    ("/api/v1/dora", {"from": "last week"}, 400, "from"),
    ("/api/v1/dora", {"to": "2024-02-30T00:00:00Z"}, 400, "to"),
    ("/api/v1/dora", {"from": "2024-04-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}, 400,
     "before"),
    ("/api/v1/dora", {"team": "nobody"}, 400, "team"),
    ("/api/v1/metrics/lead-time", {"bucket": "hour"}, 400, "bucket"),
    ("/api/v1/metrics/lead-time", {"group_by": "colour"}, 400, "group_by"),
    ("/api/v1/metrics/velocity", {}, 404, "velocity"),
    ("/api/v1/deployments", {"limit": "0"}, 400, "limit"),
    ("/api/v1/incidents", {"limit": "1001"}, 400, "limit"),
    ("/api/v1/changes", {"offset": "-1"}, 400, "offset"),
    ("/deploy-frequency/fortnight", {}, 400, "bucket"),
])
def test_errors_are_problems(http: httpx.Client, path: str, params: dict[str, str],
                             status: int, word: str) -> None:
    response = http.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert word in response.json()["detail"]


def test_read_token(history: Engine) -> None:
    settings = Settings.model_validate({"services": SERVICES, "read_tokens": ["s3cret"]})
    with LiveServer(create_app(settings, history, {"api"})) as live, \
            httpx.Client(base_url=live.url, timeout=10) as client:
        assert client.get("/api/v1/dora").status_code == 401
        assert client.get("/api/v1/dora", headers={"authorization": "Bearer no"}
                          ).status_code == 403
        assert client.get("/api/v1/dora", headers={"authorization": "Bearer s3cret"}
                          ).status_code == 200


def test_openapi_documents_every_metrics_route(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    routes = ["/api/v1/dora", "/api/v1/metrics/{name}", "/api/v1/deployments",
              "/api/v1/changes", "/api/v1/incidents", "/deploy-frequency/{bucket}"]
    for route in routes:
        operation = spec["paths"][route]["get"]
        assert operation["summary"]
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]
    report = spec["components"]["schemas"]["DoraReport"]["properties"]
    assert set(report) == set(PRODUCTION)
    frequency = spec["components"]["schemas"]["DeploymentFrequency"]["properties"]
    assert set(frequency) == set(PRODUCTION["deployment_frequency"])
    parameters = {p["name"] for p in spec["paths"]["/api/v1/dora"]["get"]["parameters"]}
    assert parameters == {"from", "to", "service", "team", "environment"}


def test_report_prints_the_api_numbers(http: httpx.Client, database_url: str,
                                       tmp_path: Path) -> None:
    config = tmp_path / "dora.yaml"
    config.write_text(orjson.dumps({"services": SERVICES,
                                    "production_environments": ["production"]}).decode())
    runner = CliRunner()
    base = ["report", "--db", database_url, "--config", str(config),
            "--from", MARCH["from"], "--to", MARCH["to"]]
    as_json = runner.invoke(main, [*base, "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    api = http.get("/api/v1/dora", params=MARCH)
    assert as_json.stdout.strip() == api.text
    table = runner.invoke(main, [*base, "--team", "checkout"])
    assert table.exit_code == 0, table.output
    assert "Deployment frequency" in table.stdout and "cart" in table.stdout
    bad = runner.invoke(main, ["report", "--db", database_url, "--from", "soon"])
    assert bad.exit_code == 2 and "'from'" in bad.output


def test_frequency_blocks_end_at_a_mid_day_to(engine: Engine) -> None:
    """to = Jun 29 12:00: the 7-day blocks split Jun 22 (and every 7th day) at noon, which the
    database must see: deployments on Jun 22 at 11:00 and 13:00 fall in different weeks."""
    days = [(1, 13), (3, 9), (5, 9), (8, 13), (10, 9), (12, 9), (15, 13), (17, 9), (19, 9),
            (22, 11), (22, 13), (24, 9), (26, 9)]
    with engine.begin() as connection:
        connection.execute(insert(deployments), [
            deployment(n, "shop", "production", "deployed", f"06-{day:02d}T{hour:02d}:00")
            for n, (day, hour) in enumerate(days, start=1)])
        rebuild(connection)
    window = {"from": "2024-06-01T12:00:00Z", "to": "2024-06-29T12:00:00Z"}
    with LiveServer(create_app(Settings(), engine, {"api"})) as live, \
            httpx.Client(base_url=live.url, timeout=10) as client:
        answer = client.get("/api/v1/dora", params=window).json()
    # weeks [Jun 1 12:00, 8 12:00) [8, 15) [15, 22) [22, 29): 3 deployment days each
    assert answer["deployment_frequency"] == {
        "deployments": 13, "deployment_days": 12, "per_week": 13 * 7 / 28,
        "category": "daily", "level": "high"}

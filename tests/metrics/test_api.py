"""Scenarios 10-12 and the drill-downs: time series, the tutorial-compatible
/deploy-frequency route, and 400 problems for bad filters (DESIGN.md §8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from tests.metrics.scenario import (
    Window,
    assert_problem,
    deploy,
    nonempty_points,
    parse_time,
    pr_merged,
    pr_opened,
    push,
    running,
    settings,
    sha,
)
from tests.metrics.test_scenarios import MARCH, REPO, batched_deploy_history

REPO_URL = f"https://github.com/{REPO}"


def test_time_series(engine: Engine) -> None:
    """Scenario 1's data plus a deployment of cart on Tuesday 2024-03-12 (no change).

    ASSUMPTIONS (§8 names the routes, not the arithmetic): a point's ``time`` is its
    bucket's start in UTC, weeks start on Monday (ISO, as PostgreSQL ``date_trunc``); the
    deployment-frequency value is the number of deployments in the bucket, the lead-time
    value the median lead time of the (change, environment) pairs first deployed in the
    bucket; with ``group_by=service`` each point names its service in a ``service`` key.
    """
    with running(engine) as dora:
        dora.send(*batched_deploy_history(),
                  deploy("cart", "production", None, "2024-03-12T10:00"))
        weekly = dora.get("/api/v1/metrics/deployment-frequency", bucket="week",
                          **MARCH.params)
        weekly_by_service = dora.get("/api/v1/metrics/deployment-frequency", bucket="week",
                                     group_by="service", **MARCH.params)
        daily_lead = dora.get("/api/v1/metrics/lead-time", bucket="day", **MARCH.params)
        daily_lead_by_service = dora.get("/api/v1/metrics/lead-time", bucket="day",
                                         group_by="service", **MARCH.params)

    assert (weekly["metric"], weekly["bucket"]) == ("deployment-frequency", "week")
    assert (daily_lead["metric"], daily_lead["bucket"]) == ("lead-time", "day")
    # shop deployed on Monday Mar 4 (week of Mar 4), cart on Tuesday Mar 12 (week of Mar 11)
    assert nonempty_points(weekly["series"]) == [
        (parse_time("2024-03-04"), 1), (parse_time("2024-03-11"), 1)]
    assert nonempty_points(weekly_by_service["series"], "service") == [
        (parse_time("2024-03-04"), "shop", 1), (parse_time("2024-03-11"), "cart", 1)]
    # the three changes shipped on Mar 4: [21600, 18000, 14400] s → median 18000
    assert nonempty_points(daily_lead["series"]) == [(parse_time("2024-03-04"), 18000)]
    assert nonempty_points(daily_lead_by_service["series"], "service") == [
        (parse_time("2024-03-04"), "shop", 18000)]


def test_deploy_frequency_compatible_route(engine: Engine) -> None:
    """The original tutorial's shape: deployments per service per bucket, sorted by Time then
    DeployName, times as ``YYYY-MM-DDT00:00:00Z``. The window is passed explicitly (the
    route takes the metrics filters; without them it could default to the last 90 days)."""
    config = settings(services={"shop": {"aliases": ["shop-deploy"]}})
    with running(engine, config) as dora:
        dora.send(
            deploy("shop", "production", None, "2024-03-04T09:00"),
            deploy("shop-deploy", "production", None, "2024-03-04T15:00"),  # alias of shop
            deploy("cart", "production", None, "2024-03-04T12:00"),
            deploy("shop", "production", None, "2024-03-05T10:00"),
        )
        day = dora.get("/deploy-frequency/day", **MARCH.params)
        week = dora.get("/deploy-frequency/week", **MARCH.params)

    def rows(answer: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(row["DeployName"], row["Deployments"], row["Time"]) for row in answer]

    assert rows(day) == [
        ("cart", 1, "2024-03-04T00:00:00Z"),
        ("shop", 2, "2024-03-04T00:00:00Z"),  # 09:00 and the alias at 15:00
        ("shop", 1, "2024-03-05T00:00:00Z"),
    ]
    # ASSUMPTION: weeks start on Monday (2024-03-04 is one)
    assert rows(week) == [
        ("cart", 1, "2024-03-04T00:00:00Z"),
        ("shop", 3, "2024-03-04T00:00:00Z"),
    ]


def test_bad_filters_are_400_problems(engine: Engine) -> None:
    with running(engine) as dora:
        http = dora.http
        assert_problem(http.get("/api/v1/dora", params={"from": "yesterday"}), 400, "from")
        assert_problem(http.get("/api/v1/dora", params={"to": "2024-13-45T00:00:00Z"}),
                       400, "to")
        assert_problem(http.get("/api/v1/metrics/deployment-frequency",
                                params={"bucket": "fortnight"}), 400, "bucket")
        assert_problem(http.get("/api/v1/metrics/lead-time",
                                params={"bucket": "day", "group_by": "colour"}), 400,
                       "group_by")
        # `from` after `to`
        assert_problem(http.get("/api/v1/dora", params=Window("2024-04-01", "2024-03-01")
                                .params), 400, "from")
        # an unknown metric: a problem too (§8 does not say whether 400 or 404)
        unknown = http.get("/api/v1/metrics/nope", params={"bucket": "day"})
        assert_problem(unknown, 404 if unknown.status_code == 404 else 400)


def items(answer: Any) -> list[Any]:
    """The items of a drill-down list. ASSUMPTION (§8 says "paginated lists" only): either a
    JSON array, or an object with the page's items under ``items``."""
    if isinstance(answer, list):
        return answer
    assert isinstance(answer, dict) and isinstance(answer.get("items"), list), answer
    found: list[Any] = answer["items"]
    return found


def test_drill_downs_list_what_the_numbers_count(engine: Engine) -> None:
    """Scenario 2's squash merge: one deployment, one change (the PR), no incident."""
    f1, s = sha("drill-f1"), sha("drill-squash")
    with running(engine) as dora:
        dora.send(
            push(REPO, [(f1, "2024-03-05T08:00")], branch="feature-y"),
            pr_opened(REPO, 9, "feature-y", "2024-03-05T09:00"),
            pr_merged(REPO, 9, "feature-y", s, "2024-03-05T12:00"),
            push(REPO, [(s, "2024-03-05T12:00")]),
            deploy("shop", "production", s, "2024-03-05T16:00"),
        )
        deployments = items(dora.get("/api/v1/deployments", **MARCH.params))
        changes = items(dora.get("/api/v1/changes", **MARCH.params))
        incidents = items(dora.get("/api/v1/incidents", **MARCH.params))
        other_service = items(dora.get("/api/v1/deployments", service="cart", **MARCH.params))
    assert len(deployments) == 1
    assert len(changes) == 1
    assert f"{REPO_URL}/pull/9" in str(changes[0])  # the PR is the change, not the push of s
    assert incidents == []
    assert other_service == []

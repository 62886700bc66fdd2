"""Acceptance scenarios of the DORA metrics (DESIGN.md §6, §7, §8), on SQLite and PostgreSQL.

Each test posts a small history (CDEvents to /cdevents, raw CloudEvents to /events) to a
server running every default component (ingest, router, projector, API), waits until
nothing is pending in ``cloudevents_raw`` and ``cdevents_raw``, and compares EVERY field of
``GET /api/v1/dora`` for an explicit window with numbers derived by hand from §7; the
arithmetic is in the comments. Unless a test configures ``production_environments``, none
are configured, so the default environment filter is "all environments".

All windows are in 2024. MARCH = [2024-03-01, 2024-04-01), 31 days, whose blocks are:
  7-day blocks ending at Apr 1: [Mar 4, 11) [Mar 11, 18) [Mar 18, 25) [Mar 25, Apr 1)
  (Mar 1-3 is an incomplete leading block, dropped); 30-day blocks: [Mar 2, Apr 1)
  (Mar 1 dropped). 2024-03-04 is a Monday.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.migrate import upgrade
from tests.conftest import _postgres_database
from tests.metrics.scenario import (
    CDEvent,
    Window,
    artifact_of,
    assert_dora,
    by_time,
    deploy,
    detected,
    expected_dora,
    hours,
    incident,
    parse_time,
    pr_merged,
    pr_opened,
    push,
    resolved,
    running,
    settings,
    sha,
)
from tests.transformers.test_fixtures import load_case

MARCH = Window("2024-03-01", "2024-04-01")  # 31 days
MAY = Window("2024-05-01", "2024-06-01")  # 31 days
REPO = "acme/shop"
TRANSFORMER_CASES = Path(__file__).resolve().parents[1] / "transformers"

C1, C2, C3 = sha("shop-c1"), sha("shop-c2"), sha("shop-c3")


def batched_deploy_history() -> list[CDEvent]:
    """Scenario 1: three direct pushes to main, then one deployment shipping all three."""
    return [
        push(REPO, [(C1, "2024-03-04T09:00")]),
        push(REPO, [(C2, "2024-03-04T10:00")]),
        push(REPO, [(C3, "2024-03-04T11:00")]),
        deploy("shop", "production", C3, "2024-03-04T15:00", repo=REPO),
    ]


def test_batched_deploy_counts_every_change_it_shipped(engine: Engine) -> None:
    with running(engine) as dora:
        dora.send(*batched_deploy_history())
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # 1 deployment on 1 day; per week = 1 * 7 / 31 days
        deployments=1, deployment_days=1, per_week=1 * 7 / 31,
        # deployment days per 7-day block [1, 0, 0, 0] → median 0 < 3: not daily;
        # 1 of 4 weeks < half: not weekly; 1 of 1 30-day block ≥ half → monthly (medium)
        category="monthly",
        # revision C3 ships C1, C2, C3 (batched): one value per change,
        # 15:00 - 09:00, 15:00 - 10:00, 15:00 - 11:00 = 21600, 18000, 14400 s;
        # sorted [14400, 18000, 21600] → median 18000 (5 h < 1 day: elite),
        # p90 = rank ceil(0.9 * 3) = 3 → 21600; changes 3
        lead_times=[hours(15 - 9), hours(15 - 10), hours(15 - 11)],
        # no rollback, no incident: failed 0 of 1 → rate 0.0 (≤ 5 %: elite); rework 0 → 0.0
        # overall (ASSUMPTION): worst of medium, elite, elite, null → medium
    ))


def test_squash_merged_pr_is_one_change_timed_from_its_first_commit(engine: Engine) -> None:
    F1, F2, S = sha("feature-x-1"), sha("feature-x-2"), sha("squash-of-7")
    with running(engine) as dora:
        dora.send(
            push(REPO, [(F1, "2024-03-05T08:00")], branch="feature-x"),  # c1
            push(REPO, [(F2, "2024-03-05T09:00")], branch="feature-x"),  # c2
            pr_opened(REPO, 7, "feature-x", "2024-03-05T09:30"),
            pr_merged(REPO, 7, "feature-x", S, "2024-03-05T12:00", head_sha=F2),
            push(REPO, [(S, "2024-03-05T12:00")]),  # main gets only the squash commit S
            deploy("shop", "production", S, "2024-03-05T16:00", repo=REPO),
        )
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # 1 deployment (Mar 5, in block [Mar 4, 11)); per week 1 * 7 / 31 → monthly, as in
        # scenario 1 (days per week [1, 0, 0, 0], 1/4 weeks, 1/1 30-day block)
        deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        # ONE change, the PR (the push of S and the feature-x pushes belong to it); its time
        # is its earliest commit c1 (08:00), neither the PR creation (09:30) nor the merge
        # (12:00): 16:00 - 08:00 = 28800 s (elite); median = p90 = 28800
        lead_times=[hours(16 - 8)],
        # 0 failed of 1 → 0.0; overall (ASSUMPTION): worst of medium, elite, elite → medium
    ))


def test_raw_github_squash_merge_with_a_native_cdevents_05_deployment(engine: Engine) -> None:
    """Mixed input: the raw GitHub events of the golden case ``pull-request-squash-merged``
    (feature/cart push with commits at 09:05Z, 08:50Z, 09:30Z; PR #7 merged at 11:00Z with
    squash commit 5e6f7a8b…; push of 5e6f7a8b… to main at 11:00Z) through the router, and a
    CDEvents 0.5.1 ``service.deployed`` written by hand whose revision is a 7-char prefix."""
    _, github_events, _ = load_case(
        TRANSFORMER_CASES / "github" / "pull-request-squash-merged.input.json")
    deployed_05 = {
        "context": {
            "specversion": "0.5.1",
            "id": "0b7e3c9a-6a52-4d7e-9f1e-3c2b1a0d9e8f",
            "source": "/tekton/pipelines/shop/deploy",
            "type": "dev.cdevents.service.deployed.0.3.0",
            "timestamp": "2024-03-04T13:00:00Z",
        },
        "subject": {
            "id": "shop",
            "source": "/tekton/pipelines/shop/deploy",
            "content": {
                "environment": {"id": "production", "source": "/clusters/eu-prod-1"},
                "artifactId": "pkg:oci/shop@sha256%3A9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b"
                              "822cd15d6c15b0f00a08?repository_url=ghcr.io/acme/shop",
            },
        },
        "customData": {"revision": "5e6f7a8"},
        "customDataContentType": "application/json",
    }
    with running(engine) as dora:
        dora.send_raw(*github_events)
        dora.send(deployed_05)
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # 1 deployment (Mar 4) → monthly, as in scenario 1
        deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        # one change (PR #7), from its earliest commit 08:50Z (10:05+01:00 = 09:05Z and
        # 04:30-05:00 = 09:30Z are later): 13:00 - 08:50 = 4 h 10 min = 15000 s (elite)
        lead_times=[hours(4) + 10 * 60],
    ))


def test_rollback_fails_the_deployment_it_undoes(engine: Engine) -> None:
    a = deploy("shop", "production", None, "2024-03-11T10:00")
    with running(engine) as dora:
        dora.send(
            a,
            deploy("shop", "production", None, "2024-03-12T10:00", kind="upgraded"),  # B
            deploy("shop", "production", None, "2024-03-12T10:30", kind="rolledback",
                   artifact=artifact_of(a)),  # back to A's artifact
        )
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # A, B and the rollback are deployments: 3, on Mar 11 and Mar 12 → 2 days;
        # per week 3 * 7 / 31; days per week [0, 2, 0, 0] → median 0, 1/4 weeks, 1/1 30-day
        # block → monthly (medium)
        deployments=3, deployment_days=2, per_week=3 * 7 / 31, category="monthly",
        # B is failed (a rollback follows it before any other deployment); A is not (B came
        # between A and the rollback); rate 1/3 (> 15 %: low)
        failed=1,
        # B's recovery: rollback - B = 10:30 - 10:00 = 1800 s (< 1 h: elite)
        recovery_times=[hours(0.5)],
        # the rollback is rework: 1/3
        rework=1,
        # no change: lead time null. Overall (ASSUMPTION): worst of medium, null, low, elite
        # → low
    ))


def incident_history() -> list[CDEvent]:
    """Scenario 4: three deployments of shop to production and four incidents."""
    d_early = deploy("shop", "production", None, "2024-03-11T10:00")
    d0 = deploy("shop", "production", None, "2024-03-18T08:00")
    d1 = deploy("shop", "production", None, "2024-03-18T10:00")
    return [
        d_early, d0, d1,
        # inc-1, no artifact: the latest deployment before 12:00 is D1 (2 h, within 24 h).
        # Detected twice (a re-notification: another CDEvent, same subject id): ONE
        # incident, detected at its first detection (ASSUMPTION: the earliest one).
        detected("inc-1", "shop", "production", "2024-03-18T12:00"),
        detected("inc-1", "shop", "production", "2024-03-18T12:05"),
        resolved("inc-1", "shop", "production", "2024-03-18T13:30"),
        # inc-2 names D0's artifact: attributed to D0 although D1 is later
        *incident("inc-2", "shop", "production", "2024-03-18T14:00", "2024-03-18T18:00",
                  artifact=artifact_of(d0)),
        # inc-3: a second incident on D1
        *incident("inc-3", "shop", "production", "2024-03-18T15:00", "2024-03-18T16:00"),
        # inc-4: detected 30 h after D1, the latest deployment: outside the 24 h attribution
        # window, so attributed to none; never resolved (open)
        *incident("inc-4", "shop", "production", "2024-03-19T16:00"),
    ]


def test_incidents_are_attributed_to_deployments(engine: Engine) -> None:
    with running(engine) as dora:
        dora.send(*incident_history())
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # 3 deployments (Mar 11, Mar 18 twice) on 2 days; per week 3 * 7 / 31;
        # days per week [0, 1, 1, 0] → median 0.5 < 3; 2 of 4 weeks ≥ half → weekly (high)
        deployments=3, deployment_days=2, per_week=3 * 7 / 31, category="weekly",
        # failed: D0 (inc-2) and D1 (inc-1 and inc-3, counted once) → 2 of 3 (low)
        failed=2,
        # recovery: D0 → inc-2 resolved 18:00 - 08:00 = 10 h = 36000;
        # D1 → its last attributed incident inc-3 resolved 16:00 - 10:00 = 6 h = 21600;
        # median of [21600, 36000] = 28800 (8 h < 1 day: high)
        recovery_times=[hours(18 - 8), hours(16 - 10)],
        # time to restore, incidents detected in March and resolved: inc-1 13:30 - 12:00 =
        # 5400, inc-2 18:00 - 14:00 = 14400, inc-3 16:00 - 15:00 = 3600 → median 5400;
        # incidents 3; inc-4 is open: open_incidents 1
        restore_times=[hours(1.5), hours(18 - 14), hours(16 - 15)], open_incidents=1,
        # no deployment happened while an incident was open: rework 0 → 0.0
        # overall (ASSUMPTION): worst of high, null, low, high → low
    ))


@contextmanager
def second_database(engine: Engine, request: pytest.FixtureRequest,
                    tmp_path: Path) -> Iterator[Engine]:
    """Another empty, migrated database on the same back-end as ``engine``."""
    if engine.dialect.name == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'second.db'}"])
        cleanup = None
    else:
        cleanup = _postgres_database(request)
        urls = cleanup
    other = make_engine(next(urls))
    try:
        upgrade(other)
        yield other
    finally:
        other.dispose()
        if cleanup is not None:
            next(cleanup, None)  # drops the schema


def test_out_of_order_arrival_gives_the_same_metrics(engine: Engine,
                                                     request: pytest.FixtureRequest,
                                                     tmp_path: Path) -> None:
    """Scenarios 1 + 4 posted one event at a time (each projected before the next arrives),
    in time order on one database and in reverse time order on another: the deployment
    arrives before the pushes it shipped, resolutions before detections, incidents before
    the deployments they are attributed to."""
    history = by_time([*batched_deploy_history(), *incident_history()])
    answers = []
    with second_database(engine, request, tmp_path) as other:
        for database, events in ((engine, history), (other, history[::-1])):
            with running(database) as dora:
                for event in events:
                    dora.send(event)
                answers.append({"all": dora.dora(MARCH),
                                "shop": dora.dora(MARCH, service="shop")})
    in_order, reversed_order = answers
    assert reversed_order == in_order
    expected = expected_dora(
        MARCH,
        # 4 deployments: Mar 4 15:00, Mar 11, Mar 18 twice → 3 days; per week 4 * 7 / 31;
        # days per week [1, 1, 1, 0] → median 1 < 3; 3 of 4 weeks ≥ half → weekly (high)
        deployments=4, deployment_days=3, per_week=4 * 7 / 31, category="weekly",
        # scenario 1's three changes: [21600, 18000, 14400] → median 18000, p90 21600
        lead_times=[hours(15 - 9), hours(15 - 10), hours(15 - 11)],
        # scenario 4: D0 and D1 failed → 2 of 4 = 0.5 (low); recovery [36000, 21600] →
        # median 28800 (high); restore [5400, 14400, 3600] → 5400, 1 open; rework 0
        failed=2, recovery_times=[hours(18 - 8), hours(16 - 10)],
        restore_times=[hours(1.5), hours(18 - 14), hours(16 - 15)], open_incidents=1,
        # overall (ASSUMPTION): worst of high, elite, low, high → low
    )
    assert_dora(in_order["all"], expected)
    assert_dora(in_order["shop"], expected)  # every fact of this history is shop's


def test_a_commit_reported_twice_belongs_to_the_earlier_report_in_any_order(
        engine: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Two pushes to main both list commit A (the second re-lists it with B): A is the
    first push's change whichever push arrives first, so the answers are equal."""
    a, b = sha("twice-a"), sha("twice-b")
    history = [push(REPO, [(a, "2024-03-04T09:00")]),
               push(REPO, [(a, "2024-03-04T09:00"), (b, "2024-03-04T10:00")]),
               deploy("shop", "production", b, "2024-03-04T15:00", repo=REPO)]
    answers = []
    with second_database(engine, request, tmp_path) as other:
        for database, events in ((engine, history), (other, history[::-1])):
            with running(database) as dora:
                for event in events:
                    dora.send(event)
                answers.append(dora.dora(MARCH))
    in_order, reversed_order = answers
    assert reversed_order == in_order
    assert_dora(in_order, expected_dora(
        MARCH, deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        # two changes: the first push owns A (15:00 - 09:00), the second only B
        # (15:00 - 10:00); the reverse order used to give the second push A and B and
        # leave the first push with nothing shipped: one value, 6 h
        lead_times=[hours(15 - 9), hours(15 - 10)],
    ))


SERVICES = {"shop": {"aliases": ["acme/shop", "shop-deploy"], "team": "payments"},
            "cart": {"team": "checkout"}}


def test_environments_services_and_teams(engine: Engine) -> None:
    p1, q1 = sha("shop-p1"), sha("cart-q1")
    config = settings(production_environments=["production"], services=SERVICES)
    with running(engine, config) as dora:
        dora.send(
            push("acme/shop", [(p1, "2024-03-06T09:00")]),
            push("acme/cart", [(q1, "2024-03-07T06:00")]),
            deploy("shop", "staging", p1, "2024-03-06T10:00"),
            deploy("shop-deploy", "production", p1, "2024-03-06T14:00"),  # alias of shop
            deploy("cart", "staging", q1, "2024-03-07T09:00"),
            deploy("cart", "production", q1, "2024-03-07T10:00"),
            # shop redeployed at the same revision: ships nothing new
            deploy("shop", "production", p1, "2024-03-08T10:00"),
        )
        default = dora.dora(MARCH)
        production = dora.dora(MARCH, environment="production")
        staging = dora.dora(MARCH, environment="staging")
        shop = dora.dora(MARCH, service="shop")
        checkout = dora.dora(MARCH, team="checkout")
        payments_staging = dora.dora(MARCH, team="payments", environment="staging")

    # Default = the production environments only: shop (alias shop-deploy) Mar 6 14:00,
    # cart Mar 7 10:00, shop Mar 8 10:00 → 3 deployments on 3 days; per week 3 * 7 / 31;
    # days per week [3, 0, 0, 0] → median 0; 1/4 weeks; 1/1 30-day block → monthly.
    # Lead time per (change, production): p1 first reached production at Mar 6 14:00 (the
    # redeploy does not count it again): 14:00 - 09:00 = 5 h; q1: 10:00 - 06:00 = 4 h
    # → median (14400 + 18000) / 2 = 16200, p90 rank ceil(1.8) = 2 → 18000; changes 2.
    # Nothing failed: 0/3; rework 0/3. Overall (ASSUMPTION): worst of medium, elite, elite.
    expected_production = expected_dora(
        MARCH, deployments=3, deployment_days=3, per_week=3 * 7 / 31, category="monthly",
        lead_times=[hours(14 - 9), hours(10 - 6)])
    assert_dora(default, expected_production)
    assert_dora(production, expected_production)
    # Staging: shop Mar 6 10:00, cart Mar 7 09:00 → 2 deployments on 2 days, monthly;
    # lead: p1 10:00 - 09:00 = 1 h, q1 09:00 - 06:00 = 3 h → median 2 h, p90 3 h
    assert_dora(staging, expected_dora(
        MARCH, deployments=2, deployment_days=2, per_week=2 * 7 / 31, category="monthly",
        lead_times=[hours(10 - 9), hours(9 - 6)]))
    # service=shop (production): the alias deployment Mar 6 and Mar 8 → 2 on 2 days;
    # lead [5 h] (p1 once)
    assert_dora(shop, expected_dora(
        MARCH, deployments=2, deployment_days=2, per_week=2 * 7 / 31, category="monthly",
        lead_times=[hours(14 - 9)]))
    # team=checkout = cart (production): 1 deployment; lead [4 h]
    assert_dora(checkout, expected_dora(
        MARCH, deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        lead_times=[hours(10 - 6)]))
    # team=payments in staging = shop staging: 1 deployment; lead [1 h]
    assert_dora(payments_staging, expected_dora(
        MARCH, deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        lead_times=[hours(10 - 9)]))


def test_rework_while_an_incident_is_open(engine: Engine) -> None:
    with running(engine) as dora:
        dora.send(
            deploy("shop", "production", None, "2024-03-20T09:00"),  # D1
            detected("inc-7", "shop", "production", "2024-03-20T10:00"),
            deploy("shop", "production", None, "2024-03-20T11:00"),  # D2: during inc-7
            resolved("inc-7", "shop", "production", "2024-03-20T11:30"),
            deploy("shop", "production", None, "2024-03-20T15:00"),  # D3: after it
        )
        answer = dora.dora(MARCH)
    assert_dora(answer, expected_dora(
        MARCH,
        # 3 deployments on Mar 20; per week 3 * 7 / 31; days per week [0, 0, 1, 0] →
        # median 0; 1/4 weeks; 1/1 30-day block → monthly (medium)
        deployments=3, deployment_days=1, per_week=3 * 7 / 31, category="monthly",
        # inc-7 (10:00) is attributed to D1, the latest deployment before it: 1 of 3 (low)
        failed=1,
        # D1's recovery: inc-7 resolved 11:30 - 09:00 = 2.5 h = 9000 s (< 1 day: high)
        recovery_times=[hours(11.5 - 9)],
        # inc-7: 11:30 - 10:00 = 5400 s; none open
        restore_times=[hours(11.5 - 10)],
        # D2 (11:00) happened while inc-7 was open (10:00-11:30): rework; D3 (15:00) not
        # → 1/3
        rework=1,
        # overall (ASSUMPTION): worst of medium, null, low, high → low
    ))


def test_empty_database(engine: Engine) -> None:
    with running(engine) as dora:
        answer = dora.dora(MARCH)
        default_window = dora.get("/api/v1/dora")["window"]
    # §8's shape exactly: counts 0, per_week 0.0, category "none", rates, medians and
    # levels null, and the overall level null
    assert_dora(answer, expected_dora(MARCH))
    # default window: to = now, from = to - 90 days
    start, end = parse_time(default_window["from"]), parse_time(default_window["to"])
    assert abs(datetime.now(UTC) - end) < timedelta(minutes=5)
    assert end - start == timedelta(days=90)


def test_raw_kubernetes_rollouts_and_a_passthrough_cdevent(engine: Engine) -> None:
    """Mixed raw input through the router: the Kubernetes golden case ``deployment-rollouts``
    (14 ApiServerSource events of nginx-deployment in namespace ``default``: a rollout
    completed at 09:00:07Z, an upgrade at 10:00:12Z, then a removal) and a CloudEvent
    carrying a native CDEvents 0.5.1 ``service.deployed`` (checkout, production, 08:41Z)."""
    _, rollouts, _ = load_case(
        TRANSFORMER_CASES / "kubernetes" / "deployment-rollouts.input.json")
    _, passthrough, _ = load_case(
        TRANSFORMER_CASES / "cdevents" / "service-deployed-0.5.input.json")
    config = settings(services={"web": {"aliases": ["nginx-deployment"], "team": "edge"}})
    with running(engine, config) as dora:
        dora.send_raw(*rollouts, *passthrough)
        everything = dora.dora(MAY)
        web = dora.dora(MAY, service="web")
        edge = dora.dora(MAY, team="edge")
        default_namespace = dora.dora(MAY, environment="default")
        checkout = dora.dora(MAY, service="checkout")
    # No production environments configured: every environment counts. Deployments:
    # checkout 08:41, nginx-deployment (= web) 09:00:07 and 10:00:12, all on 2024-05-14;
    # the removal is not a deployment → 3 on 1 day; per week 3 * 7 / 31.
    # MAY's 7-day blocks end Jun 1: [May 4, 11) [11, 18) [18, 25) [25, Jun 1): days per
    # week [0, 1, 0, 0] → median 0, 1/4 weeks; the 30-day block [May 2, Jun 1) has one →
    # monthly. The revisions name no known commit: no lead time. 0 failed, 0 rework.
    assert_dora(everything, expected_dora(
        MAY, deployments=3, deployment_days=1, per_week=3 * 7 / 31, category="monthly"))
    # web (alias nginx-deployment, team edge, namespace default): 2 deployments, 1 day
    expected_web = expected_dora(MAY, deployments=2, deployment_days=1, per_week=2 * 7 / 31,
                                 category="monthly")
    for answer in (web, edge, default_namespace):
        assert_dora(answer, expected_web)
    assert_dora(checkout, expected_dora(MAY, deployments=1, deployment_days=1,
                                        per_week=1 * 7 / 31, category="monthly"))

"""Scenario 8: every deployment-frequency category of §7, from deployment histories built for
it, with deployments, deployment_days, per_week and the level of the default table.

Two windows (to = midnight, so blocks are whole UTC days):

* JUNE = [2024-06-03, 2024-07-01), 28 days = exactly four 7-day blocks, Mondays
  [Jun 3, 10) [Jun 10, 17) [Jun 17, 24) [Jun 24, Jul 1); no complete 30-day block.
* SPRING = [2024-03-03, 2024-07-01), 120 days: seventeen 7-day blocks from Mar 4 (Mar 3 is
  an incomplete leading block, dropped) and four 30-day blocks
  [Mar 3, Apr 2) [Apr 2, May 2) [May 2, Jun 1) [Jun 1, Jul 1).

Every case is first checked against ``frequency_category`` (§7 transcribed in
``scenario.py``): that checks the design of the case, not the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import Engine

from tests.metrics.scenario import (
    Window,
    assert_dora,
    at,
    deploy,
    expected_dora,
    frequency_category,
    running,
)

JUNE = Window("2024-06-03", "2024-07-01")
SPRING = Window("2024-03-03", "2024-07-01")


def on(days: list[str], per_day: int = 1) -> list[str]:
    """``per_day`` deployment times (09:00, 10:00, ...) on each of ``days`` ("2024-06-03")."""
    return [at(f"{day}T{9 + n:02d}:00") for day in days for n in range(per_day)]


@dataclass(frozen=True)
class Case:
    window: Window
    times: list[str]
    deployments: int
    deployment_days: int
    per_week: float
    category: str


CASES = {
    # Weeks with 3, 3, 4 and 1 deployment days → sorted [1, 3, 3, 4], median 3 >= 3; ten days
    # with 2 deployments and one with 1 → median deployment day 2 >= 2 → on-demand (elite).
    # 6 + 6 + 8 + 1 = 21 deployments on 3 + 3 + 4 + 1 = 11 days; per week 21 * 7 / 28 = 5.25
    "on-demand": Case(
        JUNE,
        on(["2024-06-03", "2024-06-04", "2024-06-05"], per_day=2)
        + on(["2024-06-10", "2024-06-11", "2024-06-12"], per_day=2)
        + on(["2024-06-17", "2024-06-18", "2024-06-19", "2024-06-20"], per_day=2)
        + on(["2024-06-24"]),
        deployments=21, deployment_days=11, per_week=21 * 7 / 28, category="on-demand"),
    # Same days, one deployment each but five on Jun 24: median week 3 days, but the median
    # deployment day has 1 deployment ([1 x 10, 5]) → daily (high): frequency, not volume.
    # 3 + 3 + 4 + 5 = 15 deployments on 11 days; per week 15 * 7 / 28 = 3.75
    "daily": Case(
        JUNE,
        on(["2024-06-03", "2024-06-04", "2024-06-05"])
        + on(["2024-06-10", "2024-06-11", "2024-06-12"])
        + on(["2024-06-17", "2024-06-18", "2024-06-19", "2024-06-20"])
        + on(["2024-06-24"], per_day=5),
        deployments=15, deployment_days=11, per_week=15 * 7 / 28, category="daily"),
    # Deployment days per week [2, 0, 1, 0] → median 0.5 < 3; weeks with a deployment 2 of 4
    # = half → weekly (high). 3 + 3 + 1 = 7 deployments on 3 days; per week 7 * 7 / 28 = 1.75
    "weekly": Case(
        JUNE,
        on(["2024-06-04", "2024-06-06"], per_day=3) + on(["2024-06-19"]),
        deployments=7, deployment_days=3, per_week=7 * 7 / 28, category="weekly"),
    # 2 of 17 weeks have a deployment (< half); 30-day blocks [Apr 2, May 2) and
    # [Jun 1, Jul 1) have one: 2 of 4 = half → monthly (medium).
    # 4 deployments on 4 days; per week 4 * 7 / 120
    "monthly": Case(
        SPRING,
        on(["2024-04-10", "2024-06-10", "2024-06-11", "2024-06-12"]),
        deployments=4, deployment_days=4, per_week=4 * 7 / 120, category="monthly"),
    # One deployment in the window: 1 of 4 30-day blocks < half → yearly (low). The one of
    # Mar 2 is before `from` and does not count. 1 deployment; per week 1 * 7 / 120
    "yearly": Case(
        SPRING,
        [at("2024-03-02T23:00"), *on(["2024-05-15"])],
        deployments=1, deployment_days=1, per_week=1 * 7 / 120, category="yearly"),
    # Deployments just before `from` and exactly at `to` (the window is [from, to)):
    # none in the window → 0, 0, 0.0, "none", level null
    "none": Case(
        SPRING,
        [at("2024-03-02T23:59"), at("2024-07-01T00:00")],
        deployments=0, deployment_days=0, per_week=0.0, category="none"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_deployment_frequency_category(engine: Engine, name: str) -> None:
    case = CASES[name]
    assert frequency_category(case.times, case.window) == case.category  # the design is right
    with running(engine) as dora:
        dora.send(*(deploy("shop", "production", None, t) for t in case.times))
        answer = dora.dora(case.window)
    # No change, no incident, no rollback: lead time null, failed 0 (rate 0.0, elite; null
    # when there is no deployment), rework 0. Frequency level: on-demand → elite, daily and
    # weekly → high, monthly → medium, yearly → low, none → null. Overall (ASSUMPTION): the
    # worst of the frequency level and the failure-rate level (elite), null for "none".
    assert_dora(answer, expected_dora(
        case.window, deployments=case.deployments, deployment_days=case.deployment_days,
        per_week=case.per_week, category=case.category))

"""CDEvents links and chains ship changes (DESIGN.md §6, docs/metrics.md §4.2), whatever
the order in which the linked events arrive, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from dora_cloudevents.cdevents.build import new_cdevent
from tests.metrics.scenario import (
    CDEvent,
    Window,
    assert_dora,
    at,
    deploy,
    expected_dora,
    hours,
    push,
    running,
    sha,
)
from tests.metrics.test_scenarios import second_database

MARCH = Window("2024-03-01", "2024-04-01")  # 31 days
REPO = "acme/shop"


def linked(event: CDEvent, *links: dict[str, Any], chain: str | None = None) -> CDEvent:
    """``event`` with CDEvents ``links`` (and a ``chainId``) in its context."""
    context = {**event["context"], **({"links": list(links)} if links else {})}
    if chain is not None:
        context["chainId"] = chain
    return {**event, "context": context}


def path_from(event: CDEvent) -> dict[str, Any]:
    return {"linkType": "PATH", "from": {"contextId": event["context"]["id"]}}


def relation_to(event: CDEvent) -> dict[str, Any]:
    return {"linkType": "RELATION", "linkKind": "TRIGGER",
            "target": {"contextId": event["context"]["id"]}}


def published(artifact: str, moment: str, *links: dict[str, Any]) -> CDEvent:
    return linked(new_cdevent("artifact.published", key=("test-published", artifact),
                              source="/ci/build", timestamp=at(moment), subject_id=artifact),
                  *links)


def answers_in_both_orders(engine: Engine, request: pytest.FixtureRequest, tmp_path: Path,
                           history: list[CDEvent]) -> dict[str, Any]:
    """The /api/v1/dora answer for March, posting ``history`` one event at a time in the
    given order and, on another database, in reverse; asserts the two are equal."""
    answers = []
    with second_database(engine, request, tmp_path) as other:
        for database, events in ((engine, history), (other, history[::-1])):
            with running(database) as dora:
                for event in events:
                    dora.send(event)
                answers.append(dora.dora(MARCH))
    assert answers[1] == answers[0]
    return answers[0]


def test_a_deployment_ships_the_change_its_links_lead_to(
        engine: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """deployment --PATH--> artifact.published --RELATION--> the push: the deployment has no
    commit revision and an artifact no artifact event names, so only the links tell."""
    change = push(REPO, [(sha("linked-a"), "2024-03-04T09:00")])
    artifact = published("pkg:oci/shop@sha256%3Aaaa", "2024-03-04T11:00", relation_to(change))
    deployment = linked(deploy("shop", "production", None, "2024-03-04T15:00"),
                        path_from(artifact))
    answer = answers_in_both_orders(engine, request, tmp_path, [change, artifact, deployment])
    assert_dora(answer, expected_dora(
        MARCH, deployments=1, deployment_days=1, per_week=1 * 7 / 31, category="monthly",
        # the push's change, 15:00 - 09:00
        lead_times=[hours(15 - 9)],
    ))


def test_a_deployment_ships_the_changes_of_its_chain_once_per_environment(
        engine: Engine, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """A change and three deployments share a chainId (staging, production, production
    again): the change counts once per environment, at its first deployment there; a
    deployment in another chain ships nothing."""
    change = linked(push(REPO, [(sha("chained-a"), "2024-03-05T08:00")]), chain="chain-42")
    history = [
        change,
        linked(deploy("shop", "staging", None, "2024-03-05T10:00"), chain="chain-42"),
        linked(deploy("shop", "production", None, "2024-03-05T12:00"), chain="chain-42"),
        linked(deploy("shop", "production", None, "2024-03-06T12:00"), chain="chain-42"),
        linked(deploy("shop", "production", None, "2024-03-07T12:00"), chain="chain-7"),
    ]
    answer = answers_in_both_orders(engine, request, tmp_path, history)
    assert_dora(answer, expected_dora(
        # 4 deployments on 3 days (Mar 5 twice, 6, 7), all in block [Mar 4, 11): weekly
        # fails (1 of 4 weeks), one 30-day block with deployments → monthly
        MARCH, deployments=4, deployment_days=3, per_week=4 * 7 / 31, category="monthly",
        # staging 10:00 - 08:00, production 12:00 - 08:00; the later deployments ship nothing
        lead_times=[hours(10 - 8), hours(12 - 8)],
    ))

"""Projector linking rules beyond the scenarios: purl revisions, SHA prefixes, late service."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from dora_cloudevents.config import Settings
from dora_cloudevents.events import CDEvent
from dora_cloudevents.metrics.projector import Projector
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import cdevent_row, insert_groups
from dora_cloudevents.store.schema import cdevents_raw, deployment_changes, deployments, incidents
from tests.metrics.scenario import deploy, detected, pr_merged, push, resolved, sha

REPO = "acme/shop"


def project(engine: Engine, events: list[CDEvent]) -> None:
    now = datetime.now(UTC)
    with write_transaction(engine) as connection:
        insert_groups(connection, cdevents_raw, [[cdevent_row(e, "0.4.1", now) for e in events]])
    Projector(engine, Settings()).project_all()


def shipped(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(deployment_changes.c.change_key)).scalars())


def test_a_commit_sha_as_the_artifact_version_is_the_revision(engine: Engine) -> None:
    commit = sha("c1")
    native = deploy("shop", "production", None, "2024-03-04T12:00",
                    artifact=f"pkg:github/acme/shop@{commit}")
    project(engine, [push(REPO, [(commit, "2024-03-04T09:00")]), native])
    assert shipped(engine) == {f"https://github.com/{REPO}/commit/{commit}"}


def test_an_abbreviated_revision_finds_a_merge_commit_never_pushed(engine: Engine) -> None:
    merge = sha("merge")
    project(engine, [pr_merged(REPO, 7, "feature", merge, "2024-03-04T10:00"),
                     deploy("shop", "production", merge[:8], "2024-03-04T12:00")])
    assert shipped(engine) == {f"https://github.com/{REPO}/pull/7"}


def test_an_incident_resolved_before_it_is_detected_still_finds_its_service(
        engine: Engine) -> None:
    early_resolution = resolved("inc-1", "unknown", "production", "2024-03-04T14:00")
    project(engine, [deploy("shop", "production", None, "2024-03-04T12:00"), early_resolution,
                     detected("inc-1", "shop", "production", "2024-03-04T13:00")])
    with engine.connect() as connection:
        incident = connection.execute(select(incidents)).one()
        deployment = connection.execute(select(deployments)).one()
    assert (incident.service, incident.deployment_seq) == ("shop", deployment.cdevent_seq)
    assert deployment.failed and deployment.recovered_at == datetime(2024, 3, 4, 14, tzinfo=UTC)

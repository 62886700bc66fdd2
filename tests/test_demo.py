"""dora-ce demo: a seeded, realistic history sent through the real ingest path (both databases)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from dora_cloudevents.cli import main
from dora_cloudevents.config import Settings, load_settings
from dora_cloudevents.demo.load import demo_settings, load_demo
from dora_cloudevents.demo.world import SERVICES, generate
from dora_cloudevents.metrics.dora import compute_dora
from dora_cloudevents.metrics.filters import resolve_selection
from dora_cloudevents.store.schema import cloudevents_raw, deployments, incidents

END = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _bytes(seed: int, days: int = 120) -> list[bytes]:
    return [orjson.dumps([d.at, d.path, d.body]) for d in generate(seed, END, days)]


def test_the_same_seed_gives_the_same_history_and_another_seed_another() -> None:
    first = _bytes(7)
    assert first == _bytes(7)
    assert first != _bytes(8)


def test_the_history_covers_every_source_over_months() -> None:
    deliveries = generate(7, END, 120)
    kinds = Counter(".".join(d.body["type"].split(".")[:4]) if d.path == "/events" else d.path
                    for d in deliveries)
    assert kinds["dev.knative.source.github"] > 400
    assert kinds["dev.knative.apiserver.resource"] > 200
    assert kinds["dev.tekton.event.pipelinerun"] > 200
    assert kinds["/webhooks/pagerduty"] > 20
    assert kinds["/cdevents"] > 10
    span = deliveries[-1].at - deliveries[0].at
    assert span.days > 100
    assert all(d.at <= END for d in deliveries)


def _report(engine: Engine, **filters: str):  # type: ignore[no-untyped-def]
    settings = demo_settings(Settings(production_environments=["production"]))
    return compute_dora(engine, resolve_selection(settings, end=END, **filters))


def test_the_demo_goes_through_ingest_routing_and_projection(engine: Engine) -> None:
    # 45 days keep the test short (projection dominates); the shape is that of the full demo.
    deliveries = generate(11, END, 45)
    result = load_demo(engine, Settings(), deliveries)

    assert result.accepted == len(deliveries) and result.duplicates == 0
    assert result.route.routed > 0.98 * sum(result.by_path.values())
    assert result.route.unrouted > 0  # the chat bot nobody routed
    assert result.route.failed > 0  # the legacy pipeline that names no service
    with engine.connect() as connection:
        raw = connection.execute(select(func.count()).select_from(cloudevents_raw)).scalar()
        per_service = dict(connection.execute(
            select(deployments.c.service, func.count()).group_by(deployments.c.service)).all())
        incident_count = connection.execute(select(func.count()).select_from(incidents)).scalar()
    assert raw == result.by_path["/events"] + result.by_path["/webhooks/pagerduty"]
    # Every service deploys, under its canonical name (aliases mapped), in both environments.
    assert set(per_service) == {profile.name for profile in SERVICES}
    assert all(count >= 10 for count in per_service.values())
    assert incident_count and incident_count > 5

    report = _report(engine)
    assert 60 < report.deployment_frequency.deployments < 400
    assert report.lead_time_for_changes.changes > 50
    assert 0 < (report.change_failure_rate.rate or 0) < 0.3
    assert report.failed_deployment_recovery_time.median_seconds is not None
    assert report.deployment_rework_rate.rework_deployments > 0
    assert report.level is not None
    # Teams come from the demo's catalogue, and the services differ in how they do.
    payments = _report(engine, team="payments")
    assert 0 < payments.deployment_frequency.deployments < report.deployment_frequency.deployments
    levels = {_report(engine, service=profile.name).lead_time_for_changes.level
              for profile in SERVICES}
    assert len(levels) >= 2

    again = load_demo(engine, Settings(), deliveries)
    assert (again.accepted, again.duplicates) == (0, len(deliveries))
    assert _report(engine) == report


def test_cli_demo_writes_the_catalogue_and_refuses_a_database_with_events(tmp_path: Path
                                                                          ) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    config = tmp_path / "demo.yaml"
    runner = CliRunner()
    args = ["demo", "--db", db, "--days", "30", "--end", "2026-03-02",
            "--write-config", str(config)]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "0 duplicates" in first.output and "projected" in first.output
    assert f"dora-ce serve --config {config} --db {db}" in first.output
    catalogue = load_settings(config)
    assert catalogue.services["checkout"].team == "payments"
    assert "Checkout API" in catalogue.services["checkout"].aliases
    assert catalogue.production_environments == ["production"]

    refused = runner.invoke(main, args)
    assert refused.exit_code == 1
    assert "already holds" in refused.output and "--force" in refused.output
    forced = runner.invoke(main, [*args, "--force"])
    assert forced.exit_code == 0 and " 0 accepted" in forced.output

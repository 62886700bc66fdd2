"""What the dashboard's filters offer: the services, environments and teams there are."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select, union

from dora_cloudevents.config import Settings
from dora_cloudevents.store.schema import deployments, incidents


@dataclass(frozen=True)
class Choices:
    services: list[str]
    environments: list[str]
    teams: list[str]


def filter_choices(connection: Connection, settings: Settings) -> Choices:
    """Services and environments seen in deployments and incidents, plus the configured ones."""
    seen = connection.execute(union(
        select(deployments.c.service, deployments.c.environment).distinct(),
        select(incidents.c.service, incidents.c.environment).distinct())).all()
    services = {row[0] for row in seen} | set(settings.services)
    environments = {row[1] for row in seen} | set(settings.production_environments)
    teams = {config.team for config in settings.services.values() if config.team}
    return Choices(sorted(services), sorted(environments), sorted(teams))

"""Service names: aliases to canonical names and teams, from the config file's `services:`."""

from __future__ import annotations

from collections.abc import Mapping

from dora_cloudevents.config import ServiceConfig, Settings


class ServiceCatalog:
    """Maps any alias (repository, Kubernetes name, PagerDuty service...) to one service name.

    Matching is case-insensitive; a name that is nobody's alias is its own service.
    """

    def __init__(self, services: Mapping[str, ServiceConfig]) -> None:
        self._canonical: dict[str, str] = {}
        self._teams: dict[str, str | None] = {}
        for name, config in services.items():
            self._teams[name] = config.team
            for alias in (name, *config.aliases):
                self._canonical[alias.lower()] = name

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceCatalog:
        return cls(settings.services)

    def canonical(self, name: str) -> str:
        return self._canonical.get(name.lower(), name)

    def team_of(self, service: str) -> str | None:
        return self._teams.get(service)

    def services_of(self, team: str) -> list[str]:
        return sorted(name for name, owner in self._teams.items() if owner == team)

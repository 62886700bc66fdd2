"""Resolving route target names: built-in transformers, config mappings, or remote URLs."""

from __future__ import annotations

from collections.abc import Callable

from dora_cloudevents.config import ConfigError, Settings
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.routing.mappings import MappingTransformer
from dora_cloudevents.routing.remote import RemoteTransformer
from dora_cloudevents.routing.table import RoutingTable
from dora_cloudevents.transformers import builtin_transformers

Target = Callable[[CloudEvent], list[CDEvent]]


def _resolve(name: str, settings: Settings) -> Target:
    if name.startswith(("http://", "https://")):
        return RemoteTransformer(name, timeout=settings.remote_timeout_seconds,
                                 attempts=settings.remote_attempts)
    if name in settings.mappings:
        return MappingTransformer(name, settings.mappings[name].jq)
    builtin = builtin_transformers()
    if name in builtin:
        return builtin[name]
    raise ConfigError(
        f"route target {name!r} is neither a built-in transformer ({', '.join(sorted(builtin))}),"
        " a mapping under `mappings:`, nor an http(s) URL")


def resolve_targets(table: RoutingTable, settings: Settings) -> dict[str, Target]:
    """Every target the table names, ready to call; ConfigError for an unknown name."""
    return {name: _resolve(name, settings) for name in sorted(table.target_names())}


def routing_from_settings(settings: Settings) -> tuple[RoutingTable, dict[str, Target]]:
    table = RoutingTable(settings.routes)
    return table, resolve_targets(table, settings)

"""The routing table: ordered routes matching event type (and source) globs to targets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import translate
from functools import cache
from pathlib import Path

import yaml

from dora_cloudevents.config import Route
from dora_cloudevents.events import CloudEvent

DEFAULT_ROUTES_FILE = Path(__file__).with_name("default_routes.yaml")


@cache
def default_routes() -> tuple[Route, ...]:
    loaded = yaml.safe_load(DEFAULT_ROUTES_FILE.read_text(encoding="utf-8"))
    return tuple(Route.model_validate(route) for route in loaded["routes"])


def _glob(pattern: str) -> re.Pattern[str]:
    # fnmatch semantics, but case-sensitive on every platform: event types are.
    return re.compile(translate(pattern))


@dataclass(frozen=True)
class _CompiledRoute:
    type: re.Pattern[str]
    source: re.Pattern[str] | None
    targets: tuple[str, ...]
    keep_going: bool


class RoutingTable:
    """First matching route wins, unless it says ``continue: true``."""

    def __init__(self, routes: tuple[Route, ...] | list[Route] | None = None) -> None:
        self.routes = tuple(routes) if routes is not None else default_routes()
        self._compiled = [
            _CompiledRoute(_glob(route.match.type),
                           _glob(route.match.source) if route.match.source else None,
                           tuple(route.to), route.continue_)
            for route in self.routes
        ]

    def targets_for(self, event: CloudEvent) -> list[str]:
        """The target names for ``event``, in order, each once; empty when unrouted."""
        found: list[str] = []
        event_type, source = str(event.get("type", "")), str(event.get("source", ""))
        for route in self._compiled:
            if not route.type.match(event_type):
                continue
            if route.source is not None and not route.source.match(source):
                continue
            found.extend(target for target in route.targets if target not in found)
            if not route.keep_going:
                break
        return found

    def target_names(self) -> set[str]:
        return {target for route in self.routes for target in route.to}

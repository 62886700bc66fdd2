"""Helpers several transformer test modules share: golden events, checked output, payload edits."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import TransformFunction
from tests.oracle import assert_valid_cdevent
from tests.transformers.test_fixtures import load_case


def golden_events(folder: Path, case: str) -> list[CloudEvent]:
    """The CloudEvents of a golden case (``$shared`` payloads loaded), free to modify."""
    events: list[CloudEvent] = copy.deepcopy(load_case(folder / f"{case}.input.json")[1])
    return events


def golden_event(folder: Path, case: str, index: int = 0) -> CloudEvent:
    """One CloudEvent of a golden case, free to modify."""
    return golden_events(folder, case)[index]


def checked(transform: TransformFunction, event: CloudEvent) -> list[CDEvent]:
    """``transform(event)``, every CDEvent checked against the schemas and our validator."""
    cdevents = transform(event)
    for cdevent in cdevents:
        assert_valid_cdevent(cdevent)
    return cdevents


def single_cdevent(transform: TransformFunction, event: CloudEvent) -> CDEvent:
    """The one CDEvent ``transform`` gives for ``event``, checked."""
    [cdevent] = checked(transform, event)
    return cdevent


def redelivered(event: CloudEvent) -> CloudEvent:
    """The same webhook delivered again (or through the other endpoint): new id and time."""
    again = copy.deepcopy(event)
    again["id"] = str(uuid.uuid4())
    again["time"] = "2030-01-01T00:00:00Z"
    return again


def delete(data: Any, path: tuple[str | int, ...]) -> None:
    """Remove ``data[path[0]]...[path[-1]]`` in place."""
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]

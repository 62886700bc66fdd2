"""Declarative transformers: a jq program from the config file turns a CloudEvent into CDEvents."""

from __future__ import annotations

from typing import Any

import jq

from dora_cloudevents.cdevents.build import EMITTED_SPEC_VERSION, deterministic_id
from dora_cloudevents.config import ConfigError
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import TransformError


class MappingTransformer:
    """Runs the jq program on the whole CloudEvent; each output is one CDEvent.

    The program may leave out what can be derived, and it is filled in: ``context.id``
    (deterministic, so replays never duplicate), ``context.source`` (the event's source),
    ``context.timestamp`` (the event's time) and ``context.version`` (0.4.1, unless the
    output sets ``context.specversion`` for 0.5).
    """

    def __init__(self, name: str, program: str) -> None:
        self.name = name
        try:
            self._program = jq.compile(program)
        except ValueError as error:
            raise ConfigError(
                f"mapping {name!r}: the jq program does not compile: {error}") from None

    def __call__(self, event: CloudEvent) -> list[CDEvent]:
        try:
            outputs = self._program.input_value(event).all()
        except ValueError as error:
            raise TransformError(f"mapping {self.name!r}: jq failed: {error}") from None
        return [self._complete(output, event, index)
                for index, output in enumerate(outputs) if output is not None]

    def _complete(self, output: Any, event: CloudEvent, index: int) -> CDEvent:
        if not isinstance(output, dict) or not isinstance(output.get("context"), dict):
            raise TransformError(f"mapping {self.name!r}: output {index} is not a CDEvent "
                                 "(an object with a 'context' object)")
        context = output["context"]
        if "specversion" not in context:
            context.setdefault("version", EMITTED_SPEC_VERSION)
        context.setdefault("source", event.get("source"))
        context.setdefault("id", deterministic_id(
            str(event.get("source")), str(event.get("id")), self.name, str(index)))
        if "timestamp" not in context:
            if "time" not in event:
                raise TransformError(f"mapping {self.name!r}: output {index} has no "
                                     "context.timestamp and the CloudEvent has no time")
            context["timestamp"] = event["time"]
        return output

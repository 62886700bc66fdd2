"""CDEvents sent as CloudEvents (``dev.cdevents.*``): passed through exactly as they came."""

from __future__ import annotations

from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import Transformer, TransformError, json_data

NAME = "cdevents"
# CDEvents CloudEvents binding: these CloudEvent attributes equal the CDEvent context's fields.
_BOUND_ATTRIBUTES = ("type", "id", "source")


def transform(event: CloudEvent) -> list[CDEvent]:
    """The CDEvent the CloudEvent carries, unchanged; TransformError if invalid or misbound."""
    cdevent = json_data(event)
    try:
        validate_cdevent(cdevent)
    except CDEventError as error:
        raise TransformError(f"the data is not a valid CDEvent: {error}") from None
    context = cdevent["context"]
    for attribute in _BOUND_ATTRIBUTES:
        if event.get(attribute) != context[attribute]:
            raise TransformError(
                f"CloudEvent {attribute} {event.get(attribute)!r} must equal the CDEvent's "
                f"context.{attribute} {context[attribute]!r}"
            )
    # Not rebuilt: a native CDEvent keeps its own id, spec version and content.
    return [cdevent]


TRANSFORMERS = [Transformer(NAME, transform, "CDEvents 0.4.x/0.5.x CloudEvents, passed through")]
